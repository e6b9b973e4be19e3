"""2D rotary position embedding on a square grid, EVA-02 style (``VisionRotaryEmbeddingFast``, as
FlowAR and xAR copy it): a head of ``d`` channels is rotated by the row position in its first
half and the column position in its second, pairs of adjacent channels rotating together
(interleaved ``rotate_half``); positions are ``arange(s) / s * pt_seq_len``, so grids of any side
span the same range (FlowAR's scales) or, with ``s == pt_seq_len``, integers (xAR).

Example:
    >>> import torch
    >>> cos, sin = rope_2d_table(4, 8)
    >>> cos.shape
    torch.Size([16, 8])
    >>> x = torch.randn(1, 2, 16, 8)
    >>> torch.allclose(apply_rope(x, cos, sin).norm(dim=-1), x.norm(dim=-1))   # a rotation
    True
"""

from __future__ import annotations

import torch

__all__ = ["apply_rope", "rope_2d_table", "rope_frequencies", "rotate_half"]


def rope_frequencies(head_dim: int, theta: float = 10000.0) -> torch.Tensor:
    """``1 / theta ** (arange(0, d, 2) / d)`` with ``d = head_dim // 2`` (one axis' share): ``head_dim // 4`` values."""
    dim = head_dim // 2
    return 1.0 / (theta ** (torch.arange(0, dim, 2)[: dim // 2].float() / dim))


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    """``(x0, x1, x2, x3, ...) -> (-x1, x0, -x3, x2, ...)`` over the last dimension."""
    x = x.unflatten(-1, (-1, 2))
    return torch.stack((-x[..., 1], x[..., 0]), dim=-1).flatten(-2)


def rope_2d_table(side: int, head_dim: int, pt_seq_len: int = 16, freqs: torch.Tensor | None = None,
                  device: torch.device | str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(cos, sin)``, each ``[side * side, head_dim]`` in row-major grid order."""
    f = rope_frequencies(head_dim) if freqs is None else freqs
    t = torch.arange(side, device=device) / side * pt_seq_len
    ang = torch.einsum("i,f->if", t, f.to(device)).repeat_interleave(2, dim=-1)  # [side, head_dim / 2]
    grid = torch.cat([ang[:, None, :].expand(side, side, -1), ang[None, :, :].expand(side, side, -1)], dim=-1)
    grid = grid.reshape(side * side, -1)
    return grid.cos(), grid.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """``x * cos + rotate_half(x) * sin`` (``x``: ``[..., N, head_dim]``; tables ``[N, head_dim]``)."""
    return x * cos + rotate_half(x) * sin
