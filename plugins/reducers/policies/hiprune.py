"""HiPrune (Liu et al., 2025): keep three kinds of visual tokens, chosen from the vision encoder's
own attention at two depths.

* **anchor** tokens: the ``round(keep * alpha / 5)`` tokens with the highest attention score at a
  middle ("object") layer;
* **buffer** tokens: the four neighbours of every anchor (left, right, above, below on the patch
  grid);
* **register** tokens: the remaining budget, filled with the highest-scoring tokens of a deep
  layer among those not kept yet.

Every sample keeps exactly ``keep`` tokens (ascending indices). The attention score of a token is,
in the official code, the mean over heads and over all queries of the attention it receives (the
"column mean" of the attention map, class-token column dropped): :func:`attention_scores`
computes it from ``[B, H, N', N']`` maps.

Neighbours: ``buffer="flat"`` (the default) is the official code's rule: ``index ± 1`` and
``index ± W`` on the flattened grid, clamped to ``[0, N - 1]``, so the left neighbour of a
row's first patch is the previous row's last patch; ``buffer="grid"`` keeps neighbours inside
the grid (no wrap across rows).

Example:
    >>> import torch
    >>> obj = torch.zeros(1, 16); obj[0, 5] = 1.0          # one anchor at (1, 1) on a 4x4 grid
    >>> deep = torch.arange(16.0)[None]                     # registers: the highest deep scores
    >>> hiprune_select(obj, deep, keep=7, width=4, alpha=1.0).tolist()
    [[1, 4, 5, 6, 9, 14, 15]]
"""

from __future__ import annotations

import math

import torch

from ..checks import check_real
from ..types import ReducedTokens, ReducerError
from .divprune import resolve_keep

__all__ = ["attention_scores", "hiprune_reduce", "hiprune_select", "resolve_grid"]

BUFFERS = ("flat", "grid")


def attention_scores(attn: torch.Tensor, num_prefix: int = 1) -> torch.Tensor:
    """Per-token attention score ``[B, N]`` from attention probabilities ``[B, H, N', N']``: mean
    over heads, then over queries (column mean), prefix columns (CLS, registers) dropped.

    Example:
        >>> import torch
        >>> attention_scores(torch.softmax(torch.randn(2, 4, 10, 10), -1), num_prefix=1).shape
        torch.Size([2, 9])
    """
    if attn.dim() != 4 or attn.shape[-1] != attn.shape[-2]:
        raise ReducerError(f"attention_scores expects attention probabilities [B, H, N, N], got {tuple(attn.shape)}")
    return attn.mean(dim=1).mean(dim=1)[:, num_prefix:]


