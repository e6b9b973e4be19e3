"""DivPrune (Alvar et al., CVPR 2025): keep a diverse subset of visual tokens by greedy max-min
selection on cosine distance (``1 - cos``). The first pick is the token whose nearest other
token is farthest; each next pick maximises its distance to the nearest already-picked token.
Ties go to the lowest position. Kept indices are returned in ascending order.

Degenerate inputs still give ``keep`` distinct indices: a token already picked is never picked
again (duplicates and all-equal rows have distance 0 to it), and zero tokens (padding) have no
direction, so they count as distance 0 from everything: they are kept only once every real
token is (padding never displaces a real token). NaN/Inf tokens are refused.

Batched and incremental (one ``[B, N]`` running minimum instead of re-reducing the selected rows
at every step): O(N·K) work after the O(N²) distance matrix.

Example:
    >>> import torch
    >>> x = torch.tensor([[[1.0, 0.0], [0.99, 0.1], [0.0, 1.0], [-1.0, 0.0]]])
    >>> divprune_select(x, 2).tolist()  # token 3 is the most isolated, then token 0 is farthest from it
    [[0, 3]]
"""

from __future__ import annotations

import torch

from ..checks import check_count, check_rate
from ..types import ReducedTokens, ReducerError

__all__ = ["divprune_reduce", "divprune_select", "resolve_keep"]


def resolve_keep(keep: float, n: int) -> int:
    """An int is a count; a float in (0, 1] is a ratio rounded as ``int(round(ratio * n))``.

    Anything else (a bool, a string, NaN, a count outside ``[1, n]``) is a ReducerError.

    Example:
        >>> resolve_keep(0.25, 16), resolve_keep(4, 16)
        (4, 4)
    """
    if isinstance(keep, (bool, str)):
        raise ReducerError(f"keep must be an int count or a float ratio in (0, 1], got {keep!r} ({type(keep).__name__})")
    if isinstance(keep, torch.Tensor) and keep.dim() == 0:
        keep = keep.item()
    if isinstance(keep, float):
        ratio = check_rate("a float keep (a ratio)", keep)
        keep = max(1, round(ratio * n))
    keep = check_count("keep", keep)
    if not 1 <= keep <= n:
        raise ReducerError(f"keep must be between 1 and the {n} tokens, got {keep}")
    return keep


def divprune_select(tokens: torch.Tensor, keep: int) -> torch.Tensor:
    """Indices ``[B, keep]`` (ascending) of the max-min diverse subset of ``tokens`` ``[B, N, D]``."""
    if tokens.dim() != 3:
        raise ReducerError(f"DivPrune expects tokens [B, N, D], got {tuple(tokens.shape)}")
    b, n, _ = tokens.shape
    if keep >= n:
        return torch.arange(n, device=tokens.device).expand(b, n).clone()
    if not bool(torch.isfinite(tokens).all()):
        raise ReducerError("DivPrune: tokens hold NaN/Inf values; cosine distances are undefined (check the encoder's input)")
    with torch.no_grad():
        x = tokens.float()
        norm = x.norm(dim=-1, keepdim=True)
        zero = norm[..., 0] == 0                                     # [B, N] padding / empty tokens
        x = x / norm.clamp_min(torch.finfo(x.dtype).tiny)
        dist = 1.0 - x @ x.transpose(-1, -2)                        # [B, N, N], symmetric
        if bool(zero.any()):
            dist = dist.masked_fill(zero[:, :, None] | zero[:, None, :], 0.0)
        picked = torch.empty(b, keep, dtype=torch.long, device=tokens.device)
        scores = torch.topk(dist, 2, dim=1, largest=False).values[:, 1]  # distance to nearest other
        rows = torch.arange(b, device=tokens.device)
        mind = None
        for i in range(keep):
            idx = torch.argmax(scores if i == 0 else mind, dim=-1)
            picked[:, i] = idx
            row = dist[rows, idx]                                      # [B, N]
            mind = row.clone() if mind is None else torch.minimum(mind, row)
            mind[rows, idx] = -float("inf")                            # never pick a token twice
        return picked.sort(dim=1).values


def divprune_reduce(tokens: torch.Tensor, keep: float) -> ReducedTokens:
    """Keep the DivPrune subset of ``tokens`` ``[B, N, D]``: kept tokens in their input order.

    Example:
        >>> import torch
        >>> out = divprune_reduce(torch.randn(2, 16, 8), keep=0.25)
        >>> out.tokens.shape, out.indices.shape
        (torch.Size([2, 4, 8]), torch.Size([2, 4]))
    """
    n = tokens.shape[1]
    k = resolve_keep(keep, n)
    idx = divprune_select(tokens, k)
    kept = tokens.gather(1, idx[..., None].expand(-1, -1, tokens.shape[-1]))
    assign = torch.full(tokens.shape[:2], -1, dtype=torch.long, device=tokens.device)
    assign.scatter_(1, idx, torch.arange(k, device=tokens.device).expand_as(idx))
    return ReducedTokens(tokens=kept, indices=idx, sizes=torch.ones_like(kept[..., :1]), assignment=assign)
