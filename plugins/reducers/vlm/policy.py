"""What a post-encoder reducer keeps of each image inside a VLM.

:class:`VisualTokenPolicy` wraps a reducer object (``zoo.load("divprune")``) and its settings
(``keep`` and the method's options). The adapter hands it every image's visual tokens (as the
language model would receive them) and an :class:`ImageInfo` per image with the signals the
method reads; it returns a :class:`~zoo_plugins.reducers.vlm.sequence.Kept` per image. Images with
the same token count are reduced in one batched call.

Signals per method: ``divprune``, ``tome``, ``dymu``: the tokens; ``mmtok``: the row's text
embeddings (every non-image, non-padding token of the prompt, from the language model's input
embeddings) and, where one view is one image (LLaVA-1.5), the vision features before the
projector for the vision-vision coverage (the paper's choice; elsewhere the tokens themselves); ``hiprune``: attention column means of the vision tower at the object and deep
layers, and the patch grid (on LLaVA-NeXT per view: ``keep`` of the thumbnail and of each crop,
row-end newlines kept; on Qwen2-VL the mean over the patches each token merges, on the merged grid); ``evit``: the class token's attention at the deep layer;
``globalcom2``: the class token's pre-softmax logits at the last layer of every view of an
any-res image (LLaVA-NeXT).

Example:
    >>> import torch
    >>> from zoo_plugins.reducers.reducers import DivPrune
    >>> pol = VisualTokenPolicy(DivPrune(), keep=0.5)
    >>> kept = pol.select([torch.randn(8, 4), torch.randn(6, 4)], [ImageInfo(row=0), ImageInfo(row=0)])
    >>> [k.tokens.shape[0] for k in kept]
    [4, 3]
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch

from ..types import ReducerError
from .sequence import Kept

__all__ = ["ADAPTER_OPTIONS", "ImageInfo", "VisualTokenPolicy"]

#: options the adapter reads itself (the rest go to the reducer's ``reduce``)
ADAPTER_OPTIONS = ("positions", "object_layer", "deep_layer")

_NEEDS = {
    "divprune": (), "tome": (), "dymu": (), "mmtok": ("text", "vision"),
    "hiprune": ("object_attn", "deep_attn", "grid"), "evit": ("cls_attn",), "globalcom2": ("views",),
}


@dataclass
class ImageInfo:
    """One image's context: its batch ``row`` and the signals the adapter gathered."""

    row: int
    text: torch.Tensor | None = None              # [T, D] the row's text embeddings
    object_attn: torch.Tensor | None = None       # [N] column means at the object layer
    deep_attn: torch.Tensor | None = None         # [N] column means at the deep layer
    cls_attn: torch.Tensor | None = None          # [N] class-token attention (softmax)
    vision: torch.Tensor | None = None            # [N, Dv] encoder features before the projector
    grid: tuple[int, int] | None = None           # patch grid of the tokens
    views: dict[str, Any] = field(default_factory=dict)  # any-res: per-view signals [1+C, N], crops, image_size


