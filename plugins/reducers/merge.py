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

from zoo.errors import InputError

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
        raise InputError(f"bipartite_plan: metric must be [B, N, D], got {tuple(metric.shape)}")
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
    b = metric.shape[0]
    dev = metric.device
    # Output order [prefix, unmerged A, B] as flat row indices into x.reshape(B*N, C), and each
    # merged A token's row / its destination's output row: one index_select and one index_add_
    # per merge (row copies) instead of gathers and scatters over expanded [B, k, C] indices.
    with torch.no_grad():
        unm_pos = unm_idx[..., 0] * 2
        b_pos = torch.arange(1, t, 2, device=dev).expand(b, -1)
        j = torch.arange(t // 2, device=dev)
        if pb:
            order = torch.cat([torch.arange(num_prefix, device=dev).expand(b, -1), unm_pos[:, pa:], b_pos[:, pb:]], dim=1)
            dst_out = torch.where(j < pb, 2 * j + 1, num_prefix + (n_a - r - pa) + (j - pb))[dst_idx[..., 0]]
        else:
            order = torch.cat([unm_pos, b_pos], dim=1)
            dst_out = dst_idx[..., 0] + (n_a - r)
        base_in = torch.arange(b, device=dev)[:, None] * t
        rows = (order + base_in).flatten()
        src_rows = (src_idx[..., 0] * 2 + base_in).flatten()
        dst_rows = (dst_out + torch.arange(b, device=dev)[:, None] * n_out).flatten()

    def merge(x: torch.Tensor, size: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """Size-weighted average of each merged group: ``sum(x * size) / sum(size)``."""
        bx, _, c = x.shape
        flat = x.reshape(-1, c)
        out, src = flat.index_select(0, rows), flat.index_select(0, src_rows)
        if size is None:
            new_size = torch.ones(bx * n_out, 1, dtype=x.dtype, device=x.device)
            new_size.index_add_(0, dst_rows, torch.ones(bx * r, 1, dtype=x.dtype, device=x.device))
        else:  # weight only the rows kept, in place (the same products as (x * size)[rows])
            sflat = size.reshape(-1, 1)
            s_out, s_src = sflat.index_select(0, rows), sflat.index_select(0, src_rows)
            out.mul_(s_out)
            src.mul_(s_src)
            new_size = s_out.index_add_(0, dst_rows, s_src)
        return out.index_add_(0, dst_rows, src).div_(new_size).view(bx, n_out, c), new_size.view(bx, n_out, 1)

    def slots() -> torch.Tensor:
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
