"""``zoo.eval``: reconstruct the user's inputs with one or more tokenizers at several token budgets
and measure what is lost.

For every model, every input is read through :mod:`zoo.datasets` (the readers ``zoo tokenize``
uses), encoded once, and decoded at each setting:

* ``tokens=[1, 4, 16, ...]``: the first ``k`` tokens (``Tokens.truncate(k)``) for tokenizers that
  decode a prefix (FlexTok, One-D-Piece, ...); counts above a model's length are skipped, and a
  model that decodes only its full length (a fixed 2D grid: VQGAN, VAE) is measured once at its
  length; the report says so;
* ``codebooks=[1, 2, 4, 8]``: the first ``q`` residual levels (``Tokens.codebooks(q)``) of audio
  codecs with several codebooks;
* neither: the full tokens.

Each setting yields per-item metric values (summarised as mean and 95% interval), bits per item
(:mod:`zoo.evaluation.rate`), and for images rFID over the set. Decoders that draw noise get a
generator seeded ``seed`` at each batch, so runs repeat exactly.

Example:
    >>> import tempfile, numpy as np
    >>> from PIL import Image
    >>> folder = tempfile.mkdtemp()
    >>> Image.fromarray(np.full((64, 64, 3), 128, np.uint8)).save(f"{folder}/grey.png")
    >>> import math, zoo
    >>> demo = zoo.list_models("flextok.demo*")[0]  # the embedded demo tokenizer
    >>> report = evaluate(demo, [folder], tokens=[1, 16], metrics=["psnr"], progress=False)
    >>> codebook = report.models[demo]["codebook_size"]
    >>> [(r["tokens"], r["items"], r["bits_per_item"] == r["tokens"] * math.log2(codebook)) for r in report.rows]
    [(1, 1, True), (16, 1, True)]
    >>> print(report.to_markdown().splitlines()[0])
    | model | tokens | bits/item | PSNR (dB) ↑ |
"""

from __future__ import annotations

import inspect
import os
import pickle
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from zoo.errors import InputError, TokenError, ZooError

__all__ = ["evaluate", "parse_models"]


def parse_models(models: str | Any | Sequence[str | Any]) -> list[str | Any]:
    """``"a,b"`` / ``["a", "b"]`` / loaded models -> a list (names stripped, duplicates refused).

    Example:
        >>> parse_models("flextok.demo_tiny, flextok_vae.demo_tiny")
        ['flextok.demo_tiny', 'flextok_vae.demo_tiny']
    """
    if isinstance(models, str):
        models = [m for m in (p.strip() for p in models.split(",")) if m]
    elif not isinstance(models, (list, tuple)):
        models = [models]
    if not models:
        raise InputError("no model given: name one or more tokenizers, e.g. --model flextok.demo_tiny")
    names = [m if isinstance(m, str) else getattr(m, "name", type(m).__name__) for m in models]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise InputError(f"model(s) named twice: {', '.join(dupes)}")
    return list(models)


def _counts(values: Sequence[int] | int | None, what: str) -> list[int] | None:
    if values is None:
        return None
    values = [values] if isinstance(values, int) else list(values)
    if not values:
        return None
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise InputError(f"{what} must be whole numbers >= 1, got {v!r}")
    return sorted(set(values))


def _decode_kwargs(model: Any, steps: int | None, guidance_scale: float | None, seed: int, device: str) -> dict[str, Any]:
    params = inspect.signature(model.decode).parameters
    any_kw = any(p.kind is p.VAR_KEYWORD for p in params.values())
    kw: dict[str, Any] = {}
    for key, value in (("steps", steps), ("guidance_scale", guidance_scale)):
        if value is not None:
            if not (any_kw or key in params):
                raise InputError(f"{key} does not apply to {getattr(model, 'name', model)}: its decoder takes no {key}")
            kw[key] = value
    if "generator" in params:
        kw["generator"] = torch.Generator(device).manual_seed(seed)
    return kw