class VisualTokenPolicy:
    """A post-encoder reducer at one setting, applied to each image of a VLM prompt."""

    def __init__(self, reducer: Any, keep: Any = None, **options: Any):
        method = getattr(reducer, "method", "")
        if not getattr(reducer, "post_encoder", False) or method not in _NEEDS:
            raise ReducerError(f"{method or type(reducer).__name__} works inside a vision transformer's blocks; inside a VLM "
                               f"use a post-encoder reducer: {sorted(_NEEDS)}")
        self.reducer = reducer
        self.method = method
        self.keep = keep
        self.adapter_options = {k: options.pop(k) for k in ADAPTER_OPTIONS if k in options}
        self.options = options
        if keep is None and not (method == "dymu" and "threshold" in options):
            raise ReducerError(f"{method} inside a VLM needs keep= (a count per image or a ratio, e.g. keep=0.25)"
                               + ("; DyMU also takes threshold=" if method == "dymu" else ""))

    @property
    def needs(self) -> tuple[str, ...]:
        """The signals this method reads besides the tokens."""
        return _NEEDS[self.method]

    def select(self, features: list[torch.Tensor], infos: list[ImageInfo]) -> list[Kept]:
        """One :class:`Kept` per image of ``features`` (``[n_i, D]`` each)."""
        if self.method == "globalcom2":
            return [self._globalcom2(f, info) for f, info in zip(features, infos)]
        if self.method == "hiprune" and infos and infos[0].views:
            return [self._hiprune_views(f, info) for f, info in zip(features, infos)]
        out: list[Kept | None] = [None] * len(features)
        groups: dict[tuple, list[int]] = {}
        for i, (f, info) in enumerate(zip(features, infos)):      # same count and patch grid: one batched call
            groups.setdefault((int(f.shape[0]), info.grid), []).append(i)
        for members in groups.values():
            tokens = torch.stack([features[i] for i in members])
            result = self.reducer.reduce(tokens, **self._signals(members, infos, tokens))
            lengths = getattr(result, "lengths", None)
            for j, i in enumerate(members):
                k = int(lengths[j]) if lengths is not None else result.tokens.shape[1]
                idx, tok = result.indices[j, :k], result.tokens[j, :k]
                order = idx.argsort()                     # merged tokens: sequence order by representative
                out[i] = Kept(tok[order], idx[order])
        return out  # type: ignore[return-value]

    def _signals(self, members: list[int], infos: list[ImageInfo], tokens: torch.Tensor) -> dict[str, Any]:
        kw: dict[str, Any] = dict(self.options)
        if self.keep is not None:
            kw["keep"] = self.keep
        if self.method == "mmtok":
            texts = [infos[i].text for i in members]
            t_max = max(1, max(int(t.shape[0]) for t in texts))
            text = tokens.new_zeros(len(members), t_max, tokens.shape[-1])
            mask = torch.zeros(len(members), t_max, dtype=torch.bool, device=tokens.device)
            for j, t in enumerate(texts):
                text[j, :t.shape[0]] = t.to(tokens.dtype)
                mask[j, :t.shape[0]] = True
            if not bool(mask.any(1).all()):
                raise ReducerError("mmtok: a prompt has no text token besides its images; it covers the text, so give it a question")
            kw.update(text=text, text_mask=mask)
            if all(infos[i].vision is not None for i in members):
                kw["vision"] = torch.stack([infos[i].vision for i in members])
        elif self.method == "hiprune":
            kw.update(object_attn=torch.stack([infos[i].object_attn for i in members]),
                      deep_attn=torch.stack([infos[i].deep_attn for i in members]), grid=infos[members[0]].grid)
        elif self.method == "evit":
            kw["cls_attn"] = torch.stack([infos[i].cls_attn for i in members])
        return kw

    def _hiprune_views(self, feature: torch.Tensor, info: ImageInfo) -> Kept:
        """HiPrune on an any-res image: ``keep`` of every view (thumbnail and each crop) from that
        view's own attention, like the official LLaVA-NeXT path's per-crop budget; kept crop tokens
        in the padding that LLaVA-NeXT removed do not exist, the row-end newlines are all kept."""
        from ..policies.divprune import resolve_keep
        from ..policies.globalcom2 import unpadded_region
        from ..policies.hiprune import hiprune_select

        v = info.views
        obj, deep = v["object"], v["deep"]                                   # [views, N]
        n = int(obj.shape[1])
        side = math.isqrt(n)
        opts = {"alpha": self.options.get("alpha", self.reducer.options.get("alpha", 0.1)),
                "buffer": self.options.get("buffer", self.reducer.options.get("buffer", "flat"))}
        sel = hiprune_select(obj, deep, resolve_keep(self.keep, n), side, **opts)  # [views, k] ascending
        dev = feature.device
        if v.get("crops") is None:
            idx = torch.cat([sel[0].to(dev), torch.tensor([n], device=dev)])
            return Kept(feature[idx], idx)
        rows, cols = v["crops"]
        top, left, h, w = unpadded_region(rows, cols, side, v["image_size"])
        full = torch.zeros(rows * side, cols * side, dtype=torch.bool, device=dev)
        for c in range(rows * cols):
            local = sel[1 + c].to(dev)
            full[(c // cols) * side + local // side, (c % cols) * side + local % side] = True
        grid = torch.cat([full[top:top + h, left:left + w], torch.ones(h, 1, dtype=torch.bool, device=dev)], dim=1)
        idx = torch.cat([sel[0].to(dev), grid.flatten().nonzero()[:, 0] + n])
        return Kept(feature[idx], idx)

    def _globalcom2(self, feature: torch.Tensor, info: ImageInfo) -> Kept:
        from ..policies.globalcom2 import globalcom2_select

        v = info.views
        n = int(feature.shape[0])
        if v.get("crops") is None:                       # a single view: kept whole, like the official code
            idx = torch.arange(n, device=feature.device)
            return Kept(feature, idx)
        keep = 0.25 if self.keep is None else self.keep
        sel = globalcom2_select(v["cls_logits"], v["crops"], keep=keep, image_size=v.get("image_size"),
                                temperature=float(self.options.get("temperature", 10.0)))
        idx = sel.packed_indices(newline=v.get("newline", True)).to(feature.device)
        if idx.numel() and int(idx.max()) >= n:
            raise ReducerError(f"globalcom2: the image has {n} packed tokens but its crop layout implies more "
                               "(the processor's image_sizes must be the ones the features were computed with)")
        return Kept(feature[idx], idx)
