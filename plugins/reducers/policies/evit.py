"""EViT (Liang et al., ICLR 2022): at chosen blocks keep the ``ceil(keep_rate * N)`` patch tokens
the class token attends to most (in descending attention order) and fuse the inattentive rest into
one token, their attention-weighted sum. Trained in the paper; here applied training-free.

Example:
    >>> p = EViTPolicy(keep_rate=0.7, locations=(3, 6, 9))
    >>> p.bind(12); [l for l in range(12) if p.active(l)]
    [3, 6, 9]
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from ..checks import check_rate
from ..types import Plan, ReducerError, Signals
from .base import CLS_ATTN, InModelPolicy

__all__ = ["EViTPolicy", "evit_plan"]


class EViTPolicy(InModelPolicy):
    """Keep the most attended tokens at ``locations``; fuse the rest (``fuse=True``) or drop them."""

    prop_attn = False
    needs_cls = True

    def __init__(self, keep_rate: float | Sequence[float] = 0.7, locations: Sequence[int] = (3, 6, 9), fuse: bool = True):
        self.keep_rate = keep_rate
        self.locations = tuple(int(v) for v in locations)
        self.fuse = fuse
        self.rates: list[float] = []

    def bind(self, num_layers: int) -> None:
        rates = self.keep_rate if isinstance(self.keep_rate, Sequence) and not isinstance(self.keep_rate, str) else [self.keep_rate] * len(self.locations)
        if len(rates) != len(self.locations):
            raise ReducerError(f"EViT: {len(rates)} keep rates for {len(self.locations)} locations")
        self.rates = [1.0] * num_layers
        for loc, rate in zip(self.locations, rates):
            if not 0 <= loc < num_layers:
                raise ReducerError(f"EViT location {loc} is outside the model's {num_layers} blocks")
            self.rates[loc] = check_rate("EViT keep_rate", rate)

    def needs(self, layer: int) -> frozenset[str]:
        return frozenset({CLS_ATTN}) if self.rates[layer] < 1.0 else frozenset()

    def plan(self, layer: int, s: Signals) -> Plan | None:
        return evit_plan(s.x, s.cls_attn, s.num_prefix, self.rates[layer], self.fuse)


def evit_plan(x: torch.Tensor, cls_attn: torch.Tensor, num_prefix: int, keep_rate: float, fuse: bool = True) -> Plan | None:
    """Plan one EViT step (see the module docstring); None when every token is kept."""
    b, n, _ = x.shape
    p = num_prefix
    left = math.ceil(keep_rate * (n - p))
    if left >= n - p:
        return None
    left = max(left, 1)
    dev = x.device
    with torch.no_grad():
        attn = cls_attn[:, p:]
        top = torch.topk(attn, left, dim=1, largest=True, sorted=True)[1]
        keep_mask = torch.ones(b, n - p, dtype=torch.bool, device=dev).scatter_(1, top, False)
        rest = keep_mask.nonzero()[:, 1].view(b, n - p - left)  # ascending positions of the rest
        rest_attn = attn.gather(1, rest)
    n_out = p + left + (1 if fuse else 0)

    def merge(h: torch.Tensor, size: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        if size is None:
            size = torch.ones_like(h[..., :1])
        body, sbody = h[:, p:], size[:, p:]
        parts = [h[:, :p], body.gather(1, top[..., None].expand(-1, -1, h.shape[-1]))]
        sizes = [size[:, :p], sbody.gather(1, top[..., None])]
        if fuse:
            others = body.gather(1, rest[..., None].expand(-1, -1, h.shape[-1]))
            parts.append((others * rest_attn[..., None]).sum(dim=1, keepdim=True))
            sizes.append(sbody.gather(1, rest[..., None]).sum(dim=1, keepdim=True))
        return torch.cat(parts, dim=1), torch.cat(sizes, dim=1)

    def slots() -> torch.Tensor:
        out = torch.full((b, n), -1 if not fuse else p + left, dtype=torch.long, device=dev)
        out[:, :p] = torch.arange(p, device=dev)
        out.scatter_(1, top + p, torch.arange(p, p + left, device=dev).expand(b, left))
        return out

    return Plan(merge=merge, slots=slots, num_out=n_out)