def resolve_grid(n: int, grid: int | tuple[int, int] | None) -> tuple[int, int]:
    """``(H, W)`` of the patch grid of ``n`` tokens: given, or square when ``n`` is a square."""
    if grid is None:
        side = math.isqrt(n)
        if side * side != n:
            raise ReducerError(f"hiprune needs grid=(H, W) for {n} tokens (not a square number): the patch grid the tokens come from")
        return side, side
    h, w = (grid, n // grid) if isinstance(grid, int) else (int(grid[0]), int(grid[1]))
    if h * w != n:
        raise ReducerError(f"grid={grid} does not match the {n} tokens (H * W must equal N)")
    return h, w


def _neighbours(anchors: torch.Tensor, n: int, width: int, buffer: str) -> torch.Tensor:
    """``[B, 5 * A]`` anchors and their four neighbours (duplicates allowed)."""
    steps = torch.tensor([0, -1, 1, -width, width], device=anchors.device)
    cand = anchors[:, None, :] + steps[None, :, None]                          # [B, 5, A]
    if buffer == "flat":
        return cand.clamp(0, n - 1).flatten(1)
    col = anchors % width
    valid = torch.stack([torch.ones_like(col, dtype=torch.bool), col > 0, col < width - 1,
                         anchors - width >= 0, anchors + width < n], dim=1)
    return torch.where(valid, cand, anchors[:, None, :]).flatten(1)           # invalid -> the anchor itself


def hiprune_select(object_attn: torch.Tensor, deep_attn: torch.Tensor, keep: int, width: int,
                   alpha: float = 0.1, buffer: str = "flat") -> torch.Tensor:
    """Indices ``[B, keep]`` (ascending) of the anchor + buffer + register tokens.

    ``object_attn`` / ``deep_attn``: ``[B, N]`` per-token attention scores at the object (middle)
    layer and at the deep layer; ``width``: the patch grid's width.
    """
    if object_attn.dim() != 2 or object_attn.shape != deep_attn.shape:
        raise ReducerError(f"hiprune needs object_attn and deep_attn of the same shape [B, N], got "
                           f"{tuple(object_attn.shape)} and {tuple(deep_attn.shape)}")
    if buffer not in BUFFERS:
        raise ReducerError(f"buffer must be one of {BUFFERS}, got {buffer!r}")
    alpha = check_real("hiprune alpha", alpha)
    if not 0.0 <= alpha <= 1.0:
        raise ReducerError(f"alpha (the share of anchor and buffer tokens) must be in [0, 1], got {alpha}")
    b, n = object_attn.shape
    dev = object_attn.device
    if keep >= n:
        return torch.arange(n, device=dev).expand(b, n).clone()
    num_anchors = round(keep * alpha / 5)
    kept = torch.zeros(b, n, dtype=torch.bool, device=dev)
    if num_anchors > 0:
        anchors = object_attn.topk(num_anchors, dim=1).indices
        kept.scatter_(1, _neighbours(anchors, n, width, buffer), True)
    count = kept.sum(dim=1)                                                   # anchors + buffers per sample
    if int(count.max()) > keep:
        raise ReducerError(f"hiprune: {int(count.max())} anchor and buffer tokens exceed keep={keep}; lower alpha ({alpha})")
    registers = keep - count                                                  # [B], per sample
    r_max = int(registers.max())
    if r_max > 0:
        score = deep_attn.float().masked_fill(kept, float("-inf"))
        top = score.topk(r_max, dim=1).indices                                # [B, r_max], best first
        take = torch.arange(r_max, device=dev)[None] < registers[:, None]      # a sample's first `registers` picks
        kept |= torch.zeros_like(kept).scatter_(1, top, take)
    return kept.nonzero()[:, 1].view(b, keep)


def hiprune_reduce(tokens: torch.Tensor, keep: float, object_attn: torch.Tensor | None, deep_attn: torch.Tensor | None,
                   grid: int | tuple[int, int] | None = None, alpha: float = 0.1, buffer: str = "flat") -> ReducedTokens:
    """Keep the HiPrune subset of ``tokens`` ``[B, N, D]`` (kept tokens in their input order).

    Example:
        >>> import torch
        >>> out = hiprune_reduce(torch.randn(2, 16, 8), 0.5, torch.rand(2, 16), torch.rand(2, 16), alpha=0.5)
        >>> out.indices.shape
        torch.Size([2, 8])
    """
    b, n, d = tokens.shape
    for name, value in (("object_attn", object_attn), ("deep_attn", deep_attn)):
        if value is None or not isinstance(value, torch.Tensor) or tuple(value.shape) != (b, n):
            got = tuple(value.shape) if isinstance(value, torch.Tensor) else value
            raise ReducerError(f"hiprune needs {name}=[B, N] = [{b}, {n}] (per-token attention scores of the vision encoder "
                               f"at the {'middle (object)' if name == 'object_attn' else 'deep'} layer; see attention_scores), got {got}")
    _, width = resolve_grid(n, grid)
    k = resolve_keep(keep, n)
    idx = hiprune_select(object_attn, deep_attn, k, width, alpha=alpha, buffer=buffer)
    kept = tokens.gather(1, idx[..., None].expand(-1, -1, d))
    assign = torch.full((b, n), -1, dtype=torch.long, device=tokens.device)
    assign.scatter_(1, idx, torch.arange(k, device=tokens.device).expand_as(idx))
    return ReducedTokens(tokens=kept, indices=idx, sizes=torch.ones_like(kept[..., :1]), assignment=assign)
