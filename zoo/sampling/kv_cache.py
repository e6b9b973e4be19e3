"""A preallocated (static) key/value cache for autoregressive decoding.

Keys and values of every layer live in two tensors ``[layers, B, H, max_len, D]`` allocated
once; a step writes its new positions in place and attends over a view of the filled prefix
(no ``torch.cat`` per step, no reallocation).

Example:
    >>> import torch
    >>> cache = StaticKVCache(layers=2, batch=1, heads=2, max_len=8, head_dim=4)
    >>> k = v = torch.ones(1, 2, 3, 4)
    >>> ks, vs = cache.update(0, k, v)      # layer 0 sees positions 0..2
    >>> ks.shape
    torch.Size([1, 2, 3, 4])
    >>> cache.advance(3); cache.length
    3
"""

from __future__ import annotations

from typing import Optional

import torch

from zoo.errors import InputError

__all__ = ["StaticKVCache"]


class StaticKVCache:
    """Per-layer K/V storage for ``max_len`` positions; ``length`` positions are filled.

    A model's forward reads ``start = cache.length``, calls :meth:`update` once per layer with
    the new keys/values ``[B, H, n, D]``, and finally :meth:`advance` ``(n)``.
    """

    def __init__(
        self,
        layers: int,
        batch: int,
        heads: int,
        max_len: int,
        head_dim: int,
        *,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str | None = None,
        head_dim_v: Optional[int] = None,
    ):
        shape = (layers, batch, heads, max_len, head_dim)
        self.k = torch.zeros(shape, dtype=dtype, device=device)
        self.v = torch.zeros(shape[:-1] + (head_dim_v or head_dim,), dtype=dtype, device=device)
        self.max_len = max_len
        self.length = 0

    @property
    def batch(self) -> int:
        return self.k.shape[1]

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Write ``k``/``v`` ``[B, H, n, D]`` at positions ``length..length+n`` of ``layer`` and
        return views of the keys/values of positions ``0..length+n``."""
        start, n = self.length, k.shape[-2]
        end = start + n
        if end > self.max_len:
            raise InputError(f"KV cache holds {self.max_len} positions; writing {n} at {start} overflows it "
                             "(allocate a longer cache: max_len >= prompt + new tokens)")
        if k.shape[0] != self.k.shape[1]:
            raise InputError(f"KV cache was allocated for batch {self.k.shape[1]}, got keys for {k.shape[0]}")
        self.k[layer, :, :, start:end] = k
        self.v[layer, :, :, start:end] = v
        return self.k[layer, :, :, :end], self.v[layer, :, :, :end]

    def advance(self, n: int) -> None:
        """Mark ``n`` more positions as filled (call once per forward, after the last layer)."""
        self.length += n

    def reset(self) -> None:
        """Forget the contents (the storage is kept for the next generation)."""
        self.length = 0