def _load_model(spec: Any, device: str, weights: Mapping[str, Any]) -> Any:
    if not isinstance(spec, str):
        return spec
    import zoo

    card = zoo.get_card(spec)
    if card.kind != "tokenizer":
        raise InputError(f"{card.name} is a {card.kind}; zoo eval measures tokenizers (`zoo list --kind tokenizer`)")
    return zoo.load(spec, device=device, weights=weights.get(spec))


def _modality(model: Any) -> str:
    """``"image"`` / ``"audio"`` of a loaded model, or of a card name (before loading it)."""
    if isinstance(model, str):
        import zoo

        card = zoo.get_card(model)
        if card.kind != "tokenizer":
            raise InputError(f"{card.name} is a {card.kind}; zoo eval measures tokenizers (`zoo list --kind tokenizer`)")
        return card.modality
    card = getattr(model, "card", None)
    return getattr(card, "modality", None) or ("audio" if getattr(model, "sample_rate", None) else "image")


def _settings(model: Any, tokens: Any, modality: str, counts: list[int] | None, codebooks: list[int] | None,
              notes: list[str]) -> list[tuple[int | None, int | None]]:
    """The (token count, codebook levels) pairs to decode for this model, from its first batch's tokens."""
    name = getattr(model, "name", type(model).__name__)
    if codebooks:
        levels = getattr(tokens, "num_codebooks", 1)
        fit = [q for q in codebooks if q <= levels]
        if len(fit) < len(codebooks):
            notes.append(f"{name}: codebooks {[q for q in codebooks if q > levels]} skipped (it makes {levels} level(s))")
        if not fit:
            raise InputError(f"--codebooks {codebooks}: {name} makes {levels} codebook level(s); use 1..{levels}")
        return [(None, q) for q in fit]
    if not counts:
        return [(None, None)]
    if isinstance(tokens, torch.Tensor):
        notes.append(f"{name}: returns a latent tensor {tuple(tokens.shape[1:])} per item; measured at its full size "
                     "(token counts do not apply)")
        return [(None, None)]
    full = int(tokens.lengths.max())
    if tokens.meta.get("grid") is not None:
        h, w = (int(v) for v in tokens.meta["grid"])
        notes.append(f"{name}: a fixed {h}x{w} token grid; measured at its full {full} tokens (token counts do not apply)")
        return [(None, None)]
    fit = [k for k in counts if k <= full]
    if len(fit) < len(counts):
        notes.append(f"{name}: token counts {[k for k in counts if k > full]} skipped (it makes {full} tokens per item)")
    if not fit:
        notes.append(f"{name}: every token count exceeds its {full} tokens; measured at its full length")
        return [(None, None)]
    return [(k, None) for k in fit]


def _select(tokens: Any, k: int | None, q: int | None) -> Any:
    if k is None and q is None:
        return tokens
    out = tokens
    if q is not None:
        out = out.codebooks(q)
    if k is not None:
        out = out.truncate(torch.minimum(out.lengths, torch.tensor(k)))
    return out


def _as_audio_items(decoded: Any, lengths: Sequence[int]) -> list[torch.Tensor]:
    """A decoder's audio (``[B, L]``, ``[B, C, L]`` or a list of ``[C, L]``) -> mono ``[L_b]`` per item, trimmed."""
    items = list(decoded) if isinstance(decoded, (list, tuple)) else list(decoded.unbind(0))
    out = []
    for wav, n in zip(items, lengths):
        wav = wav.float()
        if wav.dim() == 2:
            wav = wav.mean(0)
        out.append(wav[: int(n)].cpu())
    return out


def _unit_images(x: torch.Tensor) -> torch.Tensor:
    """``[-1, 1]`` -> ``[0, 1]`` rounded to 8 bits (what a saved PNG holds)."""
    from zoo.evaluation.metrics import to_uint8

    return to_uint8((x.float().cpu() + 1) / 2).double() / 255


