"""The adapter for zoo's own transformers (and anyone's): a small opt-in protocol.

A model becomes reducible by implementing two methods, and its pre-norm blocks three; nothing
needs importing from the reducers plugin (duck typing). The model:

* ``reducer_blocks() -> Sequence[nn.Module]``: the blocks, in the order the model runs them;
* ``reducer_protected() -> tuple[int, int]``: how many leading tokens (class, registers) and
  trailing tokens (e.g. TiTok's latent tokens, the encoder's output) are never merged. They are
  never merged into either, and keep their positions: leading ones first, trailing ones last.

Each block (``x -> x' + mlp(x')`` with ``x' = x + attn_out(attention(q, k, v))``):

* ``reducer_qkv(x, rows=None) -> (q, k, v)``: the pre-attention norm and projection of the block
  input ``[B, N, C]`` into ``[B, H, *, Dh]`` heads (keys after any key norm), ``q`` only for
  ``rows`` (a slice) when given;
* ``reducer_attn_out(o) -> [B, Nq, C]``: the attention output ``[B, H, Nq, Dh]`` to the
  attention residual branch (output projection, layer scale, ...);
* ``reducer_mlp(x) -> [B, N, C]``: the MLP residual branch (its norm included);
* optional ``reducer_scale``: the attention scale (default ``Dh ** -0.5``). The attention
  backend is the ``attn_backend`` of the block's first submodule that has one.

The adapter replaces each block's ``forward`` per instance (``remove()`` deletes it again, so the
model is bit-exact afterwards; ``state_dict`` keys never change). A patched block is called as
``block(x)`` or ``block(x, rows)``: with ``rows`` only those rows are returned (all tokens are
attended to) and nothing is merged in that block, since merging cannot change the rows kept.
Attention runs through ``zoo.nn.attention`` with a ``log(size)`` bias for proportional
attention; keys, the class row (first leading token) and, for MCTF, chunked attention maps come
from ``reducer_qkv``. Policies see the protected tokens first (``[leading, trailing, rest]``);
the adapter moves the trailing ones back to the end, so the model's own code keeps working.

Example:
    >>> import torch
    >>> from zoo_plugins.titok.config import TiTokConfig
    >>> from zoo_plugins.titok.vit import TiTokEncoder
    >>> from zoo_plugins.reducers.policies.tome import ToMePolicy
    >>> enc = TiTokEncoder(TiTokConfig(vit_enc_model_size="small", crop_size=64, num_latent_tokens=4)).eval()
    >>> handle = ZooBlocksAdapter().patch(enc, ToMePolicy(r=2))
    >>> tuple(enc(torch.rand(2, 3, 64, 64), torch.zeros(4, 512)).shape), handle.tokens_per_layer[:3]
    ((2, 12, 1, 4), [21, 19, 17])
    >>> handle.remove()
"""

from __future__ import annotations

from functools import partial
from typing import Any

import torch

from ..merge import compose_slots
from ..types import ReducerError, Signals
from .base import ModelAdapter, ReducerHandle
from .timm_vit import _RunState, _size_bias, unpatch

__all__ = ["ZooBlocksAdapter", "is_reducible"]

_BLOCK_METHODS = ("reducer_qkv", "reducer_attn_out", "reducer_mlp")


def is_reducible(model: Any) -> bool:
    """Whether ``model`` implements the model side of the protocol (``reducer_blocks`` and
    ``reducer_protected``).

    Example:
        >>> is_reducible(torch.nn.Linear(2, 2))
        False
    """
    return callable(getattr(model, "reducer_blocks", None)) and callable(getattr(model, "reducer_protected", None))


