"""Read a ``zoo tokenize`` output directory back: :func:`read_tokens` yields :class:`TokenBatch`
(keys + ``Tokens`` / ``MultiRateTokens`` / ``Latents``), checking each shard's sha256 against the
manifest.

Example:
    >>> read_tokens("/no/such/dir")  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    zoo.errors.InputError: /no/such/dir has no manifest.json: ...
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zoo.datasets.shards import FORMAT, MANIFEST, STATE_DIR, file_sha256, read_shard
from zoo.errors import InputError

__all__ = ["TokenBatch", "read_manifest", "read_tokens"]


@dataclass
class TokenBatch:
    """Rows of a token directory: ``keys[i]`` is the input that ``tokens[i]`` came from."""

    keys: list[str]
    tokens: Any

    def __len__(self) -> int:
        return len(self.keys)


def read_manifest(directory: str | os.PathLike) -> dict[str, Any]:
    """``DIR/manifest.json`` as a dict; a directory whose run has not finished (or that is not a
    token directory) is an :class:`~zoo.errors.InputError` saying what to do."""
    directory = Path(directory)
    path = directory / MANIFEST
    if not path.is_file():
        if (directory / STATE_DIR).is_dir():
            raise InputError(f"{directory}: the zoo tokenize run that writes here has not finished; run the same "
                             "command again to resume it")
        raise InputError(f"{directory} has no {MANIFEST}: not a `zoo tokenize` output directory")
    manifest = json.loads(path.read_text())
    if manifest.get("format") != FORMAT:
        raise InputError(f"{path}: format {manifest.get('format')!r}; this zoo reads {FORMAT!r}")
    return manifest


def _to_tokens(info: dict[str, Any], rows: dict[str, Any], lo: int, hi: int) -> Any:
    import torch

    from zoo.interfaces import Latents, MultiRateTokens, Tokens

    lengths = torch.tensor(rows["length"][lo:hi], dtype=torch.long)
    metas = [json.loads(m) for m in rows["meta"][lo:hi]]
    meta = dict(info.get("meta") or {})
    for key in sorted({k for m in metas for k in m}):
        meta[key] = [m.get(key) for m in metas]
    if "grid" in meta and isinstance(meta["grid"], list):
        meta["grid"] = tuple(meta["grid"])
    b = hi - lo
    if info["type"] == "latents":
        values = torch.from_numpy(rows["latents"][lo:hi])
        n = int(lengths.max()) if b else 0
        return Latents(values=values[:, :n].contiguous(), tokenizer=info["tokenizer"], lengths=lengths, meta=meta)
    ids = rows["ids"][lo:hi]
    n = int(lengths.max()) if b else 0
    if info["type"] == "multirate":
        strides = info["strides"]
        levels = []
        for level, stride in enumerate(strides):
            ratio = strides[0] // stride
            out = torch.full((b, n * ratio), info["pad_id"], dtype=torch.long)
            for i, item in enumerate(ids):
                out[i, : len(item[level])] = torch.tensor(item[level], dtype=torch.long)
            levels.append(out)
        return MultiRateTokens(levels=levels, strides=tuple(strides), codebook_size=info["codebook_size"],
                               tokenizer=info["tokenizer"], lengths=lengths, pad_id=info["pad_id"], meta=meta)
    if info["num_codebooks"] > 1:
        out = torch.full((b, info["num_codebooks"], n), info["pad_id"], dtype=torch.long)
        for i, item in enumerate(ids):
            out[i, :, : len(item[0])] = torch.tensor(item, dtype=torch.long)
    else:
        out = torch.full((b, n), info["pad_id"], dtype=torch.long)
        for i, item in enumerate(ids):
            out[i, : len(item)] = torch.tensor(item, dtype=torch.long)
    return Tokens(ids=out, codebook_size=info["codebook_size"], tokenizer=info["tokenizer"], lengths=lengths,
                  pad_id=info["pad_id"], meta=meta)


def read_tokens(directory: str | os.PathLike, *, batch_size: int | None = None, verify: bool = True) -> Iterator[TokenBatch]:
    """Yield the tokens of a ``zoo tokenize`` output directory as :class:`TokenBatch` es, in key
    order: one batch per shard, or batches of at most ``batch_size`` rows (never spanning two
    shards). Discrete tokenizers give :class:`~zoo.interfaces.Tokens` (``[B, N]`` ids, or
    ``[B, Q, N]`` for several codebooks) or :class:`~zoo.interfaces.MultiRateTokens`,
    continuous ones :class:`~zoo.interfaces.Latents`, right-padded, with ``lengths`` and the
    metadata decoding needs. With ``verify`` each shard's sha256 is checked against the
    manifest first (a mismatch is an :class:`~zoo.errors.InputError`).

    The directory is checked when this is called (an unfinished run is an error); the shards
    are read as the iterator advances.
    """
    directory = Path(directory)
    manifest = read_manifest(directory)
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1):
        raise InputError(f"batch_size must be a positive int, got {batch_size!r}")
    return _iterate(directory, manifest, batch_size, verify)


def _iterate(directory: Path, manifest: dict[str, Any], batch_size: int | None, verify: bool) -> Iterator[TokenBatch]:
    info = manifest["tokens"]
    for shard in manifest["shards"]:
        if not shard["file"]:
            continue
        path = directory / shard["file"]
        if not path.is_file():
            raise InputError(f"{path} is missing (the manifest lists it with {shard['rows']} rows)")
        if verify and file_sha256(path) != shard["sha256"]:
            raise InputError(f"{path} does not match its sha256 in the manifest: the file changed after it was written")
        rows = read_shard(path)
        step = batch_size or len(rows["key"])
        for lo in range(0, len(rows["key"]), step):
            hi = min(lo + step, len(rows["key"]))
            yield TokenBatch(keys=rows["key"][lo:hi], tokens=_to_tokens(info, rows, lo, hi))
