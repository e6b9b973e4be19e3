"""DiffRate (Chen et al., ICCV 2023): per-layer prune and merge counts searched by
differentiable compression rates; at inference each block sorts tokens by class attention,
keeps the first ``prune_kept[l]`` and merges the rest down to ``merge_kept[l]``, each unimportant
token into its most similar important one (cosine of the hidden states).

The published schedules (``compression_rate.json`` of the paper's release, for frozen DeiT and
MAE models) ship with the plugin: ``published_schedule("ViT-S-DeiT", "2.9")``.
Counts include the class token (e.g. 197 for DeiT at 224²).

Example:
    >>> prune, merge = published_schedule("ViT-S-DeiT", 2.9)
    >>> len(prune), prune[-1], merge[1]
    (12, 3, 194)
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from importlib import resources

import torch

from ..types import Plan, ReducerError, Signals
from .base import CLS_ATTN, InModelPolicy

__all__ = ["DiffRatePolicy", "published_models", "published_schedule"]


def _rates() -> dict:
    text = resources.files(__package__.rsplit(".", 1)[0]).joinpath("data/diffrate_compression_rate.json").read_text()
    return json.loads(text)


def published_models() -> dict[str, list[str]]:
    """``{model key: [GFLOPs targets]}`` of the published DiffRate schedules."""
    return {k: sorted(v) for k, v in _rates().items()}


def published_schedule(model: str, flops: str | float) -> tuple[list[int], list[int]]:
    """The published (prune_kept, merge_kept) lists for ``model`` (e.g. "ViT-B-DeiT") at the
    GFLOPs target ``flops`` (e.g. "8.7")."""
    table = _rates()
    if model not in table:
        raise ReducerError(f"no published DiffRate schedule for {model!r}; known: {sorted(table)}")
    key = flops if isinstance(flops, str) else f"{float(flops):.1f}"
    if key not in table[model]:
        raise ReducerError(f"{model} has published DiffRate schedules at {sorted(table[model])} GFLOPs, not {flops!r}")
    entry = table[model][key]
    return json.loads(entry["prune_kept_num"]), json.loads(entry["merge_kept_num"])


class DiffRatePolicy(InModelPolicy):
    """Sort by class attention, prune to ``prune_kept[l]``, merge to ``merge_kept[l]``."""

    prop_attn = True
    needs_cls = True

    def __init__(self, prune_kept: Sequence[int], merge_kept: Sequence[int]):
        self.prune_kept = [int(v) for v in prune_kept]
        self.merge_kept = [int(v) for v in merge_kept]
        if len(self.prune_kept) != len(self.merge_kept):
            raise ReducerError(f"prune_kept has {len(self.prune_kept)} layers but merge_kept has {len(self.merge_kept)}")

    def bind(self, num_layers: int) -> None:
        if len(self.prune_kept) != num_layers:
            raise ReducerError(
                f"the DiffRate schedule has {len(self.prune_kept)} layers but the model has {num_layers} blocks; "
                "pick the published schedule of this architecture (published_models())")

    def needs(self, layer: int) -> frozenset[str]:
        return frozenset({CLS_ATTN})

    def plan(self, layer: int, s: Signals) -> Plan | None:
        return diffrate_plan(s.x, s.cls_attn, s.num_prefix, self.prune_kept[layer], self.merge_kept[layer])


def diffrate_plan(x: torch.Tensor, cls_attn: torch.Tensor, num_prefix: int, prune_kept: int, merge_kept: int) -> Plan:
    """Reorder by class attention (prefix first), prune, then merge (see the module docstring)."""
    b, n, _ = x.shape
    p = num_prefix
    dev = x.device
    with torch.no_grad():
        order = torch.sort(cls_attn[:, p:], descending=True)[1] + p
        order = torch.cat([torch.arange(p, device=dev).expand(b, p), order], dim=1)
    pk = min(prune_kept, n)
    mk = merge_kept
    merging = mk < prune_kept and mk < pk
    if merging:
        with torch.no_grad():
            metric = x.gather(1, order[:, :pk, None].expand(-1, -1, x.shape[-1]))
            metric = metric / metric.norm(dim=-1, keepdim=True)
            sim = metric[:, mk:] @ metric[:, :mk].transpose(-1, -2)
            sim[..., :, :p] = -torch.inf
            node_max, node_idx = sim.max(dim=-1)

    def merge(h: torch.Tensor, size: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        if size is None:
            size = torch.ones_like(h[..., :1])
        idx = order[:, :pk, None]
        h = h.gather(1, idx.expand(-1, -1, h.shape[-1]))
        size = size.gather(1, idx)
        if not merging:
            return h, size
        c = h.shape[-1]
        dst = node_idx[..., None]
        h = h[:, :mk].scatter_reduce(1, dst.expand(-1, -1, c), h[:, mk:], reduce="mean")
        size = torch.cat([size[:, :mk], size[:, mk:] * node_max[..., None]], dim=1)
        size = size[:, :mk].scatter_reduce(1, dst, size[:, mk:], reduce="sum")
        return h, size

    def slots() -> torch.Tensor:
        pos = torch.empty_like(order).scatter_(1, order, torch.arange(n, device=dev).expand(b, n))
        out = torch.where(pos < pk, pos, torch.full_like(pos, -1))
        if merging:
            src = node_idx.gather(1, (pos - mk).clamp(0, pk - mk - 1))
            out = torch.where((pos >= mk) & (pos < pk), src, out)
        return out

    return Plan(merge=merge, slots=slots, num_out=mk if merging else pk)
