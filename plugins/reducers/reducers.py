"""The reducer objects ``zoo.load`` returns: one per method, all with the same interface.

* ``apply(model, **schedule) -> handle``: patch a transformer in place (``handle.remove()``
  restores it bit-exactly); the model family is found among the registered adapters.
* ``reduce(tokens, keep=..., **signals) -> ReducedTokens``: reduce ``[B, N, D]`` tokens directly
  (e.g. the visual tokens an encoder hands to a language model).

Example:
    >>> import torch
    >>> out = DivPrune().reduce(torch.randn(2, 16, 8), keep=4)
    >>> out.indices.shape
    torch.Size([2, 4])
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar

import torch

from zoo.model import ZooModel

from .adapters.base import ReducerHandle, find_adapter
from .types import ReducedTokens, ReducerError

__all__ = ["MCTF", "REDUCERS", "DiffRate", "DivPrune", "DyMU", "EViT", "GlobalCom2", "HiPrune", "MMTok", "Reducer", "ToMe", "ToMeSD"]


class Reducer(ZooModel):
    """Base class. ``needs`` lists the signals the method reads; ``training`` its training status."""

    method: str = ""  # the method's short name (the card's family); ``name`` is the card name
    needs: tuple[str, ...] = ()
    training: str = "training-free"
    in_model: bool = True
    post_encoder: bool = False

    def __init__(self, **options: Any):
        self.options = options

    # -- the generic-loader courtesy methods (zoo.load calls .to / .eval when present)
    def to(self, *args: Any, **kwargs: Any) -> Reducer:
        return self

    def eval(self) -> Reducer:
        return self

    def describe_facts(self) -> dict[str, Any]:
        """The repr's facts: where the method works, the signals it reads, its options."""
        where = " + ".join(w for w, on in (("in-model", self.in_model), ("post-encoder", self.post_encoder)) if on)
        return {"works": where, "needs": "/".join(self.needs) or "nothing", **self.options}

    def policy(self, **schedule: Any) -> Any:
        raise ReducerError(f"{self.method} reduces tokens after an encoder; call reduce(tokens, keep=...) instead of apply()")

    def apply(self, model: torch.nn.Module, *, trace_source: bool = False, backend: str | None = None,
              adapter: str | None = None, **schedule: Any) -> ReducerHandle:
        """Patch ``model`` in place with this method at ``schedule``; returns the handle.

        ``trace_source`` records where every input token ends (``handle.source``); ``backend``
        forces an attention backend; ``adapter`` picks a registered adapter by name. On a
        transformers VLM (LLaVA, LLaVA-NeXT, Qwen2-VL) the post-encoder methods take
        ``keep=`` (per image) and reduce the visual tokens its language model sees
        (:mod:`zoo_plugins.reducers.vlm`).
        """
        vlm = _visual_adapter(model, adapter)
        if vlm is not None:
            return vlm.patch(model, self.visual_policy(**schedule), trace_source=trace_source, backend=backend)
        policy = self.policy(**schedule)
        return find_adapter(model, adapter).patch(model, policy, trace_source=trace_source, backend=backend)

    def visual_policy(self, keep: Any = None, **options: Any) -> Any:
        """This method at ``keep`` (per image) with ``options``, for a VLM adapter (``apply(vlm, keep=...)``)."""
        from .vlm.policy import VisualTokenPolicy

        return VisualTokenPolicy(self, keep=keep, **options)

    def reduce(self, tokens: torch.Tensor, keep: float = 0.5, **signals: Any) -> ReducedTokens:
        raise ReducerError(f"{self.method} works inside a transformer; use apply(model, ...)")


def _visual_adapter(model: Any, name: str | None) -> Any:
    """The adapter that reduces ``model``'s visual tokens (a VLM), or None for other models."""
    from .adapters.base import adapters

    for a in adapters():
        if getattr(a, "visual_tokens", False) and (a.name == name if name is not None else a.supports(model)):
            return a
    return None


def _check_tokens(tokens: torch.Tensor) -> None:
    from .checks import check_tokens

    check_tokens(tokens)


