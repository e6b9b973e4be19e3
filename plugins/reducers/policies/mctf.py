"""MCTF (Lee et al., CVPR 2024), its training-free form: multi-criteria token fusion.

Before attention in each active block, tokens are matched bipartitely (even / odd positions) on
the product of three criteria: similarity ``((cos + 1) / 2)^(1/tau_sim)`` of the block inputs,
informativeness ``(ã_i ã_j)^(1/tau_info)`` with ``ã = 1 / (attention column mean)`` scaled to max
1, and size ``(s̃_i s̃_j)^(1/tau_size)`` with ``s̃ = 1 / size`` scaled to max 1. Bidirectional:
``r // 2`` A tokens merge into B, then ``r - r // 2`` B tokens into the unmerged A tokens.
Merging is a weighted average: by ``attention column mean × size / max size`` (``pooling="attn"``,
the published setting) or by size (``pooling="size"``). One-step-ahead: the block's attention map (computed once, on the
unmerged tokens) is merged too (keys summed, queries size-averaged) and applied to the merged
values, so attention is not recomputed. Published setting: r=16, taus (1, 20, 40), bidirectional, attention pooling, blocks 1..L-1.

Example:
    >>> p = MCTFPolicy(r=16)
    >>> p.bind(12); [l for l in range(12) if p.active(l)][:3]
    [1, 2, 3]
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

from ..types import Plan, ReducerError, Signals
from .base import ATTN, InModelPolicy

__all__ = ["MCTFPolicy", "mctf_plan"]


class MCTFPolicy(InModelPolicy):
    """MCTF with one-step-ahead attention at the blocks in ``layers`` (default: all but the first)."""

    pre_attention = True

    def __init__(self, r: float = 16, layers: Sequence[int] | None = None, tau_sim: float = 1.0, tau_info: float = 20.0,
                 tau_size: float = 40.0, bidirection: bool = True, pooling: str = "attn", prop_attn: bool = True):
        if pooling not in ("attn", "size"):
            raise ReducerError(f"MCTF pooling is 'attn' or 'size', got {pooling!r}")
        self.pooling = pooling
        self.r = _check_mctf_r(r)
        self.layers = None if layers is None else tuple(int(v) for v in layers)
        self.taus = (tau_sim, tau_info, tau_size)
        self.bidirection = bidirection
        self.prop_attn = prop_attn
        self.active_layers: frozenset[int] = frozenset()

    def bind(self, num_layers: int) -> None:
        layers = range(1, num_layers) if self.layers is None else self.layers
        bad = [v for v in layers if not 0 <= v < num_layers]
        if bad:
            raise ReducerError(f"MCTF layers {bad} are outside the model's {num_layers} blocks")
        self.active_layers = frozenset(layers)

    def needs(self, layer: int) -> frozenset[str]:
        return frozenset({ATTN}) if layer in self.active_layers else frozenset()

    def plan(self, layer: int, s: Signals) -> Plan | None:
        if s.num_prefix > 1:
            raise ReducerError("MCTF protects at most one prefix (class) token, as the original does")
        col_mean = s.attn_col_mean if s.attn_col_mean is not None else None if s.attn is None else s.attn.mean(dim=[1, 2])
        return mctf_plan(s.x, col_mean, s.size, self.r, s.num_prefix, *self.taus, bidirection=self.bidirection,
                         pooling=self.pooling)


def _check_mctf_r(r: Any) -> float:
    """MCTF's ``r``: a count (a whole number >= 1) or a ratio of the tokens in (0, 1)."""
    from ..checks import check_real

    value = check_real("MCTF r", r)
    if value < 0 or (value >= 1 and value != int(value)):
        raise ReducerError(f"MCTF r is a token count (a whole number >= 1) or a ratio in (0, 1), got {r!r}")
    return int(value) if value >= 1 else value


