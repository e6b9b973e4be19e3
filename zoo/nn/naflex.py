"""NaFlex-style patch dictionaries: images of any size (and batches of different sizes) as padded
patch sequences with their grid positions, and back.

Each image ``[C, H, W]`` is zero-padded at the bottom/right to a multiple of ``patch``, cut into
``(H'/p) x (W'/p)`` patches in row-major order, each flattened channel-major (``C, p, p``: the
order of ``F.unfold``, which ViTok-v2's ``patchify`` uses), and right-padded to the longest
sequence of the batch (or ``max_tokens``). :class:`PatchDict` carries the valid mask, the
row/column index of every patch (for 2-D RoPE) and each image's size; :func:`unpatchify`
folds patches back and crops every image to its size.

Example:
    >>> import torch
    >>> pd = patchify([torch.zeros(3, 20, 32), torch.zeros(3, 16, 16)], patch=16)
    >>> pd.patches.shape, pd.lengths.tolist(), pd.grids
    (torch.Size([2, 4, 768]), [4, 1], [(2, 2), (1, 1)])
    >>> [tuple(im.shape) for im in unpatchify(pd.patches, pd)]
    [(3, 20, 32), (3, 16, 16)]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F

from zoo.errors import InputError

__all__ = ["PatchDict", "patchify", "unpatchify"]


@dataclass
class PatchDict:
    """Padded patch sequences: ``patches`` ``[B, N, C*p*p]``, ``mask`` ``[B, N]`` (True = a real
    patch), ``rows``/``cols`` ``[B, N]`` grid indices (0 on padding), per-image ``sizes`` (H, W)
    and ``grids`` (rows, cols)."""

    patches: torch.Tensor
    mask: torch.Tensor
    rows: torch.Tensor
    cols: torch.Tensor
    sizes: list[tuple[int, int]]
    grids: list[tuple[int, int]]
    patch: int
    channels: int = 3

    @property
    def lengths(self) -> torch.Tensor:
        """``[B]`` number of real patches per image."""
        return self.mask.sum(dim=1)

    @property
    def uniform(self) -> bool:
        """True when every image has the same grid (no padding anywhere)."""
        return len(set(self.grids)) == 1 and bool(self.mask.all())

    def positions(self) -> torch.Tensor:
        """``[B, N, 2]`` float (row, col) positions."""
        return torch.stack([self.rows, self.cols], dim=-1).float()


def _grid(h: int, w: int, patch: int) -> tuple[int, int]:
    return -(-h // patch), -(-w // patch)


def patchify(images: torch.Tensor | Sequence[torch.Tensor], patch: int, max_tokens: int | None = None) -> PatchDict:
    """Images ``[B, C, H, W]`` or a list of ``[C, H, W]`` (sizes may differ) -> :class:`PatchDict`."""
    items = list(images) if not isinstance(images, torch.Tensor) else list(images.unbind(0))
    if not items:
        raise InputError("no images given (an empty batch)")
    grids = [_grid(int(x.shape[-2]), int(x.shape[-1]), patch) for x in items]
    n_max = max(r * c for r, c in grids)
    if max_tokens is not None:
        if n_max > max_tokens:
            raise InputError(f"an image of {n_max} patches exceeds max_tokens={max_tokens}")
        n_max = max_tokens
    x0 = items[0]
    c = int(x0.shape[0])
    patches = x0.new_zeros(len(items), n_max, c * patch * patch)
    mask = torch.zeros(len(items), n_max, dtype=torch.bool, device=x0.device)
    rows = torch.zeros(len(items), n_max, dtype=torch.long, device=x0.device)
    cols = torch.zeros_like(rows)
    sizes = []
    for i, (x, (gr, gc)) in enumerate(zip(items, grids)):
        h, w = int(x.shape[-2]), int(x.shape[-1])
        sizes.append((h, w))
        x = F.pad(x, (0, gc * patch - w, 0, gr * patch - h))
        n = gr * gc
        patches[i, :n] = F.unfold(x[None], kernel_size=patch, stride=patch)[0].t()
        mask[i, :n] = True
        r, cc = torch.meshgrid(torch.arange(gr, device=x.device), torch.arange(gc, device=x.device), indexing="ij")
        rows[i, :n], cols[i, :n] = r.flatten(), cc.flatten()
    return PatchDict(patches=patches, mask=mask, rows=rows, cols=cols, sizes=sizes, grids=grids, patch=patch, channels=c)


def unpatchify(patches: torch.Tensor, pd: PatchDict, crop: bool = True) -> torch.Tensor | list[torch.Tensor]:
    """``[B, N, C*p*p]`` patches laid out as ``pd`` -> images: one ``[B, C, H, W]`` tensor when all
    images share a size, else a list of ``[C, H, W]`` (cropped to each image's size unless ``crop=False``)."""
    p = pd.patch
    out = []
    for i, (gr, gc) in enumerate(pd.grids):
        cols = patches[i, : gr * gc].t()[None]  # [1, C*p*p, n]
        img = F.fold(cols, output_size=(gr * p, gc * p), kernel_size=p, stride=p)[0]
        if crop:
            h, w = pd.sizes[i]
            img = img[:, :h, :w]
        out.append(img)
    if len({tuple(t.shape) for t in out}) == 1:
        return torch.stack(out)
    return out