class ToMe(Reducer):
    """Token Merging (Bolya et al., ICLR 2023). Schedule: ``r`` (int, ``(r, inflection)`` or a
    per-layer list); ``prop_attn`` (default True) adds ``log(size)`` to attention logits."""

    method = "tome"
    needs = ("keys", "sizes")
    post_encoder = True

    def __init__(self, prop_attn: bool = True, **options: Any):
        super().__init__(prop_attn=prop_attn, **options)
        self.prop_attn = prop_attn

    def policy(self, r: Any = 0, prop_attn: bool | None = None) -> Any:
        from .policies.tome import ToMePolicy

        return ToMePolicy(r=r, prop_attn=self.prop_attn if prop_attn is None else prop_attn)

    def reduce(self, tokens: torch.Tensor, keep: float = 0.5, metric: torch.Tensor | None = None,
               num_prefix: int = 0, sizes: torch.Tensor | None = None) -> ReducedTokens:
        """Merge ``tokens`` down to ``keep`` (count or ratio) by repeated bipartite matching."""
        from .policies.divprune import resolve_keep
        from .policies.tome import tome_reduce

        _check_tokens(tokens)
        return tome_reduce(tokens, resolve_keep(keep, tokens.shape[1]), metric=metric, num_prefix=num_prefix, size=sizes)


class DiffRate(Reducer):
    """DiffRate (Chen et al., ICCV 2023) at a published schedule: ``apply(model, flops=2.9)``
    (architecture inferred from the width for DeiT-T/S/B, or ``arch="ViT-B-MAE"``), or explicit
    ``prune_kept=[...], merge_kept=[...]`` per block."""

    method = "diffrate"
    needs = ("cls_attn", "hidden_states", "sizes")
    training = "training-free on frozen weights; the per-layer rates were searched (published for DeiT/MAE)"

    _WIDTH_TO_ARCH: ClassVar[dict[int, str]] = {192: "ViT-T-DeiT", 384: "ViT-S-DeiT", 768: "ViT-B-DeiT", 1024: "ViT-L-MAE", 1280: "ViT-H-MAE"}

    def policy(self, flops: str | float | None = None, arch: str | None = None,
               prune_kept: Sequence[int] | None = None, merge_kept: Sequence[int] | None = None,
               _width: int | None = None) -> Any:
        from .policies.diffrate import DiffRatePolicy, published_schedule

        if prune_kept is not None or merge_kept is not None:
            if prune_kept is None or merge_kept is None:
                raise ReducerError("give both prune_kept and merge_kept (or neither, with flops=)")
            return DiffRatePolicy(prune_kept, merge_kept)
        if flops is None:
            raise ReducerError("DiffRate needs a schedule: flops=<published GFLOPs, e.g. 2.9> or prune_kept/merge_kept")
        if arch is None:
            arch = self._WIDTH_TO_ARCH.get(_width or -1)
            if arch is None:
                raise ReducerError(f"cannot infer the DiffRate architecture from width {_width}; pass arch=")
        return DiffRatePolicy(*published_schedule(arch, flops))

    def apply(self, model: torch.nn.Module, *, trace_source: bool = False, backend: str | None = None,
              adapter: str | None = None, **schedule: Any) -> ReducerHandle:
        if _visual_adapter(model, adapter) is not None:
            self.visual_policy(**schedule)               # refuses: DiffRate runs inside a ViT's blocks
        schedule.setdefault("_width", getattr(model, "embed_dim", None))
        policy = self.policy(**schedule)
        return find_adapter(model, adapter).patch(model, policy, trace_source=trace_source, backend=backend)


class EViT(Reducer):
    """EViT inattentive-token fusion (Liang et al., ICLR 2022): ``apply(model, keep_rate=0.7,
    locations=(3, 6, 9), fuse=True)``; ``reduce(tokens, keep, cls_attn=[B, N])`` on tokens."""

    method = "evit"
    needs = ("cls_attn",)
    training = "trained in the paper (fine-tuned DeiT); applied here training-free"
    post_encoder = True

    def policy(self, keep_rate: Any = 0.7, locations: Sequence[int] = (3, 6, 9), fuse: bool = True) -> Any:
        from .policies.evit import EViTPolicy

        return EViTPolicy(keep_rate=keep_rate, locations=locations, fuse=fuse)

    def reduce(self, tokens: torch.Tensor, keep: float = 0.5, cls_attn: torch.Tensor | None = None,
               fuse: bool = True) -> ReducedTokens:
        """Keep the ``keep`` most attended tokens (by ``cls_attn`` ``[B, N]``), fuse the rest."""
        from .policies.divprune import resolve_keep
        from .policies.evit import evit_plan

        _check_tokens(tokens)
        if cls_attn is None or cls_attn.shape != tokens.shape[:2]:
            raise ReducerError(f"EViT.reduce needs cls_attn [B, N] = {tuple(tokens.shape[:2])} (the class token's attention)")
        n = tokens.shape[1]
        k = resolve_keep(keep, n)
        plan = evit_plan(tokens, cls_attn, 0, k / n, fuse)
        if plan is None:
            idx = torch.arange(n, device=tokens.device).expand(tokens.shape[0], n)
            return ReducedTokens(tokens, idx, torch.ones_like(tokens[..., :1]), idx)
        slots = plan.slots()
        out, sizes = plan.merge(tokens, None)
        rep = torch.full(out.shape[:2], n, dtype=torch.long, device=tokens.device)
        rep.scatter_reduce_(1, slots.clamp(min=0), torch.arange(n, device=tokens.device).expand_as(slots), reduce="amin")
        return ReducedTokens(out, rep, sizes, slots)