def _decode(model: Any, tokens: Any, setting: tuple[int | None, int | None], kw: dict[str, Any]) -> tuple[Any, Any]:
    """``(selected tokens, decoded media)`` for one setting."""
    sel = _select(tokens, *setting)
    with torch.inference_mode():
        return sel, model.decode(sel, **_decode_kwargs(model, **kw))


def _audio_scores(suite: Any, decoded: Any, targets: list[torch.Tensor], rate: int) -> dict[str, torch.Tensor]:
    """Per-item audio scores, each clip compared over the samples both signals have (decoders
    emit whole frames: a few samples more or less than the input)."""
    preds = _as_audio_items(decoded, [t.shape[-1] for t in targets])
    per = []
    for p, t in zip(preds, targets):
        m = min(p.shape[-1], t.shape[-1])
        per.append(suite.item_scores(p[None, :m], t[None, :m], rate))
    return {n: torch.cat([s[n] for s in per]) for n in suite.item_metrics}


@dataclass
class _Cell:
    """Per-item values of one (model, setting), gathered from the step's rows."""

    tokens: int | None
    codebooks: int | None
    values: dict[str, list[float]]
    rate_note: str = ""
    bits: list[float] = field(default_factory=list)
    token_counts: list[int] = field(default_factory=list)
    units: list[float] = field(default_factory=list)  # pixels per image / seconds per clip
    keys: list[str] = field(default_factory=list)
    fid: Any = None  # a FidAccumulator when rFID is asked for


def _probe(model: Any, loader: Any, items: list, modality: str) -> tuple[Any, list[tuple[str, str]]]:
    """Encode the first readable item (the run's settings depend on what the model makes)."""
    failures = []
    rate = loader.sample_rate
    for item in items:
        _, x, error = loader.load_many([item])[0]
        if error is not None:
            failures.append((item.key, error))
            continue
        x = x[None].to(_device_of(model))
        try:
            with torch.inference_mode():
                return (model.encode(x[:, None, :], rate) if modality == "audio" else model.encode(x)), failures
        except ZooError as exc:
            failures.append((item.key, f"{type(exc).__name__}: {exc}"))
    name = getattr(model, "name", type(model).__name__)
    why = f" (first: {failures[0][0]}: {failures[0][1]})" if failures else ""
    raise InputError(f"{name}: none of the {len(items)} input(s) could be read and encoded{why}")


def _device_of(model: Any) -> Any:
    try:
        return next(model.parameters()).device
    except (AttributeError, StopIteration, TypeError):
        return "cpu"


def _check_prefix(model: Any, tokens: Any, settings: list, decode_kw: dict[str, Any], notes: list[str]) -> list:
    """A model that decodes only its full length says so when given its shortest prefix: measure it once, at full length."""
    k = settings[0][0]
    if k is None or k >= int(tokens.lengths.max()):
        return settings
    try:
        _decode(model, tokens, settings[0], decode_kw)
    except (TokenError, InputError) as exc:
        notes.append(f"{getattr(model, 'name', type(model).__name__)}: decodes only its full length ({exc}); "
                     "measured at its full length")
        return [(None, None)]
    return settings


