"""3-D (tubelet) patch embedding for video: ``[B, C, T, H, W]`` -> ``[B, t*h*w, D]`` through a
``Conv3d`` whose kernel equals its stride (parameter ``proj``, the timm/Latte/LARP key layout),
and the inverse rearrangement of per-patch pixel predictions back to a video.

Example:
    >>> import torch
    >>> embed = PatchEmbed3D(3, 16, patch=(2, 4, 4))
    >>> tokens = embed(torch.randn(1, 3, 4, 8, 8))
    >>> tokens.shape, embed.grid((4, 8, 8))
    (torch.Size([1, 8, 16]), (2, 2, 2))
    >>> unpatchify_3d(torch.randn(1, 8, 2 * 4 * 4 * 3), (2, 2, 2), (2, 4, 4), 3).shape
    torch.Size([1, 3, 4, 8, 8])
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from zoo.errors import InputError

__all__ = ["PatchEmbed3D", "unpatchify_3d"]


class PatchEmbed3D(nn.Module):
    """Non-overlapping ``patch = (pt, ph, pw)`` tubelets -> ``dim`` features, flattened in
    (t, h, w) order. Inputs whose sizes are not multiples of the patch raise
    :class:`~zoo.errors.InputError`."""

    def __init__(self, in_channels: int, dim: int, patch: Sequence[int], bias: bool = True):
        super().__init__()
        self.patch = tuple(int(p) for p in patch)
        self.proj = nn.Conv3d(in_channels, dim, kernel_size=self.patch, stride=self.patch, bias=bias)

    def grid(self, size: Sequence[int]) -> tuple[int, int, int]:
        """The token grid ``(t, h, w)`` of a ``(T, H, W)`` video."""
        bad = [s for s, p in zip(size, self.patch) if s % p]
        if bad:
            raise InputError(f"video size (T, H, W) = {tuple(size)} must be a multiple of the patch {self.patch}")
        return tuple(s // p for s, p in zip(size, self.patch))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.grid(x.shape[2:])
        return F.conv3d(x, self.proj.weight, self.proj.bias, stride=self.patch).flatten(2).transpose(1, 2)


def unpatchify_3d(x: torch.Tensor, grid: Sequence[int], patch: Sequence[int], channels: int) -> torch.Tensor:
    """``[B, t*h*w, pt*ph*pw*C]`` (each patch's pixels in (pt, ph, pw, C) order, the DiT/Latte/LARP
    layout) -> ``[B, C, t*pt, h*ph, w*pw]``."""
    t, h, w = grid
    pt, ph, pw = patch
    b = x.shape[0]
    x = x.reshape(b, t, h, w, pt, ph, pw, channels)
    return x.permute(0, 7, 1, 4, 2, 5, 3, 6).reshape(b, channels, t * pt, h * ph, w * pw)
