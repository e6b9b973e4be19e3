"""The timm ViT adapter: runs a reducer policy inside ``timm`` ``VisionTransformer`` models
(ViT, DeiT and distilled DeiT, DeiT-III, DINOv2 with registers, BEiT-3, SigLIP, CLIP, ...).

Each block's ``forward`` is replaced per instance (no class swap, so ``isinstance``,
``state_dict``, ``torch.save(model)`` and ``copy.deepcopy`` keep working and ``remove()`` just
deletes the instance attributes). The patched block re-states timm's ``Block`` and
``ResPostBlock`` exactly: q/k norms, the attention-output norm and gate, LayerScale, drop path.
Attention runs through ``zoo.nn.attention.attention`` (fused SDPA stays on); proportional
attention is an additive ``log(size)`` bias; keys come from the qkv projection (after the k
norm); the class token's attention is computed as one row. Every prefix token (class,
distillation, registers: ``model.num_prefix_tokens``) is protected. ``avg`` pooling is
weighted by token size and a ``map`` attention-pool head gets the ``log(size)`` bias.
``forward_intermediates`` returns intermediates un-merged onto the full patch grid. When
``forward`` reads only the class token, the last block computes only that row (same logits;
``handle.state.head_rows_only = False`` turns it off). MCTF's attention maps are built in query
chunks (``_attn_maps``).

Example:
    >>> import torch
    >>> from zoo.compat.torchvision import import_timm
    >>> timm = import_timm()  # timm, with the CPU-torch torchvision shim when needed
    >>> from zoo_plugins.reducers.policies.tome import ToMePolicy
    >>> model = timm.create_model("vit_tiny_patch16_224", pretrained=False, img_size=64).eval()
    >>> handle = TimmViTAdapter().patch(model, ToMePolicy(r=4))
    >>> model(torch.randn(1, 3, 64, 64)).shape, handle.tokens_per_layer[-1]
    (torch.Size([1, 1000]), 2)
    >>> handle.remove()
"""

from __future__ import annotations

from functools import partial
from typing import Any

import torch

from ..merge import compose_slots, weighted_mean
from ..types import ReducerError, Signals
from .base import ModelAdapter, ReducerHandle

__all__ = ["TimmViTAdapter", "unpatch"]


def _timm():
    from zoo_plugins.reducers._compat import import_timm

    return import_timm()


class _RunState:
    """Per-model state shared by the patched blocks (reset when block 0 runs)."""

    def __init__(self, policy: Any, num_prefix: int, num_layers: int, trace_source: bool, backend: str | None):
        self.policy = policy
        self.num_prefix = num_prefix
        self.num_layers = num_layers
        self.trace_source = trace_source
        self.backend = backend
        self.patched: list[tuple[torch.nn.Module, str]] = []
        self.record = False
        self.head_rows_only = True  # forward(): the last block computes only the rows the head reads
        self.rows: slice | None = None
        self._clear()

    def _clear(self) -> None:
        self.size: torch.Tensor | None = None
        self.source: torch.Tensor | None = None
        self.layer_sources: dict[int, torch.Tensor | None] = {}
        self.tokens_per_layer: list[int] = []

    def start(self, x: torch.Tensor) -> None:
        self._clear()
        if self.trace_source or self.record:
            self.source = torch.arange(x.shape[1], device=x.device).expand(x.shape[0], -1)

    def __getstate__(self) -> dict:  # run tensors are not part of a saved model
        state = dict(self.__dict__)
        state.update(size=None, source=None, layer_sources={}, tokens_per_layer=[], record=False, rows=None)
        return state


def _attn_output(attn: torch.nn.Module, out: torch.Tensor, gate_input: torch.Tensor) -> torch.Tensor:
    """The tail of timm ``Attention.forward`` on attention heads ``[B, H, n, D]``: merge heads,
    the optional output norm, the optional sigmoid gate (of ``gate_input``), ``proj``."""
    b, h, n, d = out.shape
    out = out.transpose(1, 2).reshape(b, n, h * d)
    norm = getattr(attn, "norm", None)
    if norm is not None:
        out = norm(out)
    gate = getattr(attn, "gate", None)
    if gate is not None:
        out = out * gate(gate_input).sigmoid()
    return attn.proj_drop(attn.proj(out))

