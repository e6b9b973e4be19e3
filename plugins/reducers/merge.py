"""Token merging primitives: ToMe's bipartite soft matching with any number of protected
prefix tokens, size-weighted merging, and helpers on token sizes and source maps.

Clean implementation from Bolya et al., "Token Merging: Your ViT But Faster" (ICLR 2023):
tokens alternate into sets A (even positions) and B (odd positions); each A token proposes
its most similar B token (cosine of the metric); the ``r`` most similar proposals are merged
by a size-weighted average. Prefix tokens never merge and nothing merges into them; the output
order is ``[prefix, unmerged A (ascending), B]``, the order the original ToMe patch produces for
a class token (and a distillation token).

Example:
    >>> import torch
    >>> x = torch.randn(2, 9, 4)
    >>> plan = bipartite_plan(x, r=3, num_prefix=1)
    >>> y, size = plan.merge(x, None)
    >>> y.shape, size.sum(1).flatten().tolist()
    (torch.Size([2, 6, 4]), [9.0, 9.0])
"""

from __future__ import annotations

import torch

from .types import Plan

__all__ = ["bipartite_plan", "compose_slots", "max_bipartite_r", "weighted_mean"]


def max_bipartite_r(num_tokens: int, num_prefix: int) -> int:
    """The most tokens one bipartite step can remove (half of the unprotected tokens)."""
    n_a, n_b = (num_tokens + 1) // 2, num_tokens // 2
    return max(0, min((num_tokens - num_prefix) // 2, n_a - (num_prefix + 1) // 2, n_b - num_prefix // 2))


def bipartite_plan(metric: torch.Tensor, r: int, num_prefix: int = 0) -> Plan | None:
    """Plan one ToMe step on ``metric`` ``[B, N, D]``: merge ``r`` tokens (capped at half the
    unprotected tokens). Returns None when nothing is merged.

    Example:
        >>> import torch
        >>> bipartite_plan(torch.randn(1, 5, 8), r=0) is None
        True
    """
    if metric.dim() != 3:
        raise ValueError(f"bipartite_plan: metric must be [B, N, D], got {tuple(metric.shape)}")
    t = metric.shape[1]
    r = min(int(r), max_bipartite_r(t, num_prefix))
    if r <= 0:
        return None
    pa, pb = (num_prefix + 1) // 2, num_prefix // 2  # protected tokens in set A / set B
    n_a = (t + 1) // 2
    with torch.no_grad():
        metric = metric / metric.norm(dim=-1, keepdim=True)
        scores = metric[..., ::2, :] @ metric[..., 1::2, :].transpose(-1, -2)
        if pa:
            scores[..., :pa, :] = -torch.inf
        if pb:
            scores[..., :, :pb] = -torch.inf
        node_max, node_idx = scores.max(dim=-1)
        edge_idx = node_max.argsort(dim=-1, descending=True)[..., None]
        unm_idx = edge_idx[..., r:, :]
        src_idx = edge_idx[..., :r, :]
        dst_idx = node_idx[..., None].gather(dim=-2, index=src_idx)
        if num_prefix:
            unm_idx = unm_idx.sort(dim=1)[0]
    n_out = t - r

    def merge(x: torch.Tensor, size: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        if size is None:
            size = torch.ones_like(x[..., :1])
        x, size = _merge_sum(x * size), _merge_sum(size)
        return x / size, size

    def _merge_sum(x: torch.Tensor) -> torch.Tensor:
        src, dst = x[..., ::2, :], x[..., 1::2, :]
        n, _, c = src.shape
        unm = src.gather(dim=-2, index=unm_idx.expand(n, n_a - r, c))
        src = src.gather(dim=-2, index=src_idx.expand(n, r, c))
        dst = dst.scatter_reduce(-2, dst_idx.expand(n, r, c), src, reduce="sum")
        if pb:  # a prefix token sits in set B: restore the original prefix order
            return torch.cat([x[:, :num_prefix], unm[:, pa:], dst[:, pb:]], dim=1)
        return torch.cat([unm, dst], dim=1)

    def slots() -> torch.Tensor:
        b = metric.shape[0]
        dev = metric.device
        n_unm = n_a - r
        pos_a = torch.empty(b, n_a, dtype=torch.long, device=dev)
        unm_pos = torch.arange(n_unm, device=dev).expand(b, n_unm)
        unm_pos = torch.where(unm_pos < pa, unm_pos * 2, unm_pos - pa + num_prefix) if pb else unm_pos
        pos_a.scatter_(1, unm_idx[..., 0], unm_pos)
        j = torch.arange(t // 2, device=dev)
        pos_b = torch.where(j < pb, 2 * j + 1, num_prefix + (n_unm - pa) + (j - pb)) if pb else n_unm + j
        pos_b = pos_b.expand(b, -1)
        pos_a.scatter_(1, src_idx[..., 0], pos_b.gather(1, dst_idx[..., 0]))
        out = torch.empty(b, t, dtype=torch.long, device=dev)
        out[:, ::2], out[:, 1::2] = pos_a, pos_b
        return out

    return Plan(merge=merge, slots=slots, num_out=n_out)


def weighted_mean(x: torch.Tensor, size: torch.Tensor | None, dim: int = 1) -> torch.Tensor:
    """Mean over ``dim`` weighted by token size (plain mean when ``size`` is None).

    Example:
        >>> import torch
        >>> weighted_mean(torch.tensor([[[1.0], [4.0]]]), torch.tensor([[[3.0], [1.0]]])).item()
        1.75
    """
    if size is None:
        return x.mean(dim=dim)
    return (x * size).sum(dim=dim) / size.sum(dim=dim)


def compose_slots(source: torch.Tensor | None, slots: torch.Tensor) -> torch.Tensor:
    """Follow a layer's ``slots`` ([B, N_in] -> output position, -1 dropped) from a source map
    ``[B, N0]`` (positions in the layer's input, -1 dropped). None means the identity."""
    if source is None:
        return slots
    out = slots.gather(1, source.clamp(min=0))
    return torch.where(source < 0, source, out)