class MCTF(Reducer):
    """MCTF multi-criteria token fusion, training-free (Lee et al., CVPR 2024):
    ``apply(model, r=16, layers=None, tau_sim=1, tau_info=20, tau_size=40, bidirection=True,
    pooling="attn")`` (the published setting; ``layers`` default: every block but the first)."""

    method = "mctf"
    needs = ("attn_column_means", "hidden_states", "sizes", "full_attention_map")
    training = "the paper fine-tunes with token-reduction consistency; this is its training-free mode"

    def policy(self, r: float = 16, layers: Sequence[int] | None = None, tau_sim: float = 1.0, tau_info: float = 20.0,
               tau_size: float = 40.0, bidirection: bool = True, pooling: str = "attn", prop_attn: bool = True) -> Any:
        from .policies.mctf import MCTFPolicy

        return MCTFPolicy(r=r, layers=layers, tau_sim=tau_sim, tau_info=tau_info, tau_size=tau_size,
                          bidirection=bidirection, pooling=pooling, prop_attn=prop_attn)


class DivPrune(Reducer):
    """DivPrune (Alvar et al., CVPR 2025): ``reduce(tokens, keep=0.1)`` keeps a max-min diverse subset."""

    method = "divprune"
    needs = ("tokens",)
    in_model = False
    post_encoder = True

    def reduce(self, tokens: torch.Tensor, keep: float = 0.1, **signals: Any) -> ReducedTokens:
        """Keep ``keep`` tokens (count, or ratio of N rounded like the reference)."""
        from .policies.divprune import divprune_reduce

        _check_tokens(tokens)
        if signals:
            raise ReducerError(f"DivPrune reads only the tokens; unexpected signals {sorted(signals)}")
        return divprune_reduce(tokens, keep)


class MMTok(Reducer):
    """MMTok multimodal coverage (Dong et al., 2025): ``reduce(tokens, keep=64, text=[B, T, D])``
    keeps the visual tokens that best cover the text tokens and the visual tokens (greedy).

    Options (also per call): ``alpha`` (weight of vision coverage, 0.5), ``text_temperature``
    (0.02), ``vision_temperature`` (0.2): the official defaults.
    """

    method = "mmtok"
    needs = ("tokens", "text_embeddings", "vision_features (optional)")
    in_model = False
    post_encoder = True

    def __init__(self, alpha: float = 0.5, text_temperature: float = 0.02, vision_temperature: float = 0.2, **options: Any):
        super().__init__(alpha=alpha, text_temperature=text_temperature, vision_temperature=vision_temperature, **options)

    def reduce(self, tokens: torch.Tensor, keep: float = 64, text: torch.Tensor | None = None,
               text_mask: torch.Tensor | None = None, vision: torch.Tensor | None = None,
               exclude: torch.Tensor | None = None, **options: Any) -> ReducedTokens:
        """Keep ``keep`` tokens (count or ratio) covering ``text`` ``[B, T, D]`` (embeddings in the
        space of ``tokens``, e.g. the LLM's input embeddings beside projected visual tokens; a
        ``[1, T, D]`` text is shared by the batch) and the visual tokens. ``text_mask`` ``[B, T]``
        marks real text tokens; ``vision`` ``[B, N, Dv]`` are the features for vision-vision
        coverage (the encoder's, before the projector; default ``tokens``); ``exclude`` ``[B, N]``
        bool tokens never to keep (padding patches)."""
        from .policies.mmtok import mmtok_reduce

        _check_tokens(tokens)
        unknown = set(options) - {"alpha", "text_temperature", "vision_temperature"}
        if unknown:
            raise ReducerError(f"MMTok.reduce: unexpected signals {sorted(unknown)}; it reads text=, text_mask=, vision=, exclude=")
        opts = {k: v for k, v in self.options.items() if k in ("alpha", "text_temperature", "vision_temperature")}
        opts.update(options)
        return mmtok_reduce(tokens, keep, text, text_mask=text_mask, vision=vision, exclude=exclude, **opts)


