"""``zoo.tokenize``: tokenize a dataset into ``DIR/part-NNNNN.parquet`` + ``DIR/manifest.json``,
deterministically and resumably, on the local engine or on Ray.

A run lists its inputs (sorted by key), cuts them into shards of ``shard_size`` items, and
writes each finished shard atomically with a record of its rows, sha256 and failures under
``DIR/.zoo-tokenize/``. A restarted run with the same arguments skips the shards whose record
and file match and redoes the rest; when all are done it writes ``manifest.json`` and removes
the state folder, so an interrupted-then-resumed run leaves the same bytes as an uninterrupted
one. A directory that holds another run (other model, settings or inputs) is refused.

Example:
    >>> tokenize("flextok.demo_128", [], "/tmp/never")  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    zoo.errors.InputError: no inputs given: ...
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import pickle
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zoo.datasets.engines import EncodeJob, ModelSpec, cluster_gpus, merge, run_local, run_ray
from zoo.datasets.shards import FORMAT, MANIFEST, STATE_DIR, atomic_write_bytes, file_sha256, write_shard
from zoo.datasets.sources import ItemLoader, list_items
from zoo.errors import InputError

__all__ = ["ENGINES", "TokenizeSummary", "tokenize"]

ENGINES = ("local", "ray")


@dataclass
class TokenizeSummary:
    """What a run did: ``items`` listed, ``written`` rows, ``failed`` inputs, ``ignored`` non-media
    files, ``resumed_shards`` skipped because an earlier run finished them, the wall time and
    the rate over the items this run processed."""

    out: str
    items: int
    written: int
    failed: int
    ignored: int
    shards: int
    resumed_shards: int
    processed: int
    wall_s: float
    engine: str

    @property
    def items_per_s(self) -> float:
        return self.processed / self.wall_s if self.wall_s > 0 else 0.0

    def line(self) -> str:
        """The final line ``zoo tokenize`` prints."""
        if self.shards and self.resumed_shards == self.shards and not self.processed:
            return (f"nothing to do: {self.out} already holds this run ({self.items} items: {self.written} written, "
                    f"{self.failed} failed)")
        resumed = f", {self.resumed_shards} of {self.shards} shards already done" if self.resumed_shards else ""
        return (f"tokenized {self.items} items: {self.written} written, {self.failed} failed"
                f"{f', {self.ignored} ignored' if self.ignored else ''}{resumed}; {self.wall_s:.1f} s, "
                f"{self.items_per_s:.2f} items/s ({self.engine}) -> {self.out}")


def _config_hash(model: Any) -> str:
    config = getattr(model, "config", None)
    try:
        data = dataclasses.asdict(config) if dataclasses.is_dataclass(config) else config
        text = json.dumps(data, sort_keys=True, default=repr)
    except (TypeError, ValueError):
        text = repr(config)
    return hashlib.sha256(text.encode()).hexdigest()


def _identity(model: Any, listing_hash: str, count: int, settings: dict[str, Any]) -> dict[str, Any]:
    import zoo

    card = getattr(model, "card", None)
    revision = getattr(card, "revision", None) if card is not None else None
    pinned = bool(getattr(card, "pinned", False))
    return {
        "format": FORMAT,
        "model": getattr(card, "name", None) or type(model).__name__,
        "revision": revision if pinned else "not pinned",
        "config_hash": _config_hash(model),
        "zoo_version": zoo.__version__,
        "settings": settings,
        "inputs": {"count": count, "listing_hash": listing_hash},
    }


def _differences(a: dict[str, Any], b: dict[str, Any], prefix: str = "") -> list[str]:
    out = []
    for key in sorted(set(a) | set(b)):
        va, vb = a.get(key), b.get(key)
        if isinstance(va, dict) and isinstance(vb, dict):
            out.extend(_differences(va, vb, f"{prefix}{key}."))
        elif va != vb:
            out.append(f"{prefix}{key}: {va!r} there, {vb!r} now")
    return out


def _prepare(out: Path, identity: dict[str, Any]) -> bool:
    """Check ``out`` against this run; True when it is already complete. Clears leftovers of a
    killed write (temporary files)."""
    manifest, state = out / MANIFEST, out / STATE_DIR / "run.json"
    for path, what in ((manifest, "a finished run"), (state, "an unfinished run")):
        if path.is_file():
            theirs = json.loads(path.read_text())
            theirs = {k: theirs.get(k) for k in identity}
            diff = _differences(theirs, identity)
            if diff:
                raise InputError(f"{out} holds {what} with other arguments ({'; '.join(diff)}); give another --out, or "
                                 "delete the directory to start over")
            if path == manifest:  # finished (a kill between the manifest and the clean-up leaves state behind)
                shutil.rmtree(out / STATE_DIR, ignore_errors=True)
                for leftover in out.glob(".*.tmp-*"):
                    leftover.unlink()
                return True
            break
    else:
        if out.exists() and (not out.is_dir() or any(out.iterdir())):
            raise InputError(f"{out} exists and is not a zoo tokenize output directory; give a new or empty --out")
    (out / STATE_DIR).mkdir(parents=True, exist_ok=True)
    for leftover in list(out.glob(".*.tmp-*")) + list((out / STATE_DIR).glob(".*.tmp-*")):
        leftover.unlink()
    if not state.is_file():
        atomic_write_bytes(state, json.dumps(identity, indent=2, sort_keys=True).encode())
    return False


def _done_record(out: Path, index: int) -> dict[str, Any] | None:
    """The record of shard ``index`` if an earlier run finished it (record present, file intact)."""
    path = out / STATE_DIR / f"shard-{index:05d}.json"
    if not path.is_file():
        return None
    record = json.loads(path.read_text())
    if record["file"] and (not (out / record["file"]).is_file() or file_sha256(out / record["file"]) != record["sha256"]):
        return None
    return record


def _json_bytes(data: Any) -> bytes:
    return (json.dumps(data, indent=2, sort_keys=True) + "\n").encode()


def tokenize(model: Any, inputs: Sequence[str | os.PathLike] | str | os.PathLike, out: str | os.PathLike, *,
             engine: str = "local", batch_size: int = 16, workers: int = 2, tokens: int | None = None,
             column: str | None = None, shard_size: int = 1000, latents_dtype: str = "float32",
             device: str | None = None, ray_address: str | None = None, actors: int = 1,
             progress: bool = True, load_kwargs: dict[str, Any] | None = None, overlap: int = 0) -> TokenizeSummary:
    """Tokenize every image/audio input into ``out`` (see :mod:`zoo.datasets.shards` for the format).

    Args:
        model: a tokenizer's card name (loaded with ``zoo.load(model, device=device,
            **load_kwargs)``; Ray actors load their own replica the same way) or a loaded
            tokenizer (sent to Ray actors pickled).
        inputs: files, directories, globs, Parquet files, WebDataset ``.tar`` shards
            (:func:`zoo.datasets.list_items`); ``column`` names the Parquet bytes column.
        engine: ``"local"`` (``workers`` decode processes feed this process's model; 0 decodes
            inline) or ``"ray"`` (``actors`` model replicas on the Ray runtime at
            ``ray_address``, or a local one; with ``device=None`` on a cluster that has GPUs,
            each actor takes one and runs the model on ``cuda``).
        batch_size: items per ``encode`` call; part of the output's identity, like ``tokens``
            (keep the first K tokens per item), ``shard_size`` and ``latents_dtype``.
        progress: show a progress bar (items/s, ETA) on stderr.
        overlap: video tokenizers: frames shared by consecutive clips of a video longer than one
            clip; every clip becomes a row keyed ``<key>#frames=<first>-<last>``
            (:class:`~zoo.datasets.sources.ItemLoader`). Part of the output's identity.

    Returns:
        A :class:`TokenizeSummary`. Inputs that cannot be read or encoded are listed in the
        manifest with the reason and counted in ``failed``; they never stop the run.
    """
    if engine not in ENGINES:
        raise InputError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    for name, value, low in (("batch_size", batch_size, 1), ("shard_size", shard_size, 1), ("workers", workers, 0),
                             ("actors", actors, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise InputError(f"{name} must be an int >= {low}, got {value!r}")
    if tokens is not None and (isinstance(tokens, bool) or not isinstance(tokens, int) or tokens < 1):
        raise InputError(f"tokens must be a positive int (keep the first K tokens), got {tokens!r}")
    if isinstance(overlap, bool) or not isinstance(overlap, int) or overlap < 0:
        raise InputError(f"overlap must be an int >= 0 (frames shared by consecutive video clips), got {overlap!r}")
    if latents_dtype not in ("float32", "float16"):
        raise InputError(f"latents_dtype must be float32 or float16, got {latents_dtype!r}")
    listing = list_items(inputs, column=column, exclude=[out])  # never our own shards, if OUT lies among the inputs
    load_kwargs = dict(load_kwargs or {})
    if engine == "ray" and device is None and cluster_gpus(ray_address) > 0:
        device = "cuda"  # a cluster with GPUs: one per actor
    if isinstance(model, str):
        import zoo

        card = zoo.get_card(model)
        if card.kind != "tokenizer":
            raise InputError(f"{card.name} is a {card.kind}; zoo tokenize needs a tokenizer (`zoo list --kind tokenizer`)")
        spec = ModelSpec(name=card.name, load_kwargs=load_kwargs, device=device)
        # on Ray the actors hold the replicas (on `device`); the driver's copy only describes the run
        loaded = spec.load() if engine == "local" else ModelSpec(name=card.name, load_kwargs=load_kwargs).load()
    else:  # on Ray the actors move their unpickled replica to `device`; the driver (maybe GPU-less) keeps it as given
        loaded = model.to(device) if device and engine == "local" else model
        spec = ModelSpec(blob=pickle.dumps(loaded), device=device)
    if not callable(getattr(loaded, "encode", None)):
        raise InputError(f"{type(loaded).__name__} has no encode(); zoo tokenize needs a tokenizer")
    loader = ItemLoader.for_model(loaded)
    settings = {"batch_size": batch_size, "shard_size": shard_size, "tokens": tokens, "latents_dtype": latents_dtype,
                "column": column}
    if loader.modality == "video":
        if loader.num_frames and overlap >= loader.num_frames:
            raise InputError(f"overlap must be below the {loader.num_frames} frames of a {loader.model} clip, got {overlap}")
        loader = dataclasses.replace(loader, overlap=overlap)
        settings["overlap"] = overlap
    elif overlap:
        raise InputError(f"overlap applies to video tokenizers; {loader.model} takes {loader.modality}")
    identity = _identity(loaded, listing.digest(), len(listing.items), settings)
    out = Path(out)
    start = time.perf_counter()
    items = listing.items
    plan = [(i // shard_size, items[i : i + shard_size]) for i in range(0, len(items), shard_size)]
    if _prepare(out, identity):
        manifest = json.loads((out / MANIFEST).read_text())
        return TokenizeSummary(str(out), len(items), sum(s["rows"] for s in manifest["shards"]), len(manifest["failures"]),
                               len(manifest["ignored"]), len(plan), len(plan), 0, time.perf_counter() - start, engine)
    records = {index: rec for index, _ in plan if (rec := _done_record(out, index)) is not None}
    todo = [(index, shard) for index, shard in plan if index not in records]
    done_items = sum(len(shard) for index, shard in plan if index in records)
    from tqdm.auto import tqdm

    bar = tqdm(total=len(items), initial=done_items, unit="item", desc=f"tokenize ({engine})", disable=not progress,
               dynamic_ncols=True)
    if engine == "local":
        results = run_local(EncodeJob(loader, tokens=tokens, model=loaded, clip_batch=batch_size), loader, todo, batch_size=batch_size,
                            workers=workers, progress=bar.update)
    else:
        gpus = 1.0 if device and str(device).startswith("cuda") else 0.0
        results = run_ray(EncodeJob(loader, spec=spec, tokens=tokens, clip_batch=batch_size), loader, todo, batch_size=batch_size,
                          actors=actors, address=ray_address, gpus_per_actor=gpus, progress=bar.update)
    processed = 0
    try:
        for index, parts in results:
            result = merge(parts)
            record = write_shard(out, index, result.rows, latents_dtype=latents_dtype)
            record.update(failures=result.failures, tokens=result.info)
            atomic_write_bytes(out / STATE_DIR / f"shard-{index:05d}.json", _json_bytes(record))
            records[index] = record
            processed += len(result.rows) + len(result.failures)
    finally:
        bar.close()
    shards = [records[index] for index, _ in plan]
    info = next((r["tokens"] for r in shards if r.get("tokens")), None)
    manifest = {
        **identity,
        "tokens": info,
        "shards": [{k: r[k] for k in ("index", "file", "rows", "sha256")} for r in shards],
        "rows": sum(r["rows"] for r in shards),
        "failures": [f for r in shards for f in r["failures"]],
        "ignored": [{"key": k, "reason": why} for k, why in listing.ignored],
    }
    atomic_write_bytes(out / MANIFEST, _json_bytes(manifest))
    shutil.rmtree(out / STATE_DIR, ignore_errors=True)
    return TokenizeSummary(str(out), len(items), manifest["rows"], len(manifest["failures"]), len(listing.ignored),
                           len(plan), len(plan) - len(todo), processed, time.perf_counter() - start, engine)
