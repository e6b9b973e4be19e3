"""Value types shared by every reducer: the result of ``reduce`` and the per-layer plan.

Example:
    >>> import torch
    >>> from zoo_plugins.reducers.types import ReducedTokens
    >>> out = ReducedTokens(torch.zeros(1, 2, 4), torch.tensor([[0, 3]]), torch.ones(1, 2, 1))
    >>> out.num_tokens
    2
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from zoo.errors import ReducerError
from zoo.interfaces import ReducedTokens as _CoreReducedTokens

__all__ = ["Plan", "ReducedTokens", "ReducerError", "Signals"]


@dataclass(repr=False)  # keep the core one-line repr (no tensor dump)
class ReducedTokens(_CoreReducedTokens):
    """The output of ``reducer.reduce(tokens, keep=...)`` (``zoo.interfaces.ReducedTokens`` plus
    the assignment of every input token).

    Attributes:
        tokens: ``[B, K, D]`` kept (or merged) tokens.
        indices: ``[B, K]`` long; for pruning, the kept input positions (ascending); for merging,
            the smallest input position among the tokens merged into each output token.
        sizes: ``[B, K, 1]`` float; how many input tokens each output token stands for.
        assignment: optional ``[B, N]`` long; the output slot of every input token (-1 = dropped).
    """

    assignment: torch.Tensor | None = None

    @property
    def num_tokens(self) -> int:
        return int(self.tokens.shape[1])


@dataclass
class Plan:
    """How one layer reduces its tokens: produced by a policy, run by an adapter.

    ``merge(x, size) -> (x, size)`` maps ``[B, N, C]`` hidden states and ``[B, N, 1]`` sizes
    (None = all ones) to the reduced sequence. ``slots()`` returns ``[B, N]`` long: the output
    position of every input token (-1 where it is dropped); it is only called when sources are
    tracked (visualisation, ``forward_intermediates``), so policies may compute it lazily.

    Pre-attention policies (MCTF) also merge the block's attention map: ``merge_keys(p)`` sums
    the key columns of probabilities ``[B, H, Nq, N] -> [B, H, Nq, N_out]`` (any query chunk),
    ``merge_queries(o, size)`` averages per-query outputs ``[B, H, N, D] -> [B, H, N_out, D]``;
    ``merge_attention(p, size)`` does both on a full ``[B, H, N, N]`` map.
    """

    merge: Callable[[torch.Tensor, torch.Tensor | None], tuple[torch.Tensor, torch.Tensor]]
    slots: Callable[[], torch.Tensor]
    num_out: int
    merge_attention: Callable[..., torch.Tensor] | None = None
    merge_keys: Callable[[torch.Tensor], torch.Tensor] | None = None
    merge_queries: Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor] | None = None


@dataclass
class Signals:
    """What an adapter hands a policy at one layer, after attention and its residual.

    Attributes:
        layer: block index.
        x: ``[B, N, C]`` hidden states (attention residual applied, MLP not yet).
        size: ``[B, N, 1]`` token sizes, or None while no token has been merged.
        num_prefix: how many leading tokens are protected (CLS, distillation, registers).
        keys: ``[B, N, Dh]`` attention keys averaged over heads (if the policy asked for them).
        cls_attn: ``[B, N]`` attention of the first token over all tokens, averaged over heads.
        attn: ``[B, H, N, N]`` attention probabilities of the block's input (pre-attention
            policies only, e.g. MCTF; ``x`` is then the block input). Adapters that bound
            memory pass ``attn_col_mean`` instead and leave this None.
        attn_col_mean: ``[B, N]`` mean attention each token receives (over heads and queries),
            computed in query chunks so the full map need not exist.
    """

    layer: int
    x: torch.Tensor
    size: torch.Tensor | None
    num_prefix: int
    keys: torch.Tensor | None = None
    cls_attn: torch.Tensor | None = None
    attn: torch.Tensor | None = None
    attn_col_mean: torch.Tensor | None = None
