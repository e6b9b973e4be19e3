"""Post-encoder token reducers inside transformers vision-language models.

``handle = zoo.load("divprune").apply(vlm, keep=0.25)`` on a ``LlavaForConditionalGeneration``,
``LlavaNextForConditionalGeneration`` or ``Qwen2VLForConditionalGeneration`` (and any transformers
VLM with the same public surface: an inner ``model`` with ``get_image_features``,
``get_placeholder_mask``, ``language_model`` and ``config.image_token_id``) makes every
``vlm(...)`` / ``vlm.generate(...)`` prefill run with the kept visual tokens only.

Where it hooks: one forward pre-hook and one forward hook on the inner multimodal model
(``vlm.model``), nothing else; ``handle.remove()`` removes both (and restores Qwen2-VL's cached
``rope_deltas``), so parameters, buffers and ``state_dict`` are never touched.

* **Prefill** (a call with ``pixel_values``): the hook encodes the images with the model's own
  ``get_image_features`` (capturing the vision tower's attention when the method reads it), lets
  the policy pick each image's tokens, rebuilds ``inputs_embeds`` (text embeddings + kept visual
  tokens), the attention mask (rows that became shorter are left-padded) and the position ids,
  and hands them to the model's forward in place of ``input_ids`` / ``pixel_values``.
* **Positions.** 1-D rotary models (LLaVA, LLaVA-NeXT): ``positions="compact"`` (default) numbers
  the kept tokens ``0..K-1`` like the methods' LLaVA pipelines, which rebuild a shorter prompt;
  ``"original"`` keeps each token's position in the full prompt. Qwen2-VL's 3-D rotary ids
  (M-RoPE) are always computed on the **full** sequence (``get_rope_index``, or the ids
  ``generate`` passes) and then subset at the kept tokens; its ``rope_deltas`` are set so that
  later steps continue from the full sequence's last position.
* **Decoding steps** (a call with the cache the prefill filled): ``generate`` still tracks the
  full prompt's length, so the hook maps its attention mask (prompt part -> the reduced prompt's
  mask) and, for compact positions, shifts its position ids by the number of removed tokens.

Example:
    >>> VLM_CLASSES[:3]
    ('LlavaForConditionalGeneration', 'LlavaNextForConditionalGeneration', 'Qwen2VLForConditionalGeneration')
"""

from __future__ import annotations

import functools
import inspect
import math
import weakref
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ..adapters.base import ModelAdapter, ReducerHandle
from ..types import ReducerError
from .policy import ImageInfo, VisualTokenPolicy
from .sequence import compact_positions, locate_images, shrink_sequence, subset_positions
from .signals import TowerAttention, attention_layers, vision_tower

__all__ = ["VLM_CLASSES", "TransformersVLMAdapter", "VLMReducerHandle", "inner_model"]

#: classes tested here (tiny random configs); others with the same surface are accepted
VLM_CLASSES = ("LlavaForConditionalGeneration", "LlavaNextForConditionalGeneration", "Qwen2VLForConditionalGeneration",
               "LlavaModel", "LlavaNextModel", "Qwen2VLModel")

_IMAGE_INPUTS = ("pixel_values", "image_sizes", "image_grid_thw", "mm_token_type_ids", "mm_encoder_outputs")


def inner_model(model: nn.Module) -> nn.Module | None:
    """The inner multimodal model (``vlm.model``) of a transformers VLM, or None if ``model`` is not one."""
    if not type(model).__module__.startswith("transformers."):
        return None
    inner = getattr(model, "model", model)
    needed = ("get_image_features", "get_placeholder_mask", "language_model", "get_input_embeddings")
    if not all(hasattr(inner, a) for a in needed):
        return None
    if getattr(getattr(inner, "config", None), "image_token_id", None) is None:
        return None
    return inner


@dataclass
class _Session:
    """One prefill's bookkeeping, kept for the decoding steps that reuse its cache."""

    full_len: int
    reduced_len: int
    mask: torch.Tensor            # [B, L'] the reduced prompt's attention mask
    shift: torch.Tensor           # [B] removed (real) tokens per row