class _Layout:
    """Moves the ``trail`` protected tokens at the end of a sequence to just after the ``lead``
    ones (the layout policies expect: every protected token first) and back."""

    def __init__(self, lead: int, trail: int):
        self.lead, self.trail = lead, trail

    def front(self, t: torch.Tensor | None, dim: int = 1) -> torch.Tensor | None:
        if t is None or not self.trail:
            return t
        n = t.shape[dim]
        return torch.cat([t.narrow(dim, 0, self.lead), t.narrow(dim, n - self.trail, self.trail),
                          t.narrow(dim, self.lead, n - self.lead - self.trail)], dim=dim)

    def back(self, t: torch.Tensor | None, dim: int = 1) -> torch.Tensor | None:
        if t is None or not self.trail:
            return t
        n, p = t.shape[dim], self.lead + self.trail
        return torch.cat([t.narrow(dim, 0, self.lead), t.narrow(dim, p, n - p),
                          t.narrow(dim, self.lead, self.trail)], dim=dim)

    def slots(self, slots: torch.Tensor, num_out: int) -> torch.Tensor:
        """A plan's slots (front layout in and out) in the model's layout."""
        if not self.trail:
            return slots
        lead, trail = self.lead, self.trail
        out = torch.where(slots < lead, slots,
                          torch.where(slots < lead + trail, slots + (num_out - lead - trail), slots - trail))
        return self.back(torch.where(slots < 0, slots, out))


def _backend_holder(block: torch.nn.Module) -> torch.nn.Module | None:
    return next((m for m in block.modules() if hasattr(m, "attn_backend")), None)


def _attention(state: _RunState, layer: int, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
               mask: Any) -> torch.Tensor:
    from zoo.nn.attention import attention

    holder = state.backend_holders[layer]
    backend = state.backend or (holder.attn_backend if holder is not None else None)
    return attention(q, k, v, mask=mask, scale=state.scales[layer], backend=backend)


def _block_forward(state: _RunState, layer: int, block: torch.nn.Module, x: torch.Tensor,
                   rows: slice | None = None) -> torch.Tensor:
    """The block's forward (pre-norm residual) with a reduction between attention and MLP."""
    if layer == 0:
        state.start(x)
    policy, layout = state.policy, state.layout
    state.tokens_per_layer.append(x.shape[1])
    size = state.size
    mask = _size_bias(size) if policy.prop_attn and size is not None else None
    needs = policy.needs(layer) if rows is None else frozenset()
    if policy.pre_attention and needs:
        return _pre_attention_block(state, layer, block, x, mask)
    n_in = x.shape[1]
    q, k, v = block.reducer_qkv(x, rows)
    x = (x if rows is None else x[:, rows]) + block.reducer_attn_out(_attention(state, layer, q, k, v, mask))
    if rows is not None:
        if size is not None:
            state.size = size[:, rows]
        if state.source is not None:  # rows are kept, in order; the others are dropped
            pos = torch.full((n_in,), -1, dtype=torch.long, device=x.device)
            pos[rows] = torch.arange(x.shape[1], device=x.device)
            state.source = compose_slots(state.source, pos.expand(x.shape[0], -1))
    elif needs or policy.active(layer):
        keys = layout.front(k.mean(1)) if "keys" in needs else None
        cls = _class_row(state, layer, q, k, mask) if "cls_attn" in needs else None
        plan = policy.plan(layer, Signals(layer, layout.front(x), layout.front(size), state.num_prefix, keys, cls))
        if plan is not None:
            if state.source is not None:
                state.source = compose_slots(state.source, layout.slots(plan.slots(), plan.num_out))
            x, new_size = plan.merge(layout.front(x), layout.front(size))
            x, state.size = layout.back(x), layout.back(new_size)
    return x + block.reducer_mlp(x)


def _class_row(state: _RunState, layer: int, q: torch.Tensor, k: torch.Tensor, mask: Any) -> torch.Tensor:
    """``[B, N]`` head-averaged attention of the first token (one row), in the policy layout."""
    logits = (q[:, :, :1] @ k.transpose(-2, -1)) * (state.scales[layer] or q.shape[-1] ** -0.5)
    bias = getattr(mask, "bias", None)
    if bias is not None:
        logits = logits + bias[..., :1, :].to(logits.dtype)
    return state.layout.front(logits.float().softmax(dim=-1).mean(dim=1)[:, 0])


