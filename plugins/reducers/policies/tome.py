"""ToMe (Bolya et al., ICLR 2023): bipartite soft matching on attention keys, merging ``r``
tokens per block with proportional attention. Training-free on off-the-shelf ViTs.

Example:
    >>> parse_r(4, 8)
    [8, 8, 8, 8]
    >>> parse_r(3, (8, -1.0))
    [16, 8, 0]
    >>> parse_r(3, [4, 2])
    [4, 2, 0]
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..checks import check_count, check_real
from ..merge import bipartite_plan, max_bipartite_r
from ..types import Plan, ReducedTokens, ReducerError, Signals
from .base import KEYS, InModelPolicy

__all__ = ["ToMePolicy", "parse_r", "tome_reduce"]

RSchedule = int | tuple | Sequence[int]


def parse_r(num_layers: int, r: RSchedule) -> list[int]:
    """Per-layer merge counts from ``r``: an int (constant), ``(r, inflection)`` with inflection in
    [-1, 1] (-1 = the paper's decreasing schedule), or an explicit list (zero-padded)."""
    if isinstance(r, bool):
        raise ReducerError("r must be an int, an (r, inflection) tuple or a list of ints, not a bool")
    if isinstance(r, str):
        raise ReducerError(f"r must be an int, an (r, inflection) tuple or a list of ints, got the string {r!r}")
    if isinstance(r, (list,)) or (isinstance(r, Sequence) and not isinstance(r, tuple)):
        r = [check_count(f"r[{i}]", v, minimum=0) for i, v in enumerate(r)]
        if len(r) > num_layers:
            raise ReducerError(f"r lists {len(r)} values but the model has {num_layers} blocks")
        return r + [0] * (num_layers - len(r))
    inflect = 0.0
    if isinstance(r, tuple):
        if len(r) != 2:
            raise ReducerError(f"an r tuple is (r, inflection), got {r!r}")
        r, inflect = r
        inflect = check_real("the inflection", inflect)
        if not -1.0 <= inflect <= 1.0:
            raise ReducerError(f"the inflection must be in [-1, 1], got {inflect}")
    r = check_count("r", r, minimum=0)
    min_val = int(r * (1.0 - inflect))
    max_val = 2 * r - min_val
    step = (max_val - min_val) / max(num_layers - 1, 1)
    return [int(min_val + step * i) for i in range(num_layers)]


class ToMePolicy(InModelPolicy):
    """Merge ``r`` tokens per block by bipartite soft matching on the head-averaged keys."""

    def __init__(self, r: RSchedule = 0, prop_attn: bool = True):
        self.r = r
        self.prop_attn = prop_attn
        self.schedule: list[int] = []

    def bind(self, num_layers: int) -> None:
        self.schedule = parse_r(num_layers, self.r)

    def needs(self, layer: int) -> frozenset[str]:
        return frozenset({KEYS}) if self.schedule[layer] > 0 else frozenset()

    def plan(self, layer: int, signals: Signals) -> Plan | None:
        return bipartite_plan(signals.keys, self.schedule[layer], signals.num_prefix)


def tome_reduce(tokens: torch.Tensor, keep: int, metric: torch.Tensor | None = None, num_prefix: int = 0,
                size: torch.Tensor | None = None) -> ReducedTokens:
    """Merge ``tokens`` ``[B, N, D]`` down to ``keep`` tokens by repeated bipartite matching on
    ``metric`` (default: the tokens themselves), size-weighted.

    Example:
        >>> import torch
        >>> out = tome_reduce(torch.randn(2, 10, 4), keep=4)
        >>> out.tokens.shape, out.sizes.sum(1).flatten().tolist()
        (torch.Size([2, 4, 4]), [10.0, 10.0])
    """
    n = tokens.shape[1]
    if not num_prefix <= keep <= n:
        raise ReducerError(f"keep must be between num_prefix={num_prefix} and the {n} tokens, got {keep}")
    own_metric = metric is None
    x, cur_size, assign = tokens, size, None
    while x.shape[1] > keep:
        t = x.shape[1]
        step = min(t - keep, max_bipartite_r(t, num_prefix))
        if step <= 0:
            raise ReducerError(f"cannot merge below {t} tokens with {num_prefix} protected")
        plan = bipartite_plan(x if own_metric else metric, step, num_prefix)
        slots = plan.slots()
        if not own_metric:
            metric = plan.merge(metric, cur_size)[0]
        x, cur_size = plan.merge(x, cur_size)
        assign = slots if assign is None else slots.gather(1, assign)
    if assign is None:
        assign = torch.arange(n, device=tokens.device).expand(tokens.shape[0], n)
        cur_size = torch.ones_like(tokens[..., :1]) if cur_size is None else cur_size
    # representative: the smallest input position mapped to each output slot
    rep = torch.full((tokens.shape[0], x.shape[1]), n, dtype=torch.long, device=tokens.device)
    rep.scatter_reduce_(1, assign, torch.arange(n, device=tokens.device).expand_as(assign), reduce="amin")
    return ReducedTokens(tokens=x, indices=rep, sizes=cur_size, assignment=assign)