def _attend(attn: torch.nn.Module, x: torch.Tensor, mask: Any, want_keys: bool, want_cls: bool,
            backend: str | None, rows: slice | None = None) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """timm ``Attention.forward`` through zoo's dispatch, plus the keys / class-attention row;
    with ``rows`` only those query rows (keys and values of every token)."""
    from zoo.nn.attention import attention

    b, n, _ = x.shape
    h, dh = attn.num_heads, attn.head_dim
    if rows is None:
        qkv = attn.qkv(x).reshape(b, n, 3, h, dh).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
    else:
        w, bias = attn.qkv.weight, attn.qkv.bias
        kv = torch.nn.functional.linear(x, w[h * dh:], None if bias is None else bias[h * dh:])
        k, v = kv.reshape(b, n, 2, h, dh).permute(2, 0, 3, 1, 4).unbind(0)
        q = torch.nn.functional.linear(x[:, rows], w[:h * dh], None if bias is None else bias[:h * dh])
        q = q.reshape(b, -1, h, dh).transpose(1, 2)
    q, k = attn.q_norm(q), attn.k_norm(k)
    out = _attn_output(attn, attention(q, k, v, mask=mask, scale=attn.scale, backend=backend),
                       x if rows is None else x[:, rows])
    keys = k.mean(1) if want_keys else None
    cls = None
    if want_cls:
        logits = (q[:, :, :1] @ k.transpose(-2, -1)) * attn.scale  # one row: [B, H, 1, N]
        bias = getattr(mask, "bias", None)
        if bias is not None:
            logits = logits + bias[..., :1, :].to(logits.dtype)
        cls = logits.float().softmax(dim=-1).mean(dim=1)[:, 0]
    return out, keys, cls


def _size_bias(size: torch.Tensor):
    from zoo.nn.masks import AdditiveBias

    return AdditiveBias(size.log()[:, None, None, :, 0])


def _user_mask(attn_mask: torch.Tensor | None, is_causal: bool):
    from zoo.nn.masks import AdditiveBias, CausalMask, DenseMask

    if is_causal:
        if attn_mask is not None:
            raise ReducerError("is_causal together with attn_mask is not supported by the reducer patch")
        return CausalMask()
    if attn_mask is None:
        return None
    return DenseMask(attn_mask) if attn_mask.dtype == torch.bool else AdditiveBias(attn_mask)


def _block_forward(state: _RunState, layer: int, block: torch.nn.Module, x: torch.Tensor,
                   attn_mask: torch.Tensor | None = None, is_causal: bool = False) -> torch.Tensor:
    """A timm ``Block`` / ``ResPostBlock`` forward with a reduction between attention and MLP."""
    if layer == 0:
        state.start(x)
    policy = state.policy
    needs = policy.needs(layer)
    state.tokens_per_layer.append(x.shape[1])
    size = state.size
    mask = _user_mask(attn_mask, is_causal)
    if policy.prop_attn and size is not None:
        if mask is not None:
            raise ReducerError("the model was called with an attention mask after tokens were merged; "
                               "masks and proportional attention cannot be combined")
        mask = _size_bias(size)
    if needs and (attn_mask is not None or is_causal):
        raise ReducerError("token reduction does not support attn_mask / is_causal inputs; call the model without them")
    post = state.post_norm[layer]
    rows = state.rows if layer == state.num_layers - 1 else None
    if rows is not None:  # the head reads only these rows: compute nothing else (no reduction)
        y, _, _ = _attend(block.attn, x if post else block.norm1(x), mask, False, False,
                          state.backend or getattr(block.attn, "attn_backend", None), rows)
        x = x[:, rows]
        x = x + block.drop_path1(block.norm1(y) if post else block.ls1(y))
        if size is not None:
            state.size = size[:, rows]
        m = block.mlp(x if post else block.norm2(x))
        return x + block.drop_path2(block.norm2(m) if post else block.ls2(m))
    if policy.pre_attention and needs:
        x, y = _pre_attention_reduce(state, layer, block, x, mask)
        x = x + block.drop_path1(block.ls1(y))
        if state.record:
            state.layer_sources[layer] = state.source
        return x + block.drop_path2(block.ls2(block.mlp(block.norm2(x))))
    y, keys, cls = _attend(block.attn, x if post else block.norm1(x), mask, "keys" in needs, "cls_attn" in needs,
                           state.backend or getattr(block.attn, "attn_backend", None))
    x = x + block.drop_path1(block.norm1(y) if post else block.ls1(y))
    if needs or policy.active(layer):
        plan = policy.plan(layer, Signals(layer, x, size, state.num_prefix, keys, cls))
        if plan is not None:
            if state.source is not None:
                state.source = compose_slots(state.source, plan.slots())
            x, state.size = plan.merge(x, size)
    if state.record:
        state.layer_sources[layer] = state.source
    m = block.mlp(x if post else block.norm2(x))
    return x + block.drop_path2(block.norm2(m) if post else block.ls2(m))


