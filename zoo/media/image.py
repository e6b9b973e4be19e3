"""Images in and out: every zoo image model takes ``[B, 3, H, W]`` float tensors in ``[-1, 1]``.

Example:
    >>> import numpy as np
    >>> x = to_tensor(np.zeros((8, 8, 3), dtype=np.uint8))
    >>> tuple(x.shape), float(x.min())
    ((1, 3, 8, 8), -1.0)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

__all__ = ["load_images", "to_tensor", "to_pil", "to_unit", "from_unit", "make_grid", "save_grid"]


def _one(image: Any, size: int | tuple[int, int] | None) -> torch.Tensor:
    from PIL import Image

    if isinstance(image, (str, Path)):
        try:
            image = Image.open(image)
        except (FileNotFoundError, IsADirectoryError):
            raise FileNotFoundError(f"image not found: {image}") from None
    if isinstance(image, Image.Image):
        image = image.convert("RGB")
        if size is not None:
            image = _resize_center_crop(image, size)
        arr = np.asarray(image)
    elif isinstance(image, np.ndarray):
        arr = image
    elif isinstance(image, torch.Tensor):
        arr = image.detach().cpu().numpy()
        if arr.ndim == 3 and arr.shape[0] in (1, 3) and arr.shape[-1] not in (1, 3):
            arr = arr.transpose(1, 2, 0)
    else:
        raise TypeError(f"cannot read an image from {type(image).__name__}; pass a path, PIL image or HxWx3 uint8 array")
    if arr.dtype != np.uint8:
        raise TypeError(f"image arrays must be uint8 in [0, 255], got {arr.dtype}; float tensors in [-1, 1] can be passed to models directly")
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=-1)
    if arr.ndim != 3 or arr.shape[-1] not in (3, 4):
        raise ValueError(f"image must be HxWx3 (or HxWx4), got shape {arr.shape}")
    t = torch.from_numpy(np.array(arr[..., :3], copy=True)).permute(2, 0, 1).float()
    if size is not None and not isinstance(image, Image.Image):
        t = _resize_tensor(t, size)
    return t / 127.5 - 1.0


def _resize_center_crop(image, size):
    from PIL import Image

    h, w = (size, size) if isinstance(size, int) else size
    scale = max(h / image.height, w / image.width)
    image = image.resize((max(w, round(image.width * scale)), max(h, round(image.height * scale))), Image.BICUBIC)
    left, top = (image.width - w) // 2, (image.height - h) // 2
    return image.crop((left, top, left + w, top + h))


def _resize_tensor(t: torch.Tensor, size) -> torch.Tensor:
    h, w = (size, size) if isinstance(size, int) else size
    return torch.nn.functional.interpolate(t[None], size=(h, w), mode="bicubic", align_corners=False)[0].clamp(0, 255)


def to_tensor(images: Any, size: int | tuple[int, int] | None = None) -> torch.Tensor:
    """PIL image(s), paths, or uint8 ``HxWx3`` array(s) -> ``[B, 3, H, W]`` float in ``[-1, 1]``.

    ``size`` resizes (shorter side) and centre-crops to a square/rectangle first.
    """
    if isinstance(images, (list, tuple)):
        items = [_one(im, size) for im in images]
    else:
        items = [_one(images, size)]
    shapes = {tuple(t.shape) for t in items}
    if len(shapes) > 1:
        raise ValueError(f"images have different sizes {sorted(shapes)}; pass size= to resize them to one")
    return torch.stack(items)


def load_images(paths: Sequence[str | Path], size: int | tuple[int, int] | None = None) -> torch.Tensor:
    """Read image files into one ``[B, 3, H, W]`` tensor in ``[-1, 1]``."""
    return to_tensor(list(paths), size=size)


def to_unit(x: torch.Tensor) -> torch.Tensor:
    """``[-1, 1]`` -> ``[0, 1]`` (for models documented on [0, 1], e.g. TiTok)."""
    return (x + 1.0) * 0.5


def from_unit(x: torch.Tensor) -> torch.Tensor:
    """``[0, 1]`` -> ``[-1, 1]``."""
    return x * 2.0 - 1.0


def to_pil(x: torch.Tensor) -> list:
    """``[B, 3, H, W]`` (or ``[3, H, W]``) in ``[-1, 1]`` -> list of PIL images (clamped)."""
    from PIL import Image

    if x.dim() == 3:
        x = x[None]
    arr = ((x.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    return [Image.fromarray(a) for a in arr]


def make_grid(rows: Sequence[Sequence[torch.Tensor]], col_labels: Sequence[str] | None = None, pad: int = 4):
    """A PIL image of ``rows`` x columns of ``[3, H, W]`` tensors in ``[-1, 1]`` with an optional
    header row of labels."""
    from PIL import Image, ImageDraw

    tiles = [[to_pil(t)[0] for t in row] for row in rows]
    h = max(t.height for row in tiles for t in row)
    w = max(t.width for row in tiles for t in row)
    ncols = max(len(r) for r in tiles)
    header = 16 if col_labels else 0
    grid = Image.new("RGB", (ncols * (w + pad) + pad, header + len(tiles) * (h + pad) + pad), "white")
    draw = ImageDraw.Draw(grid)
    for j, label in enumerate(col_labels or []):
        draw.text((pad + j * (w + pad), 2), str(label), fill="black")
    for i, row in enumerate(tiles):
        for j, tile in enumerate(row):
            grid.paste(tile, (pad + j * (w + pad), header + pad + i * (h + pad)))
    return grid


def save_grid(rows: Sequence[Sequence[torch.Tensor]], path: str | Path, col_labels: Sequence[str] | None = None) -> Path:
    """Write :func:`make_grid` to ``path`` (format from the suffix)."""
    path = Path(path)
    make_grid(rows, col_labels).save(path)
    return path
