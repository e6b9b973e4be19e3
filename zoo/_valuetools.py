"""Helpers the value types (:class:`~zoo.Tokens`, :class:`~zoo.Latents`, ``ReducedTokens``) share:
one-line summaries of tensors and lengths for their ``repr``, batch indexing, and the device check
of their ``.to()`` (shared with :func:`zoo.load`).

Example:
    >>> import torch
    >>> tensor_summary(torch.zeros(2, 32, dtype=torch.long))
    '[2, 32] int64 cpu'
    >>> lengths_summary(torch.tensor([32, 32])), lengths_summary(torch.tensor([4, 32, 9]))
    ('32', '4..32 (mean 15.0)')
    >>> batch_index(-1, 3), batch_index(slice(0, 2), 3)
    (slice(2, 3, None), slice(0, 2, None))
"""

from __future__ import annotations

import operator
from collections.abc import Mapping
from typing import Any

import torch

from zoo.errors import InputError

__all__ = ["PER_ITEM_META", "batch_index", "check_device", "lengths_summary", "select_meta", "tensor_summary"]

#: ``meta`` keys whose value holds one entry per batch item (sliced along with the ids).
PER_ITEM_META = frozenset({"num_samples", "labels", "encodec_chunks", "centers", "offsets", "grids", "sizes"})  # encodec_chunks: EnCodec 48 kHz scales; centers: Point-BERT patch centres; offsets: text tokens' byte spans; grids/sizes: NaFlex (ViTok-v2) images of different sizes


def tensor_summary(t: torch.Tensor) -> str:
    """``[shape] dtype device`` of a tensor, never its values."""
    dtype = str(t.dtype).replace("torch.", "")
    return f"[{', '.join(str(s) for s in t.shape)}] {dtype} {t.device}"


def lengths_summary(lengths: torch.Tensor) -> str:
    """The valid lengths of a batch in a few characters: ``'32'`` when all equal, else
    ``'min..max (mean m)'``."""
    if lengths.numel() == 0:
        return "none"
    lo, hi = int(lengths.min()), int(lengths.max())
    if lo == hi:
        return str(lo)
    return f"{lo}..{hi} (mean {float(lengths.float().mean()):.1f})"


def batch_index(index: Any, batch: int) -> slice | torch.Tensor:
    """Normalise an item index (int, slice, list/tensor of ints or booleans) to something that
    selects along the batch dimension and keeps it; an int out of range raises ``IndexError``."""
    if isinstance(index, slice):
        return index
    if isinstance(index, bool):
        raise TypeError("index items with an int, a slice or a sequence of ints, not a bool")
    if isinstance(index, torch.Tensor) and index.dim() == 0 and not index.is_floating_point() and index.dtype != torch.bool:
        index = int(index)
    try:
        i = operator.index(index)
    except TypeError:
        pass
    else:
        if not -batch <= i < batch:
            raise IndexError(f"item {i} is out of range for a batch of {batch}")
        i %= batch
        return slice(i, i + 1)
    idx = torch.as_tensor(index)
    if idx.dtype == torch.bool:
        if idx.shape != (batch,):
            raise IndexError(f"a boolean mask must have one entry per item ({batch}), got shape {tuple(idx.shape)}")
        return idx.nonzero().flatten().cpu()
    if idx.is_floating_point() or idx.dim() != 1:
        raise TypeError(f"index items with an int, a slice or a 1-d sequence of ints, got {index!r}")
    idx = idx.long().cpu()
    if idx.numel() and (int(idx.min()) < -batch or int(idx.max()) >= batch):
        raise IndexError(f"items {idx.tolist()} out of range for a batch of {batch}")
    return idx % batch if idx.numel() else idx


def select_meta(meta: Mapping[str, Any], sel: slice | torch.Tensor, batch: int) -> dict[str, Any]:
    """``meta`` for the selected items: per-item entries (:data:`PER_ITEM_META`) are sliced,
    the rest is shared and kept as is."""
    out = dict(meta)
    for key in PER_ITEM_META & set(meta):
        value = meta[key]
        if isinstance(value, torch.Tensor) and value.shape[:1] == (batch,):
            out[key] = value[sel]
        elif isinstance(value, (list, tuple)) and len(value) == batch:
            picked = value[sel] if isinstance(sel, slice) else [value[int(i)] for i in sel]
            out[key] = type(value)(picked)
    return out


def check_device(device: Any) -> None:
    """Refuse a device torch cannot parse (``"gpu"``) or one this machine lacks, by name
    (:class:`~zoo.errors.InputError`); ``None`` passes.

    Example:
        >>> check_device("cpu")
        >>> check_device("gpu")
        Traceback (most recent call last):
        ...
        zoo.errors.InputError: device='gpu' is not a device torch knows; use 'cpu', 'cuda', 'cuda:0' or 'mps'
    """
    if device is None:
        return
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise InputError(f"device={device!r} is not a device torch knows; use 'cpu', 'cuda', 'cuda:0' or 'mps'") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"device={device!r}: no CUDA device is available here (torch {torch.__version__}); use device='cpu'")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise InputError(f"device={device!r}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    if dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise InputError(f"device={device!r}: MPS is not available here; use device='cpu'")
