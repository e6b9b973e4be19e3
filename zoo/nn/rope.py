"""Rotary position embeddings over any number of axes: 1-D (text, latent tokens), 2-D axial
(image patches at any row/column), Flux-style 3-axis (``axes_dims`` such as ``[8, 28, 28]``).

A head of ``D = sum(axes_dims)`` channels is split into consecutive slices, one per axis;
slice ``a`` of ``axes_dims[a]`` channels rotates by ``positions[..., a]`` with the frequencies
``1 / theta ** (arange(0, d, 2) / d)``. Two layout choices exist in the releases and both are
data here:

* ``rotation="interleaved"``: channel pairs ``(2i, 2i+1)`` rotate together (EVA-02, ViTok,
  Flux, Llama's complex form); the tables repeat each angle twice (``[a0, a0, a1, a1, ...]``);
* ``rotation="half"``: channel ``i`` pairs with ``i + D/2`` (Llama's ``rotate_half``); the tables
  are ``cat(angles, angles)``.

A release may mix them (Instella-T2I applies ``rotate_half`` to Flux's interleaved tables):
``rope_tables(..., layout="interleaved")`` with ``apply_rotary(..., rotation="half")`` does
exactly that. :mod:`zoo.nn.rope2d` (the EVA-02 square-grid tables of FlowAR/xAR) is the special
case of two axes with fractional positions; its :func:`~zoo.nn.rope2d.rotate_half` is reused.

Example:
    >>> import torch
    >>> pos = grid_positions(2, 3)                        # [6, 2] (row, col), row-major
    >>> cos, sin = rope_tables(pos, axes_dims=[4, 4])     # 2-D axial, head_dim 8
    >>> cos.shape
    torch.Size([6, 8])
    >>> x = torch.randn(1, 2, 6, 8)
    >>> torch.allclose(apply_rotary(x, cos, sin).norm(dim=-1), x.norm(dim=-1))   # a rotation
    True
"""

from __future__ import annotations

from typing import Literal, Sequence

import torch

from zoo.errors import InputError
from zoo.nn.rope2d import rotate_half as rotate_interleaved

__all__ = ["axis_frequencies", "rope_angles", "rope_tables", "apply_rotary", "rotate_half_split", "grid_positions"]

Layout = Literal["interleaved", "half"]


def axis_frequencies(dim: int, theta: float = 10000.0, dtype: torch.dtype = torch.float32,
                     device: torch.device | str | None = None) -> torch.Tensor:
    """``1 / theta ** (arange(0, dim, 2) / dim)``: the ``dim // 2`` frequencies of one axis.

    Example:
        >>> axis_frequencies(4).tolist()
        [1.0, 0.009999999776482582]
    """
    if dim <= 0 or dim % 2:
        raise InputError(f"a RoPE axis needs an even number of channels, got {dim}")
    return 1.0 / (theta ** (torch.arange(0, dim, 2, dtype=dtype, device=device) / dim))


def rope_angles(positions: torch.Tensor, axes_dims: Sequence[int], theta: float = 10000.0,
                dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Angles ``[..., N, sum(axes_dims) // 2]`` for ``positions`` ``[..., N, len(axes_dims)]``
    (a 1-D ``[N]`` tensor is one axis), computed in ``dtype`` (Flux/diffusers use float64).

    Example:
        >>> rope_angles(torch.tensor([[0.0], [2.0]]), [4]).tolist()
        [[0.0, 0.0], [2.0, 0.019999999552965164]]
    """
    if positions.dim() == 1:
        positions = positions[:, None]
    if positions.shape[-1] != len(axes_dims):
        raise InputError(f"positions have {positions.shape[-1]} axes but axes_dims has {len(axes_dims)}: {list(axes_dims)}")
    pos = positions.to(dtype)
    parts = [pos[..., a, None] * axis_frequencies(d, theta, dtype, pos.device) for a, d in enumerate(axes_dims)]
    return torch.cat(parts, dim=-1)


def rope_tables(positions: torch.Tensor, axes_dims: Sequence[int], theta: float = 10000.0, *,
                layout: Layout = "interleaved", dtype: torch.dtype = torch.float32,
                out_dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """``(cos, sin)``, each ``[..., N, sum(axes_dims)]`` in ``layout`` (see the module doc),
    computed in ``dtype`` and returned in ``out_dtype``.

    Example:
        >>> cos, _ = rope_tables(torch.tensor([1.0]), [4], layout="half")
        >>> [round(v, 3) for v in cos[0].tolist()]
        [0.54, 1.0, 0.54, 1.0]
    """
    if layout not in ("interleaved", "half"):
        raise InputError(f"RoPE layout must be 'interleaved' or 'half', got {layout!r}")
    ang = rope_angles(positions, axes_dims, theta, dtype)
    ang = ang.repeat_interleave(2, dim=-1) if layout == "interleaved" else torch.cat([ang, ang], dim=-1)
    return ang.cos().to(out_dtype), ang.sin().to(out_dtype)


def rotate_half_split(x: torch.Tensor) -> torch.Tensor:
    """``cat(-x2, x1)`` for halves ``x1, x2`` of the last dimension (Llama's ``rotate_half``)."""
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, rotation: Layout = "interleaved") -> torch.Tensor:
    """``x * cos + rot(x) * sin`` on ``x`` ``[B, H, N, D]``; tables ``[N, D]`` or ``[B, N, D]``
    (broadcast over heads), cast to ``x``'s dtype.

    Example:
        >>> x = torch.arange(4.0).view(1, 1, 1, 4)
        >>> c, s = torch.zeros(1, 4), torch.ones(1, 4)           # a quarter turn
        >>> apply_rotary(x, c, s).tolist(), apply_rotary(x, c, s, "half").tolist()
        ([[[[-1.0, 0.0, -3.0, 2.0]]]], [[[[-2.0, -3.0, 0.0, 1.0]]]])
    """
    if cos.dim() == 3:
        cos, sin = cos[:, None], sin[:, None]
    cos, sin = cos.to(x.dtype), sin.to(x.dtype)
    rot = rotate_interleaved(x) if rotation == "interleaved" else rotate_half_split(x)
    return x * cos + rot * sin


def grid_positions(rows: int, cols: int, device: torch.device | str | None = None,
                   dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``[rows * cols, 2]`` (row, col) positions of a grid in row-major order.

    Example:
        >>> grid_positions(2, 2).tolist()
        [[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]]
    """
    r = torch.arange(rows, device=device, dtype=dtype)
    c = torch.arange(cols, device=device, dtype=dtype)
    return torch.stack(torch.meshgrid(r, c, indexing="ij"), dim=-1).reshape(-1, 2)
