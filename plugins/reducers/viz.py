"""Draw which patches a reducer merged: every patch is painted with the mean colour of the
patches that ended in the same token (pruned patches are black), with group borders in white.

Example:
    >>> from PIL import Image
    >>> out = merge_viz(Image.new("RGB", (64, 64), "red"), vit="vit_tiny_patch16_224", r=2, img_size=64)
    >>> out.size
    (64, 64)
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

__all__ = ["group_map", "merge_viz"]


def group_map(model: torch.nn.Module, image: torch.Tensor, reducer: Any, **schedule: Any) -> torch.Tensor:
    """``[B, H, W]`` long: the output token each patch ended in (-1 = pruned)."""
    handle = reducer.apply(model, trace_source=True, **schedule)
    try:
        with torch.no_grad():
            model.forward_features(image)
        p = model.num_prefix_tokens
        gh, gw = model.patch_embed.dynamic_feat_size(image.shape[-2:])
        return handle.source[:, p:].reshape(image.shape[0], gh, gw)
    finally:
        handle.remove()


def merge_viz(image: Any, vit: str = "vit_base_patch16_224", method: str = "tome", r: int = 16,
              img_size: int | None = None, pretrained: bool = False, **schedule: Any) -> Any:
    """A PIL image showing the groups of merged patches of ``image`` in the timm model ``vit``."""
    from PIL import Image

    from ._compat import import_timm
    from .reducers import REDUCERS

    timm = import_timm()
    kwargs = {"img_size": img_size} if img_size else {}
    model = timm.create_model(vit, pretrained=pretrained, **kwargs).eval()
    h, w = model.patch_embed.img_size
    rgb = np.asarray(image.convert("RGB").resize((w, h), Image.BICUBIC), dtype=np.float32) / 255.0
    x = torch.from_numpy(rgb).permute(2, 0, 1)[None] * 2 - 1
    if method == "tome":
        schedule.setdefault("r", r)
    groups = group_map(model, x, REDUCERS[method](), **schedule)[0].numpy()
    ph, pw = model.patch_embed.patch_size
    patches = rgb.reshape(groups.shape[0], ph, groups.shape[1], pw, 3).mean(axis=(1, 3))
    out = np.zeros_like(patches)
    for g in np.unique(groups):
        if g >= 0:
            sel = groups == g
            out[sel] = patches[sel].mean(axis=0)
    big = np.repeat(np.repeat(out, ph, axis=0), pw, axis=1)
    gid = np.repeat(np.repeat(groups, ph, axis=0), pw, axis=1)
    edge = np.zeros(gid.shape, dtype=bool)
    edge[1:, :] |= gid[1:, :] != gid[:-1, :]
    edge[:, 1:] |= gid[:, 1:] != gid[:, :-1]
    big[edge] = 1.0
    return Image.fromarray((big * 255).round().astype(np.uint8))
