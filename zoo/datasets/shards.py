"""The token shard format: ``DIR/part-NNNNN.parquet`` + ``DIR/manifest.json``, written atomically
and read back as :class:`~zoo.interfaces.Tokens` / :class:`~zoo.interfaces.MultiRateTokens` /
:class:`~zoo.interfaces.Latents` batches.

Columns of every shard (one row per input that tokenized):

======== ====================================================================================
key      string: the input's key (relative path, ``file.parquet#row``, ``shard.tar/member``)
ids      ``list<int32>`` for one codebook; ``list<list<int32>>`` for ``Q`` codebooks (``Q``
         lists of ``length`` ids) or multi-rate levels (level ``l`` holds
         ``length * strides[0] // strides[l]`` ids). Absent for continuous tokenizers.
length   int32: valid tokens (coarsest frames for multi-rate tokens)
latents  continuous tokenizers only: ``arrow.fixed_shape_tensor`` of ``[N, C]`` float32 or
         float16, ``N`` the longest item of the shard (shorter ones are zero-padded: ``length``
         says how many rows are valid)
meta     string: the item's own token metadata as sorted-key JSON (``{"num_samples": 16000}``)
======== ====================================================================================

Shard bytes depend only on the rows (zstd, no timestamps), so the same inputs give the same
files on any engine.

Example:
    >>> import torch, tempfile
    >>> from zoo.interfaces import Tokens
    >>> t = Tokens(ids=torch.tensor([[1, 2, 3], [4, 5, 0]]), codebook_size=8, tokenizer="demo.x", lengths=[3, 2])
    >>> rows = [item_row(k, t[i]) for i, k in enumerate(["a.png", "b.png"])]
    >>> rows[1]["ids"], rows[1]["length"]
    ([4, 5], 2)
    >>> d = tempfile.mkdtemp()
    >>> record = write_shard(d, 0, rows)
    >>> record["rows"], record["file"]
    (2, 'part-00000.parquet')
    >>> read_shard(d + "/part-00000.parquet")["key"]
    ['a.png', 'b.png']
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from zoo._valuetools import PER_ITEM_META
from zoo.errors import InputError, TokenError

__all__ = [
    "FORMAT", "MANIFEST", "STATE_DIR", "atomic_write_bytes", "file_sha256", "item_row", "read_shard", "shard_name",
    "token_info", "write_shard",
]

FORMAT = "zoo-tokens/1"
MANIFEST = "manifest.json"
STATE_DIR = ".zoo-tokenize"  # per-shard records while a run is under way; removed when it finishes


def shard_name(index: int) -> str:
    """``part-00007.parquet`` for shard 7."""
    return f"part-{index:05d}.parquet"


def file_sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to a temporary name beside ``path``, fsync, then rename over ``path``: a
    reader (or a restarted run) sees the old file or the whole new one, never a part."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _jsonable(value: Any) -> Any:
    import torch

    if isinstance(value, torch.Tensor):
        return value.tolist()
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value


def token_info(tokens: Any) -> dict[str, Any]:
    """What the manifest records about the token type (identical for every item of a run):
    ``type`` (``tokens``/``multirate``/``latents``), codebook size, codebook count, strides,
    ``pad_id``, latent ``dim`` and the shared token metadata (``sample_rate``, ``grid``, ...)."""
    from zoo.interfaces import Latents, MultiRateTokens

    shared = {k: _jsonable(v) for k, v in sorted(tokens.meta.items()) if k not in PER_ITEM_META}
    if isinstance(tokens, Latents):
        return {"type": "latents", "tokenizer": tokens.tokenizer, "dim": tokens.dim, "meta": shared}
    info = {"type": "multirate" if isinstance(tokens, MultiRateTokens) else "tokens", "tokenizer": tokens.tokenizer,
            "codebook_size": tokens.codebook_size, "num_codebooks": tokens.num_codebooks, "pad_id": tokens.pad_id,
            "meta": shared}
    if isinstance(tokens, MultiRateTokens):
        info["strides"] = list(tokens.strides)
    return info


def _first(value: Any) -> Any:
    """A per-item meta entry of a batch of one: its only element."""
    import torch

    if isinstance(value, (list, tuple)) or (isinstance(value, torch.Tensor) and value.dim() > 0):
        return value[0]
    return value


def item_row(key: str, tokens: Any) -> dict[str, Any]:
    """One item (a batch-of-one ``Tokens`` / ``MultiRateTokens`` / ``Latents``) as a shard row:
    its valid ids only (padding dropped), or its valid latents as a float32 ``[length, C]`` array."""
    from zoo.interfaces import Latents, MultiRateTokens

    if len(tokens) != 1:
        raise TokenError(f"item_row takes one item, got a batch of {len(tokens)}")
    n = int(tokens.lengths[0])
    meta = {k: _jsonable(_first(v)) for k, v in sorted(tokens.meta.items()) if k in PER_ITEM_META}
    row: dict[str, Any] = {"key": key, "length": n, "meta": json.dumps(meta, sort_keys=True)}
    if isinstance(tokens, Latents):
        row["latents"] = tokens.values[0, :n].detach().float().cpu().numpy()
    elif isinstance(tokens, MultiRateTokens):
        row["ids"] = [ids[0, : n * tokens.ratio(i)].int().tolist() for i, ids in enumerate(tokens.levels)]
    elif tokens.ids.dim() == 3:
        row["ids"] = tokens.ids[0, :, :n].int().tolist()
    else:
        row["ids"] = tokens.ids[0, :n].int().tolist()
    return row


def _table(rows: list[dict[str, Any]], latents_dtype: str):
    import numpy as np
    import pyarrow as pa

    columns: dict[str, Any] = {"key": pa.array([r["key"] for r in rows], pa.string())}
    if "ids" in rows[0]:
        nested = isinstance(rows[0]["ids"][0], list) if rows[0]["ids"] else False
        kind = pa.list_(pa.list_(pa.int32())) if nested else pa.list_(pa.int32())
        columns["ids"] = pa.array([r["ids"] for r in rows], kind)
    columns["length"] = pa.array([r["length"] for r in rows], pa.int32())
    if "latents" in rows[0]:
        dtype = {"float32": np.float32, "float16": np.float16}[latents_dtype]
        n = max(r["latents"].shape[0] for r in rows)
        c = rows[0]["latents"].shape[1]
        block = np.zeros((len(rows), n, c), dtype=dtype)
        for i, r in enumerate(rows):
            block[i, : r["latents"].shape[0]] = r["latents"]
        columns["latents"] = pa.FixedShapeTensorArray.from_numpy_ndarray(block)
    columns["meta"] = pa.array([r["meta"] for r in rows], pa.string())
    return pa.table(columns)


def write_shard(directory: str | os.PathLike, index: int, rows: list[dict[str, Any]], *,
                latents_dtype: str = "float32") -> dict[str, Any]:
    """Write ``rows`` (from :func:`item_row`, in key order) as ``part-NNNNN.parquet`` atomically
    (temporary name, fsync, rename). Returns the manifest's shard record ``{index, file, rows,
    sha256}``; an empty shard (every input failed) writes no file (``file`` None)."""
    if not rows:
        return {"index": index, "file": None, "rows": 0, "sha256": None}
    import io

    import pyarrow.parquet as pq

    if latents_dtype not in ("float32", "float16"):
        raise InputError(f"latents dtype must be float32 or float16, got {latents_dtype!r}")
    buf = io.BytesIO()
    pq.write_table(_table(rows, latents_dtype), buf, compression="zstd", row_group_size=max(len(rows), 1))
    data = buf.getvalue()
    path = Path(directory) / shard_name(index)
    atomic_write_bytes(path, data)
    return {"index": index, "file": path.name, "rows": len(rows), "sha256": hashlib.sha256(data).hexdigest()}


def read_shard(path: str | os.PathLike) -> dict[str, Any]:
    """A shard's columns as Python values: ``key`` / ``length`` / ``meta`` lists, ``ids`` (nested
    lists) or ``latents`` (a float32 numpy ``[rows, N, C]``)."""
    import numpy as np
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    out: dict[str, Any] = {name: table.column(name).to_pylist() for name in ("key", "length", "meta")}
    if "ids" in table.column_names:
        out["ids"] = table.column("ids").to_pylist()
    if "latents" in table.column_names:
        col = table.column("latents").combine_chunks()
        out["latents"] = np.array(col.to_numpy_ndarray(), dtype=np.float32)  # a writable copy
    return out
