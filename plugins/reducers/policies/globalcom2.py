"""GlobalCom² (Liu et al., AAAI 2026): compress LLaVA-NeXT's any-resolution visual tokens with the
thumbnail as "commander".

LLaVA-NeXT encodes an image as a global thumbnail plus ``rows x cols`` local crops, every view
through the same CLIP tower (``side x side`` patch tokens each). GlobalCom² keeps:

* **thumbnail**: the ``int(N * keep)`` tokens with the highest thumbnail CLS attention, in
  descending score order (as the official code concatenates them);
* **crops**: a retention ratio per crop from the thumbnail's view of it: the thumbnail's CLS
  scores summed over the crop's region of the thumbnail grid, ``softmax(s / temperature)``, and
  ``scale_c = keep * (1 + softmax_c - mean(softmax))`` clipped at 1; in each crop (after
  LLaVA-NeXT's unpadding) the ``int(N_c * scale_c)`` tokens with the highest sum of the crop's own
  L2-normalised CLS scores and the L2-normalised thumbnail scores bilinearly resized onto the
  unpadded crop grid. Kept crop tokens stay in raster order, with LLaVA-NeXT's row-end newline
  tokens (all kept).

The CLS scores are the **pre-softmax** logits ``q_cls . k / sqrt(d)`` of the vision tower's last
layer, averaged over heads, patch columns only (the official ``CustomCLIPAttention``).
A single-view image (no crops) is left as it is, like the official code.

Example:
    >>> import torch
    >>> cls = torch.randn(5, 16)                      # thumbnail + 2x2 crops of a 4x4 patch grid
    >>> sel = globalcom2_select(cls, (2, 2), keep=0.25)
    >>> sel.thumbnail.shape, sel.crop_mask.shape        # 4 of 16 thumbnail tokens; the 8x8 crop grid
    (torch.Size([4]), torch.Size([8, 8]))
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..checks import check_rate, check_real
from ..types import ReducerError

__all__ = ["GlobalCom2Selection", "crop_scales", "globalcom2_select", "thumbnail_scores_per_crop", "unpadded_region"]


@dataclass
class GlobalCom2Selection:
    """What GlobalCom² keeps of one image.

    Attributes:
        thumbnail: ``[k0]`` kept thumbnail positions (``0..N-1``), best score first.
        crop_mask: ``[H', W']`` bool over the unpadded crop grid (raster order = LLaVA-NeXT's order
            without the newline column).
        scales: ``[rows * cols]`` the per-crop retention ratios.
        region: ``(top, left, H', W')`` the unpadded region inside the ``rows*side x cols*side`` grid.
        num_thumbnail: the thumbnail's token count ``N``.
    """

    thumbnail: torch.Tensor
    crop_mask: torch.Tensor
    scales: torch.Tensor
    region: tuple[int, int, int, int]
    num_thumbnail: int = 0

    def packed_indices(self, newline: bool = True) -> torch.Tensor:
        """Kept positions in LLaVA-NeXT's packed order ``[thumbnail (N) | crop rows, each W' (+1 newline)]``:
        the thumbnail's in score order, then the crop part ascending (newlines kept)."""
        side2 = self.num_thumbnail
        h, w = self.crop_mask.shape
        grid = self.crop_mask
        if newline:
            grid = torch.cat([grid, torch.ones(h, 1, dtype=torch.bool, device=grid.device)], dim=1)
        crops = grid.flatten().nonzero()[:, 0] + side2
        return torch.cat([self.thumbnail.to(crops.device), crops])


def unpadded_region(rows: int, cols: int, side: int, image_size: tuple[int, int]) -> tuple[int, int, int, int]:
    """``(top, left, height, width)`` of the image inside the ``rows*side x cols*side`` crop grid,
    the way transformers' LLaVA-NeXT unpads it (``image_size`` is ``(height, width)``).

    Example:
        >>> unpadded_region(1, 2, 24, (300, 800))   # a wide image: rows of padding removed
        (3, 0, 18, 48)
    """
    cur_h, cur_w = rows * side, cols * side
    oh, ow = int(image_size[0]), int(image_size[1])
    if oh <= 0 or ow <= 0:
        raise ReducerError(f"image_size must be a positive (height, width), got {image_size}")
    if ow / oh > cur_w / cur_h:
        new_h = int(round(oh * (cur_w / ow), 7))
        pad = (cur_h - new_h) // 2
        return pad, 0, cur_h - 2 * pad, cur_w
    new_w = int(round(ow * (cur_h / oh), 7))
    pad = (cur_w - new_w) // 2
    return 0, pad, cur_h, cur_w - 2 * pad


