"""SEANet encoder (EnCodec layout) with its 2-layer LSTM, and WavTokenizer's single-VQ codebook.

Weight norm is folded at load time (``w = g * v / ||v||``), so the convolutions are plain
``Conv1d`` layers. Layer indices follow the official ``encoder.model.N`` numbering so the
converter is a rename:

    0 conv(1->32, k7) | [1 resblock, 2 ELU, 3 down conv(k=2r, stride r)] x 4 | 13 LSTM | 14 ELU | 15 conv(k7)

Every convolution is "same"-padded by reflection, with extra right padding so the last window
is full: ``L`` samples give ``ceil(L / hop)`` frames.

Example:
    >>> import torch
    >>> enc = SEANetEncoder(ratios=[8, 5, 4, 2], n_filters=4, dimension=8)
    >>> enc(torch.zeros(1, 1, 700)).shape
    torch.Size([1, 8, 3])
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from zoo.nn.quantize import lookup_codes, nearest_code

__all__ = ["PaddedConv1d", "SEANetResBlock", "SEANetEncoder", "SkipLSTM", "Codebook", "receptive_field"]


def _reflect_pad(x: torch.Tensor, left: int, right: int) -> torch.Tensor:
    """Reflect padding that also works when the input is shorter than the pad (EnCodec rule:
    zero-extend on the right first, reflect, then drop the zero extension)."""
    length = x.shape[-1]
    extra = max(left, right) - length + 1 if length <= max(left, right) else 0
    if extra:
        x = F.pad(x, (0, extra))
    out = F.pad(x, (left, right), mode="reflect")
    return out[..., : out.shape[-1] - extra] if extra else out


class PaddedConv1d(nn.Conv1d):
    """Conv1d with EnCodec's non-causal padding: total ``k_eff - stride`` split right-heavy
    (``right = total // 2``), plus right padding so that ``ceil(L / stride)`` frames come out."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        k = (self.kernel_size[0] - 1) * self.dilation[0] + 1
        s = self.stride[0]
        total = k - s
        length = x.shape[-1]
        n_frames = math.ceil((length - k + total) / s + 1)
        extra = (n_frames - 1) * s + (k - total) - length
        right = total // 2
        if total or extra:
            x = _reflect_pad(x, total - right, right + extra)
        return F.conv1d(x, self.weight, self.bias, s, 0, self.dilation, self.groups)


class SEANetResBlock(nn.Module):
    """``shortcut(x) + conv1x1(elu(conv3(elu(x))))`` with a 1x1-conv shortcut (true_skip=False)."""

    def __init__(self, dim: int, kernel_size: int = 3, dilation: int = 1, compress: int = 2):
        super().__init__()
        hidden = dim // compress
        self.block = nn.Sequential(
            nn.ELU(),
            PaddedConv1d(dim, hidden, kernel_size, dilation=dilation),
            nn.ELU(),
            PaddedConv1d(hidden, dim, 1),
        )
        self.shortcut = PaddedConv1d(dim, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``shortcut(x) + conv1x1(h)`` as one 1x1 conv over ``[x; h]`` (same sum, one pass)."""
        h = self.block[2](self.block[1](self.block[0](x)))
        last, short = self.block[3], self.shortcut
        weight = torch.cat([short.weight, last.weight], dim=1)
        return F.conv1d(torch.cat([x, h], dim=1), weight, short.bias + last.bias)


class SkipLSTM(nn.Module):
    """``lstm(x) + x`` on ``[B, C, T]``; ``state`` carries (h, c) across chunks of one stream."""

    def __init__(self, dim: int, num_layers: int = 2):
        super().__init__()
        self.lstm = nn.LSTM(dim, dim, num_layers)

    def forward(self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None = None):  # noqa: D102
        y, state = self.lstm(x.permute(2, 0, 1), state)
        return y.permute(1, 2, 0) + x, state


class SEANetEncoder(nn.Module):
    """Waveform ``[B, 1, L]`` -> latents ``[B, dimension, ceil(L / hop)]``.

    ``front`` (indices 0-12, convolutions only, finite receptive field), ``model[13]`` (LSTM,
    sequential) and ``back`` (indices 14-15) are exposed separately for chunked processing.
    """

    def __init__(self, ratios: Sequence[int] = (8, 5, 4, 2), n_filters: int = 32, dimension: int = 512,
                 lstm_layers: int = 2, kernel_size: int = 7, residual_kernel_size: int = 3):
        super().__init__()
        self.ratios = list(reversed(list(ratios)))  # encoder order
        self.hop = int(math.prod(self.ratios))
        layers: list[nn.Module] = [PaddedConv1d(1, n_filters, kernel_size)]
        mult = 1
        for ratio in self.ratios:
            layers += [
                SEANetResBlock(mult * n_filters, residual_kernel_size),
                nn.ELU(),
                PaddedConv1d(mult * n_filters, 2 * mult * n_filters, 2 * ratio, stride=ratio),
            ]
            mult *= 2
        width = mult * n_filters
        layers += [SkipLSTM(width, lstm_layers), nn.ELU(), PaddedConv1d(width, dimension, kernel_size)]
        self.model = nn.Sequential(*layers)
        self.n_front = len(layers) - 3

    def front(self, wav: torch.Tensor) -> torch.Tensor:
        """Convolutional part: ``[B, 1, L]`` -> ``[B, width, ceil(L / hop)]``."""
        for layer in self.model[: self.n_front]:
            wav = layer(wav)
        return wav

    def lstm(self, x: torch.Tensor, state=None):
        """The LSTM (+ skip) on ``[B, width, T]``; returns ``(y, state)``."""
        return self.model[self.n_front](x, state)

    def back(self, x: torch.Tensor) -> torch.Tensor:
        """ELU + final conv (k7, needs 3 frames of context either side)."""
        return self.model[self.n_front + 2](self.model[self.n_front + 1](x))

    def forward(self, wav: torch.Tensor) -> torch.Tensor:  # noqa: D102
        y, _ = self.lstm(self.front(wav))
        return self.back(y)


def receptive_field(encoder: SEANetEncoder) -> int:
    """Samples one output frame of ``encoder.front`` depends on (kernel spans composed)."""
    span = 1
    convs = [m for m in encoder.model[: encoder.n_front].modules() if isinstance(m, nn.Conv1d)]
    for conv in reversed(convs):
        k = (conv.kernel_size[0] - 1) * conv.dilation[0] + 1
        span = (span - 1) * conv.stride[0] + k
    return span


class Codebook(nn.Module):
    """Nearest-neighbour VQ on a fixed codebook (the EMA/k-means training state is dropped).

    The search and lookup are core's :mod:`zoo.nn.quantize`; this module owns the buffer
    (``embed``) under the checkpoint's name.
    """

    def __init__(self, size: int = 4096, dim: int = 512):
        super().__init__()
        self.register_buffer("embed", torch.zeros(size, dim))

    @property
    def size(self) -> int:
        return self.embed.shape[0]

    def encode(self, z: torch.Tensor) -> torch.Tensor:
        """Latents ``[B, D, T]`` -> ids ``[B, T]`` (int64)."""
        return nearest_code(z.transpose(1, 2), self.embed)

    def decode(self, ids: torch.Tensor) -> torch.Tensor:
        """Ids ``[B, T]`` -> features ``[B, D, T]``."""
        return lookup_codes(ids, self.embed, what="WavTokenizer ids").transpose(1, 2)
