"""The Snake activation (Ziyin et al. 2020; as in DAC, BigVGAN, SNAC):
``x + sin(alpha * x)^2 / (alpha + 1e-9)`` with one learned ``alpha`` per channel.

Example:
    >>> import torch
    >>> act = Snake1d(2)
    >>> act(torch.zeros(1, 2, 3)).abs().max().item()
    0.0
    >>> round(snake(torch.tensor([[[1.0]]]), torch.ones(1, 1, 1)).item(), 4)
    1.7081
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["Snake1d", "snake"]


def snake(x: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """``x + (alpha + 1e-9)^-1 * sin(alpha * x)^2`` on ``[B, C, ...]`` with ``alpha`` ``[1, C, 1]``."""
    shape = x.shape
    x = x.reshape(shape[0], shape[1], -1)
    inv = (alpha + 1e-9).reciprocal()
    if torch.is_grad_enabled() and (x.requires_grad or alpha.requires_grad):
        return (x + inv * torch.sin(alpha * x).pow(2)).reshape(shape)
    s = torch.mul(alpha, x).sin_()  # inference: one buffer, updated in place (same values, same order)
    return s.mul_(s).mul_(inv).add_(x).reshape(shape)


class Snake1d(nn.Module):
    """Snake with its ``alpha`` parameter ``[1, channels, 1]`` (the releases' key name)."""

    def __init__(self, channels: int):
        super().__init__()
        self.alpha = nn.Parameter(torch.ones(1, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return snake(x, self.alpha)
