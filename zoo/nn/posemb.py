"""Fixed sine-cosine position embeddings in the MAE layout (``facebookresearch/mae`` ``pos_embed.py``),
the one most video/3-D tokenizers copy: 1-D ``[sin | cos]`` halves, 2-D as ``[emb(w-index) |
emb(h-index)]`` halves (MAE's meshgrid puts w first), 3-D as the 2-D grid plus a 1-D frame term.

Computed in float64 (as numpy does in the references) and returned as float32 tensors.

Example:
    >>> sincos_1d(4, [0.0, 1.0]).tolist()[0]
    [0.0, 0.0, 1.0, 1.0]
    >>> sincos_3d(8, grid=2, frames=3).shape
    torch.Size([12, 8])
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = ["sincos_1d", "sincos_2d", "sincos_3d"]


def sincos_1d(dim: int, positions: Sequence[float] | torch.Tensor, base: float = 10000.0) -> torch.Tensor:
    """``[M, dim]``: ``[sin(p * w_i) | cos(p * w_i)]`` with ``w_i = base^(-i / (dim/2))``."""
    return _sincos_1d(dim, positions, base).float()


def _sincos_1d(dim: int, positions: Sequence[float] | torch.Tensor, base: float = 10000.0) -> torch.Tensor:
    if dim % 2:
        from zoo.errors import ConfigError

        raise ConfigError(f"sine-cosine embeddings need an even dim, got {dim}")
    omega = torch.arange(dim // 2, dtype=torch.float64) / (dim / 2.0)
    omega = 1.0 / base**omega
    pos = torch.as_tensor(positions, dtype=torch.float64).reshape(-1)
    out = pos[:, None] * omega[None, :]
    return torch.cat([out.sin(), out.cos()], dim=1)


def sincos_2d(dim: int, grid: int) -> torch.Tensor:
    """``[grid * grid, dim]`` for a square grid in row-major (h, w) order (MAE's layout)."""
    return _sincos_2d(dim, grid).float()


def _sincos_2d(dim: int, grid: int) -> torch.Tensor:
    coords = torch.arange(grid, dtype=torch.float32).double()
    gw = coords[None, :].expand(grid, grid).reshape(-1)  # meshgrid(w, h)[0]: the column index
    gh = coords[:, None].expand(grid, grid).reshape(-1)
    return torch.cat([_sincos_1d(dim // 2, gw), _sincos_1d(dim // 2, gh)], dim=1)


def sincos_3d(dim: int, grid: int, frames: int) -> torch.Tensor:
    """``[frames * grid * grid, dim]`` in (t, h, w) order: the 2-D grid term plus a 1-D frame term."""
    emb2 = _sincos_2d(dim, grid).reshape(1, grid * grid, dim)
    emb1 = _sincos_1d(dim, torch.arange(frames, dtype=torch.float32)).reshape(frames, 1, dim)
    return (emb2 + emb1).reshape(-1, dim).float()
