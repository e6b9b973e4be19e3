"""Images in and out: every zoo image model takes ``[B, 3, H, W]`` float tensors in ``[-1, 1]``.

Files are read with PIL: 8-bit images as they are, 16-bit ones (``I;16`` PNGs, ``I`` mode) scaled
from ``[0, 65535]`` (never clipped to white), palette/alpha/CMYK images converted to RGB. A file
PIL cannot read as an image, a truncated one, or pixels that are NaN/Inf is a
:class:`~zoo.errors.MediaError` naming the file (:func:`check_images` is the check models run on
tensors).

Example:
    >>> import numpy as np
    >>> x = to_tensor(np.zeros((8, 8, 3), dtype=np.uint8))
    >>> tuple(x.shape), float(x.min())
    ((1, 3, 8, 8), -1.0)
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from zoo.errors import InputTypeError, MediaError

__all__ = [
    "check_images", "from_unit", "latent_preview", "load_images", "make_grid", "open_image", "save_grid", "to_pil",
    "to_tensor", "to_unit",
]

_WIDE_MODES = {"I;16": 65535.0, "I;16L": 65535.0, "I;16B": 65535.0, "I;16N": 65535.0, "I": 65535.0}


def open_image(path: str | Path | bytes, *, name: str | None = None):
    """Open an image file (or the encoded bytes of one: png, jpeg, ... as read from a Parquet
    column or a tar member; ``name`` says where they came from in errors) fully, decoding it now
    so truncated files fail here, as a PIL image.

    A missing file is a ``FileNotFoundError``; anything PIL cannot decode is a
    :class:`~zoo.errors.MediaError` naming the file.
    """
    import io

    from PIL import Image, UnidentifiedImageError

    if isinstance(path, (bytes, bytearray, memoryview)):
        source, path = io.BytesIO(path), name or "image bytes"
    else:
        path = source = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"image not found: {path}")
    try:
        image = Image.open(source)
        image.load()
    except UnidentifiedImageError:
        raise MediaError(f"{path} is not an image file PIL can read (png, jpeg, webp, ...)") from None
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise MediaError(f"{path} could not be decoded as an image ({exc}); is it truncated or corrupt?") from None
    return image


def _to_rgb(image):
    """A PIL image as 8-bit RGB; 16-bit grey levels are scaled, not clipped."""
    from PIL import Image

    if image.mode in _WIDE_MODES:
        arr = np.asarray(image).astype(np.float64)
        if arr.size and (arr.min() < 0 or arr.max() > _WIDE_MODES[image.mode]):
            raise MediaError(f"{image.mode} image values lie in [{arr.min():.0f}, {arr.max():.0f}], outside [0, 65535]")
        arr = np.rint(arr * (255.0 / 65535.0)).astype(np.uint8)
        return Image.fromarray(arr, mode="L").convert("RGB")
    if image.mode == "F":
        raise MediaError("32-bit float images have no defined range; save the image as an 8- or 16-bit PNG")
    return image.convert("RGB")


def _one(image: Any, size: int | tuple[int, int] | None) -> torch.Tensor:
    from PIL import Image

    if isinstance(image, (str, Path)):
        image = open_image(image)
    if isinstance(image, Image.Image):
        image = _to_rgb(image)
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
        raise InputTypeError(f"cannot read an image from {type(image).__name__}; pass a path, PIL image or HxWx3 uint8 array")
    if arr.dtype != np.uint8:
        raise InputTypeError(f"image arrays must be uint8 in [0, 255], got {arr.dtype}; float tensors in [-1, 1] can be passed to models directly")
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=-1)
    if arr.ndim != 3 or arr.shape[-1] not in (3, 4):
        raise MediaError(f"image must be HxWx3 (or HxWx4), got shape {arr.shape}")
    if 0 in arr.shape:
        raise MediaError(f"image is empty (shape {arr.shape})")
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
        if not images:
            raise MediaError("no images given (an empty list)")
        items = [_one(im, size) for im in images]
    else:
        items = [_one(images, size)]
    shapes = {tuple(t.shape) for t in items}
    if len(shapes) > 1:
        raise MediaError(f"images have different sizes {sorted(shapes)}; pass size= to resize them to one")
    return torch.stack(items)


def check_images(images: Any, *, size: int | tuple[int, int] | None = None, multiple_of: int | None = None,
                 model: str = "this model") -> torch.Tensor:
    """Check that ``images`` is what image models take, before any compute: a float
    ``[B, 3, H, W]`` tensor, B >= 1, finite, in about ``[-1, 1]``, of ``size`` (an int: square)
    or with sides divisible by ``multiple_of``. Returns ``images``; raises
    :class:`~zoo.errors.MediaError` (or :class:`~zoo.errors.InputTypeError`) naming the fix.

    Example:
        >>> check_images(torch.zeros(1, 3, 32, 32), size=32).shape
        torch.Size([1, 3, 32, 32])
        >>> check_images(torch.zeros(1, 3, 32, 32), size=64, model="flextok.demo_tiny")  # doctest: +IGNORE_EXCEPTION_DETAIL
        Traceback (most recent call last):
        zoo.errors.MediaError: flextok.demo_tiny takes 64x64 images, got 32x32; ...
    """
    if not isinstance(images, torch.Tensor):
        raise InputTypeError(f"{model} takes images as a [B, 3, H, W] float tensor in [-1, 1], got {type(images).__name__}; "
                             "read files and PIL images with zoo.media.image.to_tensor")
    if images.dim() != 4 or images.shape[1] != 3:
        raise MediaError(f"{model} takes images as [B, 3, H, W] in [-1, 1], got shape {tuple(images.shape)}"
                         + ("; add the batch dimension with x[None]" if images.dim() == 3 and images.shape[0] == 3 else ""))
    if not images.is_floating_point():
        raise InputTypeError(f"{model} takes float images in [-1, 1], got {images.dtype}; convert uint8 with x / 127.5 - 1")
    if images.shape[0] == 0 or images.shape[2] == 0 or images.shape[3] == 0:
        raise MediaError(f"no images to encode: shape {tuple(images.shape)}")
    h, w = images.shape[-2:]
    if size is not None:
        want = (size, size) if isinstance(size, int) else tuple(size)
        if (h, w) != want:
            raise MediaError(f"{model} takes {want[0]}x{want[1]} images, got {h}x{w}; resize them first "
                             f"(zoo.media.image.to_tensor(images, size={want[0] if want[0] == want[1] else want}))")
    if multiple_of and (h % multiple_of or w % multiple_of):
        raise MediaError(f"{model} takes images whose sides are multiples of {multiple_of}, got {h}x{w}")
    finite = torch.isfinite(images)
    if not bool(finite.all()):
        bad = int((~finite).sum())
        raise MediaError(f"images hold {bad} NaN/Inf pixel value(s); {model} encodes finite pixels in [-1, 1] only")
    lo, hi = float(images.min()), float(images.max())
    if lo < -1.5 or hi > 1.5:
        raise MediaError(f"images must lie in [-1, 1], got values in [{lo:.3g}, {hi:.3g}]; "
                         "convert [0, 1] images with x * 2 - 1 and uint8 with x / 127.5 - 1")
    return images


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


def latent_preview(latents: torch.Tensor, size: tuple[int, int] | None = None) -> torch.Tensor:
    """A picture of one latent grid ``[C, h, w]``: its first three principal components over the
    ``h*w`` positions as RGB in ``[-1, 1]`` (each channel min-max scaled), upscaled (nearest) to
    ``size`` ``(H, W)``. Fewer than three channels repeat the first.

    Example:
        >>> latent_preview(torch.randn(16, 4, 6), size=(8, 12)).shape
        torch.Size([3, 8, 12])
    """
    if latents.dim() != 3 or 0 in latents.shape:
        raise MediaError(f"latent_preview takes one latent grid [C, h, w], got shape {tuple(latents.shape)}")
    c, h, w = latents.shape
    x = latents.detach().float().cpu().reshape(c, h * w).t()  # [positions, C]
    x = x - x.mean(0, keepdim=True)
    k = min(3, c, h * w)
    if k > 0 and bool(x.abs().max() > 0):
        _, _, v = torch.linalg.svd(x, full_matrices=False)
        pcs = x @ v[:k].t()
    else:
        pcs = x[:, :1]
    while pcs.shape[1] < 3:
        pcs = torch.cat([pcs, pcs[:, :1]], 1)
    lo, hi = pcs.min(0, keepdim=True).values, pcs.max(0, keepdim=True).values
    img = ((pcs - lo) / (hi - lo).clamp_min(1e-12) * 2 - 1).t().reshape(3, h, w)
    if size is not None and tuple(size) != (h, w):
        img = torch.nn.functional.interpolate(img[None], size=tuple(size), mode="nearest")[0]
    return img


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