def crop_scales(thumb_scores: torch.Tensor, grid: tuple[int, int], keep: float, temperature: float = 10.0) -> torch.Tensor:
    """Per-crop retention ratios ``[rows * cols]`` (float64) from the thumbnail's CLS scores ``[N]``.

    Each thumbnail patch is assigned to the crop covering it (``side // cols`` columns and
    ``side // rows`` rows per crop, the remainder going to the last crop); the crop's score sum
    goes through ``softmax(. / temperature)``; ``keep * (1 + p - mean(p))`` is clipped at 1.

    Example:
        >>> import torch
        >>> crop_scales(torch.zeros(16), (2, 2), 0.25).tolist()
        [0.25, 0.25, 0.25, 0.25]
    """
    rows, cols = grid
    n = thumb_scores.shape[0]
    side = math.isqrt(n)
    ph, pw = max(side // rows, 1), max(side // cols, 1)
    idx = torch.arange(n, device=thumb_scores.device)
    i, j = idx // side, idx % side
    crop = (i // ph).clamp(max=rows - 1) * cols + (j // pw).clamp(max=cols - 1)
    sums = torch.zeros(rows * cols, dtype=torch.float64, device=thumb_scores.device)
    sums.index_add_(0, crop, thumb_scores.detach().double())
    e = torch.exp((sums - sums.max()) / temperature)
    p = e / (e.sum() + 1e-8)
    return (keep * (1 + p - p.mean())).clamp(max=1.0)


def thumbnail_scores_per_crop(thumb_scores: torch.Tensor, region_hw: tuple[int, int],
                              crop_dims: list[tuple[int, int]], cols: int) -> list[torch.Tensor]:
    """The thumbnail's scores resized (bilinear) onto the unpadded ``H' x W'`` grid and cut into
    the crops' valid rectangles (``crop_dims``: ``(height, width)`` per crop, raster order)."""
    n = thumb_scores.shape[0]
    side = math.isqrt(n)
    h, w = region_hw
    up = F.interpolate(thumb_scores.view(1, 1, side, side), size=(h, w), mode="bilinear", align_corners=False)[0, 0]
    out, top = [], 0
    rows = len(crop_dims) // cols
    for r in range(rows):
        left = 0
        for c in range(cols):
            ch, cw = crop_dims[r * cols + c]
            out.append(up[top:top + ch, left:left + cw].flatten())
            left += cw
        top += crop_dims[r * cols][0]
    return out


def globalcom2_select(cls_scores: torch.Tensor, grid: tuple[int, int], keep: float = 0.25,
                      image_size: tuple[int, int] | None = None, temperature: float = 10.0) -> GlobalCom2Selection:
    """GlobalCom²'s selection for one any-res image.

    Args:
        cls_scores: ``[1 + rows * cols, N]`` CLS scores of the thumbnail then each crop (raster
            order), ``N = side * side`` patch columns.
        grid: ``(rows, cols)`` of crops.
        keep: the base retention ratio (official default 0.25).
        image_size: the original ``(height, width)`` for LLaVA-NeXT's unpadding (None: no padding).
        temperature: of the crop softmax (official 10).
    """
    keep = check_rate("GlobalCom2 keep (the base retention ratio)", keep)
    temperature = check_real("GlobalCom2 temperature", temperature)
    rows, cols = int(grid[0]), int(grid[1])
    if cls_scores.dim() != 2 or cls_scores.shape[0] != 1 + rows * cols:
        raise ReducerError(f"globalcom2 needs cls_scores [1 + rows*cols, N] = [{1 + rows * cols}, N] for grid {grid}, "
                           f"got {tuple(cls_scores.shape)}")
    n = cls_scores.shape[1]
    side = math.isqrt(n)
    if side * side != n:
        raise ReducerError(f"globalcom2 needs a square patch grid per view, got {n} tokens")
    scores = cls_scores.float()
    base = scores[0]
    thumb = torch.argsort(base, descending=True)[: int(n * keep)]
    scales = crop_scales(base, (rows, cols), keep, temperature)
    top, left, h, w = (0, 0, rows * side, cols * side) if image_size is None else unpadded_region(rows, cols, side, image_size)
    valid = torch.zeros(rows * side, cols * side, dtype=torch.bool, device=scores.device)
    valid[top:top + h, left:left + w] = True
    blocks = valid.view(rows, side, cols, side).permute(0, 2, 1, 3)             # [rows, cols, side, side]
    dims = []
    for r in range(rows):
        for c in range(cols):
            nz = blocks[r, c].nonzero()
            dims.append((0, 0) if nz.numel() == 0 else
                        (int(nz[:, 0].max() - nz[:, 0].min() + 1), int(nz[:, 1].max() - nz[:, 1].min() + 1)))
    global_scores = thumbnail_scores_per_crop(base, (h, w), dims, cols)
    keep_full = torch.zeros(rows, cols, side, side, dtype=torch.bool, device=scores.device)
    for ci in range(rows * cols):
        r, c = divmod(ci, cols)
        m = blocks[r, c].flatten()
        local = scores[1 + ci][m]
        k = int(local.shape[0] * float(scales[ci]))
        if k == 0:
            continue
        combined = F.normalize(local[None], p=2, dim=-1)[0] + F.normalize(global_scores[ci][None], p=2, dim=-1)[0]
        top_k = torch.topk(combined, k).indices
        flat = torch.zeros(side * side, dtype=torch.bool, device=scores.device)
        flat[m.nonzero()[:, 0][top_k]] = True
        keep_full[r, c] = flat.view(side, side)
    full = keep_full.permute(0, 2, 1, 3).reshape(rows * side, cols * side)
    return GlobalCom2Selection(thumbnail=thumb, crop_mask=full[top:top + h, left:left + w], scales=scales,
                               region=(top, left, h, w), num_thumbnail=n)
