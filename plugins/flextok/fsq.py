"""Finite scalar quantisation (Mentzer et al. 2023) as FlexTok uses it: no parameters.

Example:
    >>> import torch
    >>> fsq = FSQ([8, 8, 8, 5, 5, 5])
    >>> fsq.codebook_size
    64000
    >>> codes, ids = fsq(torch.randn(2, 7, 6))
    >>> bool((fsq.indices_to_codes(ids) == codes).all())
    True
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["FSQ"]


class FSQ(nn.Module):
    """``z [..., d] -> (codes in [-1, 1] [..., d], ids [...])`` with ``d = len(levels)``."""

    def __init__(self, levels: Sequence[int], eps: float = 1e-3):
        super().__init__()
        levels_t = torch.tensor([int(x) for x in levels], dtype=torch.int32)
        self.register_buffer("_levels", levels_t, persistent=False)
        basis = torch.cumprod(torch.tensor([1] + [int(x) for x in levels[:-1]]), dim=0, dtype=torch.int32)
        self.register_buffer("_basis", basis, persistent=False)
        self.eps = eps
        self.dim = len(levels)
        self.codebook_size = math.prod(int(x) for x in levels)

    def bound(self, z: torch.Tensor) -> torch.Tensor:
        half_l = (self._levels - 1) * (1 + self.eps) / 2
        offset = torch.where(self._levels % 2 == 0, 0.5, 0.0)
        shift = (offset / half_l).atanh()
        return (z + shift).tanh() * half_l - offset

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if z.shape[-1] != self.dim:
            raise ValueError(f"FSQ expects a last dimension of {self.dim} (one per level), got {tuple(z.shape)}")
        half_width = self._levels // 2
        codes = self.bound(z.float()).round() / half_width
        ids = ((codes * half_width + half_width) * self._basis).sum(dim=-1).to(torch.int32).long()
        return codes, ids

    def indices_to_codes(self, ids: torch.Tensor) -> torch.Tensor:
        """Token ids ``[...]`` -> codes ``[..., d]`` in [-1, 1] (the reference's ``indices_to_embedding``)."""
        if ids.is_floating_point():
            raise TypeError(f"token ids must be integers, got {ids.dtype}")
        half_width = self._levels // 2
        digits = (ids.long()[..., None] // self._basis) % self._levels
        return (digits - half_width) / half_width