def evaluate(
    models: str | Any | Sequence[str | Any],
    inputs: str | os.PathLike | Sequence[str | os.PathLike],
    *,
    tokens: Sequence[int] | int | None = None,
    codebooks: Sequence[int] | int | None = None,
    metrics: Sequence[str] | str | None = None,
    metric_weights: Mapping[str, str | os.PathLike] | None = None,
    lpips_net: str = "alex",
    column: str | None = None,
    batch_size: int = 8,
    device: str = "cpu",
    seed: int = 0,
    steps: int | None = None,
    guidance_scale: float | None = None,
    weights: Mapping[str, str | os.PathLike] | None = None,
    engine: str = "local",
    workers: int = 0,
    actors: int = 1,
    ray_address: str | None = None,
    progress: bool = True,
    per_item: bool = False,
    cache_dir: str | os.PathLike | None = None,
    min_fid_items: int = 2,
):
    """Measure tokenizers on ``inputs``: see the module docstring. Returns an
    :class:`~zoo.evaluation.report.EvalReport` (``.to_json``, ``.to_markdown``, ``.plot``).

    Args:
        models: names (``"a,b"`` or a list) or loaded tokenizers, all of one modality.
        inputs: files, directories, globs, Parquet files (``column``: the bytes column),
            WebDataset ``.tar`` shards (:func:`zoo.datasets.list_items`).
        tokens: token counts to decode (tokenizers that decode a prefix); ``codebooks``: residual
            levels to decode (audio codecs). Not both.
        metrics: names from :data:`~zoo.evaluation.metrics.METRICS` (default: every metric of the
            modality; PESQ/STOI when installed).
        metric_weights: local files for metric networks (``{"lpips": PATH, "rfid": PATH}``);
            otherwise zoo's cache, else one download (offline: a clear error).
        weights: local model weights per model name (``zoo.load(name, weights=...)``).
        engine: ``"local"`` (this process; ``workers`` decode processes) or ``"ray"`` (``actors``
            model replicas on the Ray runtime at ``ray_address``, or a local one): the engines of
            ``zoo tokenize``, running the same :class:`~zoo.evaluation.step.EvalStep` on the same batches.
        per_item: keep every item's values in the report.
        min_fid_items: rFID is reported when at least this many images (>= 2) were measured.

    Inputs that cannot be read (or that a model refuses) are listed in ``report.failures``.
    """
    from zoo.datasets import ItemLoader, list_items
    from zoo.datasets.engines import ModelSpec, merge, run_local, run_ray
    from zoo.evaluation.metrics import FidAccumulator, MetricSuite
    from zoo.evaluation.rate import describe_rate, token_kind, tokens_per_item
    from zoo.evaluation.report import EvalReport, library_versions
    from zoo.evaluation.step import EvalJob

    if engine not in ("local", "ray"):
        raise InputError(f"engine must be 'local' or 'ray', got {engine!r}")
    for what, value, low in (("batch_size", batch_size, 1), ("workers", workers, 0), ("actors", actors, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise InputError(f"{what} must be an int >= {low}, got {value!r}")
    counts = _counts(tokens, "token counts")
    levels = _counts(codebooks, "codebook levels")
    if counts and levels:
        raise InputError("give token counts (image tokenizers that decode prefixes) or codebook levels (RVQ audio codecs), not both")
    if isinstance(metrics, str):
        metrics = [m for m in (p.strip() for p in metrics.split(",")) if m]
    specs = parse_models(models)
    listing = list_items(inputs, column=column)
    if not listing.items:
        raise InputError("no image or audio inputs found in the given inputs")
    weights = dict(weights or {})
    modalities = {_modality(m) for m in specs}  # from the cards: arguments and metric weights are checked before any load
    if len(modalities) > 1:
        raise InputError(f"compare tokenizers of one modality at a time; got {', '.join(sorted(modalities))}")
    modality = modalities.pop()
    if modality == "image" and levels:
        raise InputError("--codebooks applies to audio codecs with several codebook levels; image tokenizers use --tokens")
    if modality == "audio" and counts:
        raise InputError("--tokens applies to image tokenizers that decode a prefix; audio codecs use --codebooks 1,2,4,8")
    suite = MetricSuite(modality, metrics, weights=metric_weights, lpips_net=lpips_net, device=device, cache_dir=cache_dir)
    loaded = [_load_model(s, device, weights) for s in specs]

    import zoo

    report = EvalReport(modality=modality, metric_names=suite.names, inputs={
        "count": len(listing.items), "listing_sha256": listing.digest(), "ignored": [p for p, _ in listing.ignored]})
    report.settings = {"tokens": counts, "codebooks": levels, "batch_size": batch_size, "device": str(device), "seed": seed,
                       "steps": steps, "guidance_scale": guidance_scale, "lpips_net": lpips_net if "lpips" in suite.names else None,
                       "engine": engine, "zoo": zoo.__version__, "libraries": library_versions()}
    from tqdm.auto import tqdm

    bar = tqdm(total=len(listing.items) * len(loaded), unit="item", desc=f"zoo eval ({engine})", disable=not progress,
               dynamic_ncols=True)
    shards = [(i // batch_size, listing.items[i : i + batch_size]) for i in range(0, len(listing.items), batch_size)]
    try:
        for spec, model in zip(specs, loaded):
            name = getattr(model, "name", type(model).__name__)
            loader = ItemLoader.for_model(model)
            probe, _ = _probe(model, loader, listing.items, modality)
            settings = _settings(model, probe, modality, counts, levels, report.notes)
            decode_kw = {"steps": None if modality == "audio" else steps, "guidance_scale": guidance_scale, "seed": seed,
                         "device": str(_device_of(model))}
            if modality == "image":
                settings = _check_prefix(model, probe, settings, decode_kw, report.notes)
            job = EvalJob(loader=loader, modality=modality, settings=settings, metrics=suite.names,
                          metric_weights=suite.weight_paths, lpips_net=lpips_net, steps=decode_kw["steps"],
                          guidance_scale=guidance_scale, seed=seed)
            cells = [_Cell(tokens=k, codebooks=q, values={n: [] for n in suite.item_metrics},
                           rate_note=describe_rate(_select(probe, k, q)), fid=FidAccumulator() if suite.wants_features else None)
                     for k, q in settings]
            info: dict[str, Any] = {"token_kind": token_kind(probe), "tokens_per_item": int(tokens_per_item(probe).max()),
                                    "rate": describe_rate(probe), "settings": [list(s) for s in settings]}
            if hasattr(probe, "codebook_size"):
                info["codebook_size"] = probe.codebook_size
            if getattr(probe, "num_codebooks", 1) > 1:
                info["codebooks"] = probe.num_codebooks
            card = getattr(model, "card", None)
            if card is not None:
                info["revision"] = getattr(card, "revision", None) or "not pinned"
            if engine == "local":
                job.model, job.suite = model, suite  # this process already holds the model and the metric networks
                results = run_local(job, loader, shards, batch_size=batch_size, workers=workers, progress=bar.update)
            else:
                job.spec = (ModelSpec(name=spec, load_kwargs={"weights": weights[spec]} if spec in weights else {}, device=device)
                            if isinstance(spec, str) else ModelSpec(blob=pickle.dumps(model), device=device))
                results = run_ray(job, loader, shards, batch_size=batch_size, actors=actors, progress=bar.update,
                                  address=ray_address, gpus_per_actor=1.0 if str(device).startswith("cuda") else 0.0)
            order = {it.key: i for i, it in enumerate(listing.items)}
            rows: list[dict[str, Any]] = []
            for _, parts in results:
                result = merge(parts)
                report.failures.extend({"model": name, **f} for f in result.failures)
                for row in result.rows:  # fold features into the running FID sums now; keep the small rest
                    for cell, got in zip(cells, row["settings"]):
                        if cell.fid is not None:
                            cell.fid.update(row["real_features"][None], real=True)
                            cell.fid.update(got.pop("features")[None], real=False)
                    row.pop("real_features", None)
                    rows.append(row)
            rows.sort(key=lambda r: order[r["key"]])  # engines may finish batches in any order
            for row in rows:
                for cell, got in zip(cells, row["settings"]):
                    for metric, value in got["scores"].items():
                        cell.values[metric].append(value)
                    cell.bits.append(got["bits"])
                    cell.token_counts.append(got["tokens"])
                    cell.units.append(row["units"])
                    cell.keys.append(row["key"])
            if not rows:
                first = report.failures[-1]["error"] if report.failures else "no inputs"
                raise InputError(f"{name}: none of the {len(listing.items)} input(s) could be measured ({first})")
            info["items"] = len(rows)
            report.models[name] = info
            for cell in cells:
                report.add_row(name, cell, min_fid_items=min_fid_items, per_item=per_item)
    finally:
        bar.close()
    return report