def _pre_attention_reduce(state: _RunState, layer: int, block: torch.nn.Module, x: torch.Tensor,
                          mask: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """Reduce before attention from the block's attention map (column means, in query chunks),
    then apply the merged map to the merged values (one-step-ahead, as MCTF does); returns
    (reduced x, attention branch)."""
    from ._attn_maps import column_means, merged_attention

    attn = block.attn
    if state.post_norm[layer]:
        raise ReducerError(f"{type(state.policy).__name__} needs pre-norm blocks; block {layer} is a ResPostBlock")
    h = block.norm1(x)
    b, n, _ = h.shape
    nh, dh = attn.num_heads, attn.head_dim
    q, k, v = attn.qkv(h).reshape(b, n, 3, nh, dh).permute(2, 0, 3, 1, 4).unbind(0)
    q, k = attn.q_norm(q), attn.k_norm(k)
    bias = getattr(mask, "bias", None)
    col, probs = column_means(q, k, attn.scale, bias)
    size = state.size
    plan = state.policy.plan(layer, Signals(layer, x, size, state.num_prefix, attn=probs, attn_col_mean=col))
    if plan is not None:
        if state.source is not None:
            state.source = compose_slots(state.source, plan.slots())
        x, state.size = plan.merge(x, size)
        h = block.norm1(x)
        n = x.shape[1]
        w_v = attn.qkv.weight[2 * nh * dh:]
        b_v = attn.qkv.bias[2 * nh * dh:] if attn.qkv.bias is not None else None
        v_new = torch.nn.functional.linear(h, w_v, b_v).reshape(b, n, nh, dh).transpose(1, 2)
        out = merged_attention(q, k, attn.scale, bias, probs, plan, size, v_new)
    else:
        from zoo.nn.attention import attention

        out = attention(q, k, v, mask=mask, scale=attn.scale, backend=state.backend or getattr(attn, "attn_backend", None))
    return x, _attn_output(attn, out, h)


def _class_token_head(model: torch.nn.Module) -> bool:
    """Whether ``forward`` reads only the class token of the last block (timm's own forward,
    ``global_pool="token"``, no attention pool)."""
    vt = _timm().models.vision_transformer.VisionTransformer
    cls = type(model)
    return (cls.forward is vt.forward and cls.forward_features is vt.forward_features and cls.forward_head is vt.forward_head
            and cls.pool is vt.pool and getattr(model, "attn_pool", None) is None
            and getattr(model, "global_pool", None) == "token" and getattr(model, "has_class_token", False))


def _forward(state: _RunState, model: torch.nn.Module, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
    """``VisionTransformer.forward``. When the head reads only the class token, the last block
    computes only that row: every op but attention is per token, so the logits are the same
    (``handle.state.head_rows_only = False`` turns this off; never with ``trace_source``)."""
    plain = not args and all(v is None or v is False for v in kwargs.values())
    if state.head_rows_only and plain and not state.trace_source and _class_token_head(model):
        state.rows = slice(0, 1)
    try:
        return type(model).forward(model, x, *args, **kwargs)
    finally:
        state.rows = None


def _pool(state: _RunState, model: torch.nn.Module, x: torch.Tensor, pool_type: str | None = None) -> torch.Tensor:
    """``VisionTransformer.pool`` with size-weighted averaging / proportional attention pooling."""
    size = state.size
    if size is None or size.shape[:2] != x.shape[:2]:
        return type(model).pool(model, x, pool_type)
    p = state.num_prefix
    if model.attn_pool is not None:
        if not model.pool_include_prefix:
            x, size = x[:, p:], size[:, p:]
        bias = size.log()[:, None, None, :, 0].to(x.dtype) if state.policy.prop_attn else None
        return model.attn_pool(x, attn_mask=bias)
    pool_type = model.global_pool if pool_type is None else pool_type
    if pool_type == "avg":
        if not model.pool_include_prefix:
            x, size = x[:, p:], size[:, p:]
        return weighted_mean(x, size.to(x.dtype))
    return type(model).pool(model, x, pool_type)


def _forward_intermediates(state: _RunState, model: torch.nn.Module, x: torch.Tensor, indices: Any = None,
                           return_prefix_tokens: bool = False, norm: bool = False, stop_early: bool = False,
                           output_fmt: str = "NCHW", intermediates_only: bool = False, output_dict: bool = False,
                           **kwargs: Any) -> Any:
    """``forward_intermediates`` whose spatial intermediates are un-merged onto the patch grid
    (each patch takes the value of the token it was merged into; pruned patches are zero)."""
    feature_take_indices = _timm().models._features.feature_take_indices
    if output_fmt not in ("NCHW", "NLC"):
        raise ReducerError(f"output_fmt must be 'NCHW' or 'NLC', got {output_fmt!r}")
    take, _ = feature_take_indices(len(model.blocks), indices)
    state.record = True
    try:
        final, inters = type(model).forward_intermediates(
            model, x, indices, return_prefix_tokens=True, norm=norm, stop_early=stop_early, output_fmt="NLC",
            intermediates_only=False, output_dict=False, **kwargs)
    finally:
        state.record = False
    p = state.num_prefix
    spatial, prefix = [], []
    for i, item in zip(sorted(take), inters):
        y, pre = item if isinstance(item, tuple) else (item, None)
        src = state.layer_sources.get(i)
        if src is not None:
            pos = src[:, p:] - p  # position of each original patch among the layer's spatial tokens
            y = torch.cat([torch.zeros_like(y[:, :1]), y], dim=1)  # slot 0: pruned patches
            y = y.gather(1, (pos.clamp(min=-1) + 1)[..., None].expand(-1, -1, y.shape[-1]))
        spatial.append(y)
        prefix.append(pre)
    if output_fmt == "NCHW":
        b, _, height, width = x.shape
        gh, gw = model.patch_embed.dynamic_feat_size((height, width))
        spatial = [y.reshape(b, gh, gw, -1).permute(0, 3, 1, 2).contiguous() for y in spatial]
    has_prefix = p > 0
    if output_dict:
        out = {"image_intermediates": spatial}
        if has_prefix and return_prefix_tokens:
            out["image_intermediates_prefix"] = prefix
        if not intermediates_only:
            out["image_features"] = final
        return out
    if has_prefix and return_prefix_tokens:
        spatial = list(zip(spatial, prefix))
    return spatial if intermediates_only else (final, spatial)


class TimmViTAdapter(ModelAdapter):
    """Adapter for timm ``VisionTransformer`` (and subclasses) built from ``Block`` / ``ResPostBlock``."""

    name = "timm_vit"

    def supports(self, model: torch.nn.Module) -> bool:
        if not type(model).__module__.startswith("timm."):
            return False
        vt = _timm().models.vision_transformer
        return isinstance(model, vt.VisionTransformer)

    def patch(self, model: torch.nn.Module, policy: Any, *, trace_source: bool = False,
              backend: str | None = None) -> ReducerHandle:
        vt = _timm().models.vision_transformer
        attn_cls = _timm().layers.Attention
        if getattr(model, "_zoo_reducer", None) is not None:
            raise ReducerError("this model already has a reducer applied; call handle.remove() "
                               "(or zoo_plugins.reducers.unpatch(model)) first")
        blocks = list(model.blocks)
        post_norm = []
        for i, blk in enumerate(blocks):
            if type(blk) not in (vt.Block, vt.ResPostBlock):
                raise ReducerError(f"block {i} is a {type(blk).__name__}; the timm adapter supports Block and "
                                   "ResPostBlock (parallel / diff-attention blocks are not supported)")
            if not isinstance(blk.attn, attn_cls):
                raise ReducerError(f"block {i} uses {type(blk.attn).__name__}; the timm adapter needs timm's "
                                   "Attention (fused qkv)")
            post_norm.append(type(blk) is vt.ResPostBlock)
        num_prefix = int(getattr(model, "num_prefix_tokens", 0))
        if getattr(policy, "needs_cls", False) and not getattr(model, "has_class_token", num_prefix > 0):
            raise ReducerError(f"{type(policy).__name__} ranks tokens by class-token attention but this model has "
                               "no class token; use ToMe (tome) instead")
        policy.bind(len(blocks))
        state = _RunState(policy, num_prefix, len(blocks), trace_source, backend)
        state.post_norm = post_norm
        for i, blk in enumerate(blocks):
            blk.forward = partial(_block_forward, state, i, blk)
            state.patched.append((blk, "forward"))
        model.pool = partial(_pool, state, model)
        model.forward = partial(_forward, state, model)
        model.forward_intermediates = partial(_forward_intermediates, state, model)
        model._zoo_reducer = state
        state.patched += [(model, "pool"), (model, "forward"), (model, "forward_intermediates"), (model, "_zoo_reducer")]
        return ReducerHandle(model, state, [partial(unpatch, model)])


def unpatch(model: torch.nn.Module) -> bool:
    """Remove a reducer patch from ``model`` (also one loaded back with ``torch.load``).
    Returns False when the model was not patched."""
    state = getattr(model, "_zoo_reducer", None)
    if state is None:
        return False
    for module, attr in state.patched:
        module.__dict__.pop(attr, None)
    return True