def _expand(idx: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``[B, k]`` indices -> broadcast over ``like``'s middle dims, token dim -2."""
    view = idx.view(idx.shape[0], *([1] * (like.dim() - 3)), idx.shape[1], 1)
    return view.expand(*like.shape[:-2], idx.shape[1], like.shape[-1])


def mctf_plan(x: torch.Tensor, attn: torch.Tensor | None, size: torch.Tensor | None, r: float, num_prefix: int,
              tau_sim: float, tau_info: float, tau_size: float, bidirection: bool = True,
              pooling: str = "attn") -> Plan | None:
    """Plan one MCTF step on block inputs ``x`` ``[B, N, C]`` (see the module docstring).

    ``attn`` is the attention map ``[B, H, N, N]`` or, to keep memory bounded, just its column
    means ``[B, N]`` (the mean attention each token receives: all that MCTF reads of the map).
    """
    if attn is not None and attn.dim() == 4:
        attn = attn.mean(dim=[1, 2])
    b, t, _ = x.shape
    p = num_prefix
    if t - r < 10:
        r = t - 10
    r = min(int((t - p) * r) if r < 1 else int(r), (t - p) // 2)
    if r <= 0:
        return None
    r1, r2 = (r // 2, r - r // 2) if bidirection else (r, 0)
    n_a, n_b = (t + 1) // 2, t // 2
    with torch.no_grad():
        metric = x / x.norm(dim=-1, keepdim=True)
        a, bb = metric[..., ::2, :], metric[..., 1::2, :]
        scores = ((a @ bb.transpose(-1, -2) + 1) / 2) ** (1 / tau_sim) if tau_sim else torch.ones(b, n_a, n_b, device=x.device)
        if tau_info > 0 and attn is not None:
            info = 1 / attn
            info = info / info.max(1, keepdim=True)[0]
            scores = scores * (info[..., ::2, None] * info[..., 1::2, None].transpose(1, 2)) ** (1 / tau_info)
        if tau_size and size is not None:
            inv = 1 / size
            inv = inv / inv.max(1, keepdim=True)[0]
            scores = scores * (inv[..., ::2, :] * inv[..., 1::2, :].transpose(1, 2)) ** (1 / tau_size)
        if p:
            scores[..., :p, :] = -math.inf
        node_max, node_idx = scores.max(dim=-1)
        edge_idx = node_max.argsort(dim=-1, descending=True)
        unm_idx, src_idx = edge_idx[:, r1:], edge_idx[:, :r1]
        dst_idx = node_idx.gather(1, src_idx)
        if p:
            unm_idx = unm_idx.sort(dim=1)[0]
        n_unm = n_a - r1
        if bidirection:
            new_scores = scores.gather(1, unm_idx[..., None].expand(b, n_unm, n_b)).transpose(1, 2)
            node_max2, node_idx2 = new_scores.max(dim=-1)
            edge_idx2 = node_max2.sort(dim=-1, descending=True)[1]
            unm_idx2, src_idx2 = edge_idx2[:, r2:], edge_idx2[:, :r2]
            dst_idx2 = node_idx2.gather(1, src_idx2)

    def merge_sum(v: torch.Tensor) -> torch.Tensor:
        src, dst = v[..., ::2, :], v[..., 1::2, :]
        unm = src.gather(-2, _expand(unm_idx, src))
        dst = dst.scatter_reduce(-2, _expand(dst_idx, dst), src.gather(-2, _expand(src_idx, src)), reduce="sum")
        if not bidirection:
            return torch.cat([unm, dst], dim=-2)
        unm2 = dst.gather(-2, _expand(unm_idx2, dst))
        unm = unm.scatter_reduce(-2, _expand(dst_idx2, unm), dst.gather(-2, _expand(src_idx2, dst)), reduce="sum")
        return torch.cat([unm, unm2], dim=-2)

    attn_m = attn[..., None] if pooling == "attn" else None

    def weights(sz: torch.Tensor) -> torch.Tensor:
        return sz if attn_m is None else attn_m * (sz / sz.amax(dim=-2, keepdim=True))

    def merge(h: torch.Tensor, sz: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        if sz is None:
            sz = torch.ones_like(h[..., :1])
        w = weights(sz)
        return merge_sum(h * w) / merge_sum(w), merge_sum(sz)

    def merge_attention(probs: torch.Tensor, sz: torch.Tensor | None) -> torch.Tensor:
        """Merge ``[B, H, N, N]`` probabilities: keys summed, queries averaged with the pooling weights."""
        return merge_queries(merge_keys(probs), sz)

    def merge_keys(probs: torch.Tensor) -> torch.Tensor:
        """Sum the key columns of ``[B, H, Nq, N]`` probabilities (any chunk of queries)."""
        return merge_sum(probs[..., None]).squeeze(-1)

    def merge_queries(o: torch.Tensor, sz: torch.Tensor | None) -> torch.Tensor:
        """Average ``[B, H, N, D]`` per-query rows with the pooling weights."""
        if sz is None:
            sz = torch.ones(b, t, 1, dtype=o.dtype, device=o.device)
        w = weights(sz)
        return merge_sum(o * w[:, None]) / merge_sum(w)[:, None]

    def slots() -> torch.Tensor:
        dev = x.device
        pos_b = torch.empty(b, n_b, dtype=torch.long, device=dev)
        if bidirection:
            pos_b.scatter_(1, unm_idx2, (n_unm + torch.arange(n_b - r2, device=dev)).expand(b, -1))
            pos_b.scatter_(1, src_idx2, dst_idx2)
        else:
            pos_b = (n_unm + torch.arange(n_b, device=dev)).expand(b, -1).clone()
        pos_a = torch.empty(b, n_a, dtype=torch.long, device=dev)
        pos_a.scatter_(1, unm_idx, torch.arange(n_unm, device=dev).expand(b, -1))
        pos_a.scatter_(1, src_idx, pos_b.gather(1, dst_idx))
        out = torch.empty(b, t, dtype=torch.long, device=dev)
        out[:, ::2], out[:, 1::2] = pos_a, pos_b
        return out

    return Plan(merge=merge, slots=slots, num_out=t - r, merge_attention=merge_attention, merge_keys=merge_keys,
                merge_queries=merge_queries)
