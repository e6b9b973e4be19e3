"""PIL / uint8 -> FlexTok input tensors (the reference demo's resize + center crop + [-1, 1])."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from zoo.errors import InputError


def _one(img: Any, size: int) -> torch.Tensor:
    from PIL import Image

    if isinstance(img, Image.Image):
        w, h = img.size
        s = size / min(w, h)
        img = img.convert("RGB").resize((max(size, round(w * s)), max(size, round(h * s))), Image.BICUBIC)
        arr = np.asarray(img)
    else:
        arr = np.asarray(img)
        if arr.ndim != 3 or arr.shape[-1] != 3 or arr.dtype != np.uint8:
            raise InputError(f"expected a PIL image or a uint8 [H, W, 3] array, got {arr.dtype} {arr.shape}")
    x = torch.from_numpy(arr.copy()).permute(2, 0, 1).float()[None] / 127.5 - 1.0
    h, w = x.shape[-2:]
    if min(h, w) != size:
        s = size / min(h, w)
        x = F.interpolate(x, size=(max(size, round(h * s)), max(size, round(w * s))), mode="bicubic", align_corners=False)
        h, w = x.shape[-2:]
    top, left = (h - size) // 2, (w - size) // 2
    return x[..., top : top + size, left : left + size].clamp(-1, 1)


def images_to_tensor(images: Sequence[Any] | Any, size: int = 256) -> torch.Tensor:
    if not isinstance(images, (list, tuple)):
        images = [images]
    return torch.cat([_one(im, size) for im in images])
