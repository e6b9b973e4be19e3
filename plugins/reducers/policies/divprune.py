"""DivPrune (Alvar et al., CVPR 2025): keep a diverse subset of visual tokens by greedy max-min
selection on cosine distance (``1 - cos``). The first pick is the token whose nearest other
token is farthest; each next pick maximises its distance to the nearest already-picked token.
Ties go to the lowest position. Kept indices are returned in ascending order.

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

from ..types import ReducedTokens, ReducerError

__all__ = ["divprune_reduce", "divprune_select", "resolve_keep"]


def resolve_keep(keep: float, n: int) -> int:
    """An int is a count; a float in (0, 1] is a ratio rounded as ``int(round(ratio * n))``."""
    if isinstance(keep, bool):
        raise ReducerError("keep must be an int count or a float ratio in (0, 1], not a bool")
    if isinstance(keep, float):
        if not 0.0 < keep <= 1.0:
            raise ReducerError(f"a float keep is a ratio in (0, 1], got {keep}")
        keep = round(keep * n)
    keep = int(keep)
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
    with torch.no_grad():
        x = tokens.float()
        x = x / x.norm(dim=-1, keepdim=True)
        dist = 1.0 - x @ x.transpose(-1, -2)                        # [B, N, N], symmetric
        picked = torch.empty(b, keep, dtype=torch.long, device=tokens.device)
        scores = torch.topk(dist, 2, dim=1, largest=False).values[:, 1]  # distance to nearest other
        rows = torch.arange(b, device=tokens.device)
        mind = None
        for i in range(keep):
            idx = torch.argmax(scores if i == 0 else mind, dim=-1)
            picked[:, i] = idx
            row = dist[rows, idx]                                      # [B, N]
            mind = row if mind is None else torch.minimum(mind, row)
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