def _pre_attention_block(state: _RunState, layer: int, block: torch.nn.Module, x: torch.Tensor,
                         mask: Any) -> torch.Tensor:
    """MCTF-style block: plan from the (chunked) attention map of the block input, merge, and
    apply the merged map to the merged values (one step ahead)."""
    from ._attn_maps import column_means, merged_attention

    layout, size = state.layout, state.size
    q, k, v = block.reducer_qkv(x)
    scale = state.scales[layer] or q.shape[-1] ** -0.5
    bias = getattr(mask, "bias", None)
    col, probs = column_means(q, k, scale, bias)
    signals = Signals(layer, layout.front(x), layout.front(size), state.num_prefix,
                      attn=None if probs is None or layout.trail else probs, attn_col_mean=layout.front(col))
    plan = state.policy.plan(layer, signals)
    if plan is None:
        out = _attention(state, layer, q, k, v, mask)
    else:
        if state.source is not None:
            state.source = compose_slots(state.source, layout.slots(plan.slots(), plan.num_out))
        xf, new_size = plan.merge(layout.front(x), layout.front(size))
        x, state.size = layout.back(xf), layout.back(new_size)
        v_new = layout.front(block.reducer_qkv(x)[2], dim=2)
        qf, kf = layout.front(q, dim=2), layout.front(k, dim=2)
        bf = None if bias is None else layout.front(bias, dim=-1)
        out = merged_attention(qf, kf, scale, bf, None if layout.trail else probs, plan, layout.front(size), v_new)
        out = layout.back(out, dim=2)
    x = x + block.reducer_attn_out(out)
    return x + block.reducer_mlp(x)


class ZooBlocksAdapter(ModelAdapter):
    """Adapter for any model implementing the reducer protocol (see the module docstring)."""

    name = "zoo_blocks"

    def supports(self, model: torch.nn.Module) -> bool:
        return is_reducible(model)

    def patch(self, model: torch.nn.Module, policy: Any, *, trace_source: bool = False,
              backend: str | None = None) -> ReducerHandle:
        if getattr(model, "_zoo_reducer", None) is not None:
            raise ReducerError("this model already has a reducer applied; call handle.remove() "
                               "(or zoo_plugins.reducers.unpatch(model)) first")
        if not is_reducible(model):
            raise ReducerError(f"{type(model).__name__} does not implement the reducer protocol "
                               "(reducer_blocks() and reducer_protected()); see zoo_plugins.reducers.adapters.zoo_blocks")
        blocks = list(model.reducer_blocks())
        for i, blk in enumerate(blocks):
            missing = [m for m in _BLOCK_METHODS if not callable(getattr(blk, m, None))]
            if missing:
                raise ReducerError(f"block {i} ({type(blk).__name__}) lacks {missing} of the reducer protocol")
        lead, trail = (int(v) for v in model.reducer_protected())
        if lead < 0 or trail < 0:
            raise ReducerError(f"reducer_protected() must return two counts >= 0, got {(lead, trail)}")
        if getattr(policy, "needs_cls", False) and not lead:
            raise ReducerError(f"{type(policy).__name__} ranks tokens by class-token attention but "
                               f"{type(model).__name__} protects no leading (class) token; use ToMe (tome) instead")
        policy.bind(len(blocks))
        state = _RunState(policy, lead + trail, len(blocks), trace_source, backend)
        state.layout = _Layout(lead, trail)
        state.scales = [getattr(blk, "reducer_scale", None) for blk in blocks]
        state.backend_holders = [_backend_holder(blk) for blk in blocks]
        for i, blk in enumerate(blocks):
            blk.forward = partial(_block_forward, state, i, blk)
            state.patched.append((blk, "forward"))
        model._zoo_reducer = state
        state.patched.append((model, "_zoo_reducer"))
        return ReducerHandle(model, state, [partial(unpatch, model)])