class HiPrune(Reducer):
    """HiPrune hierarchical-attention pruning (Liu et al., 2025): ``reduce(tokens, keep=0.334,
    object_attn=[B, N], deep_attn=[B, N], grid=(H, W))`` keeps anchor tokens (top attention at a
    middle layer), their grid neighbours (buffers) and register tokens (top attention at a deep
    layer). ``alpha`` (0.1) is the anchor + buffer share; ``buffer="flat"`` (official) or ``"grid"``.
    """

    method = "hiprune"
    needs = ("object_layer_attn_column_means", "deep_layer_attn_column_means", "grid")
    in_model = False
    post_encoder = True

    def __init__(self, alpha: float = 0.1, buffer: str = "flat", **options: Any):
        super().__init__(alpha=alpha, buffer=buffer, **options)

    def reduce(self, tokens: torch.Tensor, keep: float = 0.334, object_attn: torch.Tensor | None = None,
               deep_attn: torch.Tensor | None = None, grid: int | tuple[int, int] | None = None,
               alpha: float | None = None, buffer: str | None = None) -> ReducedTokens:
        """Keep ``keep`` tokens (count or ratio) of ``tokens`` ``[B, N, D]`` (patch tokens only, no
        CLS). ``object_attn`` / ``deep_attn``: per-token attention scores at the object layer (the
        official default: layer 9 of CLIP ViT-L) and the deep layer (the feature layer), e.g.
        :func:`~zoo_plugins.reducers.policies.hiprune.attention_scores` of the encoder's maps;
        ``grid``: the patch grid ``(H, W)`` (inferred when N is a square)."""
        from .policies.hiprune import hiprune_reduce

        _check_tokens(tokens)
        return hiprune_reduce(tokens, keep, object_attn, deep_attn, grid=grid,
                              alpha=self.options["alpha"] if alpha is None else alpha,
                              buffer=self.options["buffer"] if buffer is None else buffer)


class DyMU(Reducer):
    """DyMU dynamic token merging, DToMe (Wang et al., 2025): ``reduce(tokens, threshold=0.8)``
    merges every bipartite pair more similar than the threshold (variable length per sample,
    padded; ``out.lengths``); ``reduce(tokens, keep=...)`` is a calibration step that merges
    ``N - keep`` tokens per image on average and returns the batch threshold in ``out.threshold``.
    Virtual Token Unmerging (inside the language model) is not included.
    """

    method = "dymu"
    needs = ("keys_or_tokens", "thresholds", "sizes")
    training = "training-free: per-layer thresholds calibrated on a batch of images (no gradients)"
    in_model = False
    post_encoder = True

    def reduce(self, tokens: torch.Tensor, keep: float | None = None, threshold: float | Sequence[float] | None = None,
               metric: torch.Tensor | None = None, num_prefix: int = 0, sizes: torch.Tensor | None = None,
               padding_mask: torch.Tensor | None = None) -> ReducedTokens:
        """Merge ``tokens`` ``[B, N, D]`` by ``threshold`` (a float, or one per step), or by
        ``keep`` (count or ratio; one calibration step, at most half of the mergeable tokens).
        ``metric`` ``[B, N, C]``: the similarity features (attention keys; default the tokens);
        ``num_prefix`` leading tokens are never merged; ``sizes`` ``[B, N, 1]`` and
        ``padding_mask`` ``[B, N]`` continue from an earlier merge."""
        from .policies.divprune import resolve_keep
        from .policies.dymu import dymu_reduce

        _check_tokens(tokens)
        r = None
        if keep is not None:
            n = tokens.shape[1]
            r = n - resolve_keep(keep, n)
            if r > (n - num_prefix) // 2:
                raise ReducerError(f"one DToMe step merges at most half of the {n - num_prefix} mergeable tokens; "
                                   f"keep={keep} asks for {r} merges (use a larger keep, or thresholds over several steps)")
        return dymu_reduce(tokens, threshold=threshold, r=r, metric=metric, num_prefix=num_prefix, sizes=sizes,
                           padding_mask=padding_mask)