@dataclass
class VLMState:
    policy: VisualTokenPolicy
    positions: str
    mrope: bool
    sessions: weakref.WeakKeyDictionary = field(default_factory=weakref.WeakKeyDictionary)
    pending: _Session | None = None
    last: dict[str, Any] = field(default_factory=dict)
    prefills: int = 0
    size: Any = None
    source: Any = None
    tokens_per_layer: list = field(default_factory=list)


class VLMReducerHandle(ReducerHandle):
    """The handle of a reduced VLM. ``last``: the latest prefill's ``full_length`` /
    ``reduced_length`` (sequence lengths) and ``visual_tokens`` (``(n, kept)`` per image)."""

    @property
    def last(self) -> dict[str, Any]:
        return dict(self.state.last)

    @property
    def visual_tokens(self) -> list[tuple[int, int]]:
        return list(self.state.last.get("visual_tokens", []))

    def __repr__(self) -> str:
        status = "removed" if self.removed else "active"
        last = self.state.last
        seen = (f", last prefill {last['full_length']} -> {last['reduced_length']} tokens" if last else ", no prefill yet")
        return (f"VLMReducerHandle({self.state.policy.method} keep={self.state.policy.keep} on "
                f"{type(self.model).__name__}, {status}{seen})")


def _bind(module: nn.Module, args: tuple, kwargs: dict) -> dict:
    if not args:
        return dict(kwargs)
    names = [n for n, p in inspect.signature(module.forward).parameters.items()
             if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return {**dict(zip(names, args)), **kwargs}


def _accepted(fn: Any, values: dict) -> dict:
    params = inspect.signature(fn).parameters
    return {k: v for k, v in values.items() if k in params and v is not None}


class TransformersVLMAdapter(ModelAdapter):
    """Runs post-encoder reducers (:class:`VisualTokenPolicy`) inside transformers VLMs."""

    name = "transformers_vlm"
    visual_tokens = True     # takes a VisualTokenPolicy (Reducer.apply builds it) instead of a block policy

    def supports(self, model: nn.Module) -> bool:
        return inner_model(model) is not None

    def patch(self, model: nn.Module, policy: Any, *, trace_source: bool = False,
              backend: str | None = None) -> VLMReducerHandle:
        inner = inner_model(model)
        if inner is None:
            raise ReducerError(f"{type(model).__name__} is not a transformers VLM with get_image_features")
        if not isinstance(policy, VisualTokenPolicy):
            raise ReducerError("inside a VLM only post-encoder reducers run (divprune, mmtok, hiprune, dymu, tome, evit, "
                               "globalcom2): zoo.load('divprune').apply(vlm, keep=0.25)")
        mrope = hasattr(inner, "get_rope_index")
        positions = policy.adapter_options.get("positions", "original" if mrope else "compact")
        if positions not in ("compact", "original"):
            raise ReducerError(f"positions must be 'compact' or 'original', got {positions!r}")
        if mrope and positions != "original":
            raise ReducerError("Qwen2-VL-style 3-D rotary positions are computed on the full sequence and subset "
                               "(positions='original'); 'compact' is for 1-D rotary models")
        needs_attention = any(n in policy.needs for n in ("object_attn", "cls_attn", "views"))
        wants_vision = "vision" in policy.needs and hasattr(inner, "multi_modal_projector") \
            and not hasattr(inner, "pack_image_features")           # one view per image: LLaVA-1.5
        if needs_attention:
            attention_layers(vision_tower(inner))                               # refuses unreadable towers now
            if policy.method == "evit" and not hasattr(inner, "vision_tower"):
                raise ReducerError("evit reads the class token's attention; Qwen2-VL's vision tower has none "
                                   "(use hiprune, divprune, mmtok, dymu or tome)")
        if "views" in policy.needs and not hasattr(inner, "pack_image_features"):
            raise ReducerError("globalcom2 compresses LLaVA-NeXT's any-res views (thumbnail + crops); "
                               f"{type(model).__name__} has no any-res packing")
        state = VLMState(policy=policy, positions=positions, mrope=mrope)
        saved_deltas = getattr(inner, "rope_deltas", None)
        unwrap = self._wrap_features(inner, policy) if needs_attention or wants_vision else None
        pre = inner.register_forward_pre_hook(lambda m, a, k: self._pre(inner, state, a, k), with_kwargs=True)
        post = inner.register_forward_hook(lambda m, a, k, o: self._post(state, o), with_kwargs=True)

        def restore() -> None:
            pre.remove()
            post.remove()
            if unwrap is not None:
                unwrap()
            if mrope:
                inner.rope_deltas = saved_deltas
        return VLMReducerHandle(model, state, undo=[restore])

    # -- hooks -----------------------------------------------------------------------------
    def _pre(self, inner: nn.Module, state: VLMState, args: tuple, kwargs: dict) -> tuple | None:
        kw = _bind(inner, args, kwargs)
        if kw.get("pixel_values_videos") is not None:
            raise ReducerError("the VLM reducer adapter reduces images only; videos (pixel_values_videos) are not supported")
        enc = kw.get("mm_encoder_outputs") or {}
        if kw.get("pixel_values") is not None or enc.get("image") is not None:
            return (), self._prefill(inner, state, kw)
        cache_key = "cache" if "cache" in kw else "past_key_values"
        cache = kw.get(cache_key)
        if cache is not None:
            try:
                session = state.sessions.get(cache)
            except TypeError:
                session = None
            if session is not None:
                return (), self._decode(state, session, kw, cache)
        return None

    def _post(self, state: VLMState, output: Any) -> None:
        session, state.pending = state.pending, None
        if session is None:
            return
        cache = getattr(output, "cache", None)
        if cache is None:
            cache = getattr(output, "past_key_values", None)
        if cache is not None:
            try:
                state.sessions[cache] = session
            except TypeError:
                pass

    # -- prefill ---------------------------------------------------------------------------
    def _prefill(self, inner: nn.Module, state: VLMState, kw: dict) -> dict:
        policy = state.policy
        ids = kw.get("input_ids")
        if ids is None:
            raise ReducerError("the VLM reducer adapter needs input_ids (to find the image placeholder tokens)")
        cache = kw.get("cache", kw.get("past_key_values"))
        if cache is not None and cache.get_seq_length() > 0:
            raise ReducerError("images arrive with a non-empty cache (continued generation): reduce a fresh prompt instead")
        mask = kw.get("attention_mask")
        if mask is not None and (not isinstance(mask, torch.Tensor) or mask.dim() != 2):
            raise ReducerError("the VLM reducer adapter needs a 2-D attention_mask (static / compiled caches build 4-D masks)")
        embeds = kw.get("inputs_embeds")
        if embeds is None:
            embeds = inner.get_input_embeddings()(ids)
        features, infos = self._encode(inner, policy, kw, ids, embeds, mask)
        image_mask = ids == inner.config.image_token_id
        slots = locate_images(image_mask, [int(f.shape[0]) for f in features])
        for slot, info in zip(slots, infos):
            info.row = slot.row
        if policy.method == "mmtok":
            real = torch.ones_like(ids, dtype=torch.bool) if mask is None else mask.bool()
            text = real & ~image_mask
            vid = getattr(inner.config, "video_token_id", None)
            if vid is not None:
                text &= ids != vid
            for info in infos:
                info.text = embeds[info.row][text[info.row]]
        kept = policy.select([f.to(embeds.dtype) for f in features], infos)
        shrunk = shrink_sequence(embeds, mask, slots, kept)
        full_mask = torch.ones_like(ids) if mask is None else mask
        if state.mrope:
            full_pos = kw.get("position_ids")
            if full_pos is None:
                full_pos = self._rope_index(inner, kw, ids, mask)
            pos = subset_positions(full_pos, shrunk.source)
            if pos.shape[0] == 4:          # row 0: text positions, used only to build masks
                pos[0] = compact_positions(shrunk.mask)
            real = shrunk.mask.bool()
            top = pos[-3:].masked_fill(~real[None], -1).amax(dim=(0, 2))
            inner.rope_deltas = (top + 1 - real.sum(1)).unsqueeze(1)
        elif state.positions == "compact":
            pos = compact_positions(shrunk.mask)
        else:
            full_pos = kw.get("position_ids")
            if full_pos is None:
                full_pos = compact_positions(full_mask)
            pos = subset_positions(full_pos, shrunk.source)
        state.pending = _Session(full_len=int(ids.shape[1]), reduced_len=int(shrunk.embeds.shape[1]), mask=shrunk.mask,
                                 shift=full_mask.sum(1) - shrunk.mask.sum(1))
        state.prefills += 1
        state.last = {"full_length": int(ids.shape[1]), "reduced_length": int(shrunk.embeds.shape[1]),
                      "visual_tokens": [(int(f.shape[0]), int(k.tokens.shape[0])) for f, k in zip(features, kept)]}
        for key in _IMAGE_INPUTS:
            if key in kw:
                kw[key] = None
        kw.update(input_ids=None, inputs_embeds=shrunk.embeds, attention_mask=shrunk.mask, position_ids=pos)
        return kw

    def _rope_index(self, inner: nn.Module, kw: dict, ids: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        types = kw.get("mm_token_type_ids")
        if types is None:
            types = torch.zeros_like(ids, dtype=torch.int)
            types[ids == inner.config.image_token_id] = 1
        args = _accepted(inner.get_rope_index, {"input_ids": ids, "image_grid_thw": kw.get("image_grid_thw"),
                                                "attention_mask": mask, "mm_token_type_ids": types})
        pos, _ = inner.get_rope_index(**args)
        return pos

    def _encode(self, inner: nn.Module, policy: VisualTokenPolicy, kw: dict, ids: torch.Tensor,
                embeds: torch.Tensor, mask: torch.Tensor | None) -> tuple[list[torch.Tensor], list[ImageInfo]]:
        enc = kw.get("mm_encoder_outputs") or {}
        out = enc.get("image")
        if out is None:      # a plain forward: encode here (through the capturing wrapper when installed)
            call = _accepted(inner.get_image_features, {k: kw.get(k) for k in (
                "pixel_values", "image_sizes", "image_grid_thw", "vision_feature_layer", "vision_feature_select_strategy")})
            out = inner.get_image_features(**call, return_dict=True)
        features = list(out.pooler_output)
        infos = [ImageInfo(row=0) for _ in features]
        capture = getattr(out, "_zoo_capture", None)
        if "vision" in policy.needs and capture is not None:
            vision = capture[1].get("vision")
            if vision is not None and vision.shape[0] == len(features) and all(
                    f.shape[0] == vision.shape[1] for f in features):
                for info, v in zip(infos, vision):
                    info.vision = v
        if not any(n in policy.needs for n in ("object_attn", "cls_attn", "views")):
            return features, infos
        if capture is None:
            raise ReducerError(f"{policy.method} reads the vision tower's attention, captured while the images are encoded: "
                               "the image features given were encoded before the reducer was applied (pass pixel_values)")
        signals, call = capture
        if policy.method == "hiprune" and hasattr(inner, "visual"):                  # Qwen2-VL: packed patches
            self._merged_scores(inner, policy, signals, call, features, infos)
            return features, infos
        if policy.method == "hiprune" and hasattr(inner, "pack_image_features"):     # any-res: HiPrune per view
            obj, deep = self._hiprune_layers(policy, len(attention_layers(vision_tower(inner))))
            self._views(inner, call, {"object": signals[obj]["column_means"], "deep": signals[deep]["column_means"]},
                        features, infos, method="hiprune")
            return features, infos
        if policy.method in ("hiprune", "evit"):
            kind = "column_means" if policy.method == "hiprune" else "cls_probs"
            per_view = next(iter(signals.values()))[kind]
            if per_view.shape[0] != len(features) or any(f.shape[0] != per_view.shape[1] for f in features):
                raise ReducerError(f"{policy.method} inside a VLM needs one view per image whose patch tokens are the visual "
                                   f"tokens (LLaVA-1.5); got {per_view.shape[0]} views of {per_view.shape[1]} patches for "
                                   f"images of {[int(f.shape[0]) for f in features]} tokens (any-res LLaVA-NeXT: use "
                                   "hiprune, globalcom2 or a tokens-only method)")
            side = math.isqrt(per_view.shape[1])
            layers = sorted(signals)
            for j, info in enumerate(infos):
                info.grid = (side, per_view.shape[1] // side)
                if policy.method == "hiprune":
                    obj, deep = self._hiprune_layers(policy, len(attention_layers(vision_tower(inner))))
                    info.object_attn = signals[obj]["column_means"][j]
                    info.deep_attn = signals[deep]["column_means"][j]
                else:
                    info.cls_attn = signals[layers[0]]["cls_probs"][j]
            return features, infos
        self._views(inner, call, {"cls_logits": next(iter(signals.values()))["cls_logits"]}, features, infos)
        return features, infos

    def _merged_scores(self, inner: nn.Module, policy: VisualTokenPolicy, signals: dict, call: dict,
                       features: list[torch.Tensor], infos: list[ImageInfo]) -> None:
        """Qwen2-VL: per-patch column means -> per visual token (the mean over the patches its merger
        joins, which sit next to each other in the packed order), with the merged patch grid."""
        obj, deep = self._hiprune_layers(policy, len(attention_layers(vision_tower(inner))))
        grid_thw = call.get("image_grid_thw")
        merge = int(getattr(inner.visual, "spatial_merge_size", 2)) ** 2
        side = int(getattr(inner.visual, "spatial_merge_size", 2))
        patches = [int(t * h * w) for t, h, w in grid_thw.tolist()]
        if len(patches) != len(features) or any(p // merge != f.shape[0] for p, f in zip(patches, features)):
            raise ReducerError("hiprune: the captured vision patches do not match the image tokens (videos are not supported)")
        split = {i: torch.split(signals[i]["column_means"], patches) for i in {obj, deep}}
        for j, ((t, h, w), info) in enumerate(zip(grid_thw.tolist(), infos)):
            info.object_attn = split[obj][j].view(-1, merge).mean(1)
            info.deep_attn = split[deep][j].view(-1, merge).mean(1)
            info.grid = (t * h // side, w // side)

    @staticmethod
    def _hiprune_layers(policy: VisualTokenPolicy, depth: int) -> tuple[int, int]:
        opts = policy.adapter_options
        obj = int(opts.get("object_layer", max(1, round(9 * depth / 24)))) - 1     # official: layer 9 of 24, 1-based
        if not 0 <= obj < depth:
            raise ReducerError(f"object_layer must be in 1..{depth} (1-based, like the official HIPRUNE_OBJECT_LAYER)")
        return obj, int(opts.get("deep_layer", -2)) % depth

    def _kinds(self, policy: VisualTokenPolicy, depth: int) -> dict[int, tuple[str, ...]]:
        """Which attention signals to capture at which tower layer for ``policy``."""
        if policy.method == "hiprune":
            obj, deep = self._hiprune_layers(policy, depth)
            return {obj: ("column_means",), deep: ("column_means",)}
        if policy.method == "evit":
            return {int(policy.adapter_options.get("deep_layer", -2)) % depth: ("cls_probs",)}
        return {depth - 1: ("cls_logits",)}                                         # globalcom2: the last layer

    def _wrap_features(self, inner: nn.Module, policy: VisualTokenPolicy) -> Any:
        """Install a capturing wrapper of ``inner.get_image_features`` (an instance attribute, so
        ``generate``'s pre-encoding goes through it too); returns the undo function."""
        attention = any(n in policy.needs for n in ("object_attn", "cls_attn", "views"))
        layers = attention_layers(vision_tower(inner)) if attention else []
        kinds = self._kinds(policy, len(layers)) if attention else {}
        projector = getattr(inner, "multi_modal_projector", None) if "vision" in policy.needs else None
        original = inner.get_image_features
        had_attr = "get_image_features" in vars(inner)
        params = inspect.signature(original).parameters

        @functools.wraps(original)
        def get_image_features(*args: Any, **kwargs: Any) -> Any:
            bound = {**dict(zip([n for n in params if n != "kwargs"], args)), **kwargs}
            seen: list[torch.Tensor] = []
            hook = None if projector is None else projector.register_forward_pre_hook(lambda m, a: seen.append(a[0].detach()))
            try:
                with TowerAttention({i: layers[i] for i in kinds}, kinds) as cap:
                    out = original(*args, **kwargs)
            finally:
                if hook is not None:
                    hook.remove()
            call = {k: bound.get(k) for k in ("image_sizes", "vision_feature_select_strategy", "image_grid_thw")}
            call["vision"] = seen[0] if len(seen) == 1 else None          # the projector's input [images, N, Dv]
            object.__setattr__(out, "_zoo_capture", (cap.signals, call))
            return out

        inner.get_image_features = get_image_features

        def undo() -> None:
            if had_attr:
                inner.get_image_features = original
            else:
                del inner.get_image_features
        return undo

    def _views(self, inner: nn.Module, call: dict, signals: dict[str, torch.Tensor], features: list[torch.Tensor],
               infos: list[ImageInfo], method: str = "globalcom2") -> None:
        """Split per-view ``signals`` (``{name: [views, N]}``, all images' views in encoding order)
        into each LLaVA-NeXT image's thumbnail + crops, with its crop grid and size."""
        from transformers.image_processing_utils import select_best_resolution

        from ..policies.globalcom2 import unpadded_region

        cfg = inner.config
        strategy = call.get("vision_feature_select_strategy") or getattr(cfg, "vision_feature_select_strategy", "default")
        if strategy != "default":
            raise ReducerError(f"{method} needs vision_feature_select_strategy='default' (patch tokens without CLS)")
        size = cfg.vision_config.image_size
        sizes = call.get("image_sizes")
        start = 0
        for j, info in enumerate(infos):
            hw = [int(v) for v in (sizes[j].tolist() if isinstance(sizes[j], torch.Tensor) else sizes[j])]
            bh, bw = select_best_resolution(hw, cfg.image_grid_pinpoints)
            rows, cols = bh // size, bw // size
            views = {k: v[start:start + 1 + rows * cols] for k, v in signals.items()}
            start += 1 + rows * cols
            n = next(iter(views.values())).shape[1]
            side = math.isqrt(n)
            if features[j].shape[0] == n + 1:                   # a single view (no crops) + its newline
                info.views = {**views, "crops": None}
                continue
            _, _, h, w = unpadded_region(rows, cols, side, tuple(hw))
            if features[j].shape[0] != n + h * (w + 1) or next(iter(views.values())).shape[0] != 1 + rows * cols:
                raise ReducerError(f"{method}: image {j} has {features[j].shape[0]} packed tokens, its {rows}x{cols} crop "
                                   f"layout implies {n + h * (w + 1)}: not LLaVA-NeXT's spatial_unpad packing")
            info.views = {**views, "crops": (rows, cols), "image_size": tuple(hw), "newline": True}

    # -- decoding ----------------------------------------------------------------------------
    def _decode(self, state: VLMState, session: _Session, kw: dict, cache: Any) -> dict:
        x = kw.get("input_ids") if kw.get("input_ids") is not None else kw.get("inputs_embeds")
        q = int(x.shape[1])
        past = int(cache.get_seq_length())
        extra = past + q - session.reduced_len
        b = session.mask.shape[0]
        if x.shape[0] != b or extra < q:
            raise ReducerError("this call reuses a reduced prompt's cache with a different batch or length; "
                               "start a new prompt (or handle.remove() first)")
        mask = kw.get("attention_mask")
        if mask is None:
            tail = session.mask.new_ones(b, extra)
        elif isinstance(mask, torch.Tensor) and mask.dim() == 2 and mask.shape[1] == session.full_len + extra:
            tail = mask[:, session.full_len:].to(session.mask.dtype)
        else:
            raise ReducerError(f"decoding step: attention_mask {tuple(getattr(mask, 'shape', ()))} does not extend the "
                               f"{session.full_len}-token prompt by {extra} tokens (2-D masks only)")
        new_mask = torch.cat([session.mask, tail], dim=1)
        kw["attention_mask"] = new_mask
        if not state.mrope:
            pos = kw.get("position_ids")
            shift = session.shift.to(new_mask.device)[:, None]
            if state.positions == "compact":
                kw["position_ids"] = compact_positions(new_mask)[:, -q:] if pos is None else pos - shift
            elif pos is None:
                kw["position_ids"] = (compact_positions(new_mask) + shift)[:, -q:]
        return kw