class GlobalCom2(Reducer):
    """GlobalCom² (Liu et al., AAAI 2026): LLaVA-NeXT any-res compression with the thumbnail as
    commander. ``apply(llava_next, keep=0.25)`` inside the VLM; ``reduce(views, keep, cls_attn=,
    grid=(rows, cols), image_size=(H, W))`` on one image's ``[1 + rows*cols, N, D]`` view features."""

    method = "globalcom2"
    needs = ("views", "thumbnail_and_crop_cls_logits", "crop_grid")
    in_model = False
    post_encoder = True

    def __init__(self, temperature: float = 10.0, **options: Any):
        super().__init__(temperature=temperature, **options)

    def visual_policy(self, keep: Any = 0.25, **options: Any) -> Any:
        options.setdefault("temperature", self.options["temperature"])
        return super().visual_policy(keep=keep, **options)

    def reduce(self, tokens: torch.Tensor, keep: float = 0.25, cls_attn: torch.Tensor | None = None,
               grid: tuple[int, int] | None = None, image_size: tuple[int, int] | None = None,
               temperature: float | None = None) -> ReducedTokens:
        """Keep GlobalCom²'s tokens of one image's views ``tokens`` ``[1 + rows*cols, N, D]`` (thumbnail
        first). ``cls_attn`` ``[1 + rows*cols, N]``: each view's CLS pre-softmax scores at the last
        layer; ``grid``: ``(rows, cols)``; ``image_size``: ``(H, W)`` for LLaVA-NeXT's unpadding.
        Output ``[1, K, D]``: the thumbnail's kept tokens (best first), then the kept crop tokens in
        raster order of the unpadded grid; ``indices`` index the flattened ``[(1 + rows*cols) * N]`` views."""
        from .policies.globalcom2 import globalcom2_select

        if not isinstance(tokens, torch.Tensor) or tokens.dim() != 3:
            raise ReducerError(f"globalcom2.reduce takes one image's views [1 + rows*cols, N, D], got "
                               f"{tuple(tokens.shape) if isinstance(tokens, torch.Tensor) else type(tokens).__name__}")
        if grid is None or cls_attn is None or tuple(cls_attn.shape) != tuple(tokens.shape[:2]):
            raise ReducerError(f"globalcom2 needs grid=(rows, cols) and cls_attn [views, N] = {tuple(tokens.shape[:2])}")
        _check_tokens(tokens)
        t = self.options["temperature"] if temperature is None else temperature
        sel = globalcom2_select(cls_attn, grid, keep=keep, image_size=image_size, temperature=t)
        n = tokens.shape[1]
        side = math.isqrt(n)
        top, left, _, _ = sel.region
        rc = sel.crop_mask.nonzero()
        r, c = rc[:, 0] + top, rc[:, 1] + left
        crop_flat = (1 + (r // side) * int(grid[1]) + c // side) * n + (r % side) * side + c % side
        idx = torch.cat([sel.thumbnail.to(crop_flat.device), crop_flat])
        flat = tokens.reshape(-1, tokens.shape[-1])
        kept = flat[idx][None]
        assign = torch.full((1, flat.shape[0]), -1, dtype=torch.long, device=tokens.device)
        assign[0, idx] = torch.arange(idx.numel(), device=tokens.device)
        return ReducedTokens(kept, idx[None], torch.ones_like(kept[..., :1]), assign)


class ToMeSD(Reducer):
    """ToMe for diffusion denoisers (tomesd, re-done as a diffusers attention processor): merges
    ``ratio`` of the image tokens before every self-attention of a UNet, DiT or MMDiT and unmerges
    after it (:mod:`zoo_plugins.reducers.diffusion`). ``apply(pipeline_or_denoiser, ratio=0.5)``."""

    method = "tome_sd"
    needs = ("hidden_states",)

    def apply(self, model: Any, ratio: float = 0.5, *, sx: int = 2, sy: int = 2, max_downsample: int = 1,
              generator: torch.Generator | None = None, **unused: Any) -> Any:
        """Patch the denoiser of ``model`` (a zoo generator, a diffusers pipeline or the denoiser
        itself) in place; returns a handle whose ``remove()`` restores it bit-exactly. Exact at
        ``ratio=0``."""
        from .diffusion import apply_tome_sd

        if unused:
            raise ReducerError(f"tome_sd takes ratio, sx, sy, max_downsample and generator; unknown: {sorted(unused)}")
        return apply_tome_sd(model, ratio, sx=sx, sy=sy, max_downsample=max_downsample, generator=generator)


REDUCERS: dict[str, type[Reducer]] = {
    cls.method: cls for cls in (ToMe, DiffRate, EViT, MCTF, DivPrune, MMTok, HiPrune, DyMU, GlobalCom2, ToMeSD)
}
