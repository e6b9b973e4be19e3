"""SNAC's encoder and decoder (module names as in the release, weight norm folded at load).

Layout (``encoder.block`` / ``decoder.model`` indices match the official state dict):

* encoder: conv k7 | EncoderBlock x len(rates) (3 dilated residual units, Snake, strided conv)
  | LocalMHA (when ``attn_window_size``) | depthwise conv k7;
* decoder: depthwise conv k7 + 1x1 conv (or one conv k7) | LocalMHA | DecoderBlock x len(rates)
  (Snake, transposed conv, NoiseBlock, 3 residual units) | Snake | conv k7 | tanh.

Differences from the reference are in how, not what: ``NoiseBlock`` takes its noise as an
argument (drawn by the caller from a ``torch.Generator``, so decoding never touches the global
RNG) and the local attention builds its rotary tables once per window size.

Example:
    >>> import torch
    >>> enc = Encoder(8, [2, 2], depthwise=True, attn_window_size=None)
    >>> enc(torch.zeros(1, 1, 16)).shape
    torch.Size([1, 32, 4])
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from zoo.nn.snake import Snake1d

__all__ = ["Encoder", "Decoder", "LocalMHA", "ResidualUnit", "EncoderBlock", "DecoderBlock", "NoiseBlock"]


class SinusoidalEmbeddings(nn.Module):
    """Holds ``inv_freq`` (a persistent buffer in the release) for the rotary embedding."""

    def __init__(self, dim: int):
        super().__init__()
        self.register_buffer("inv_freq", 1.0 / (10000 ** (torch.arange(0, dim, 2).float() / dim)))

    def tables(self, n: int, device: torch.device, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """``cos`` and ``sin`` ``[n, dim]`` for positions ``0..n-1`` (halves layout)."""
        t = torch.arange(n, device=device).type_as(self.inv_freq)
        freqs = torch.outer(t, self.inv_freq)
        freqs = torch.cat((freqs, freqs), dim=-1)
        return freqs.cos().to(dtype), freqs.sin().to(dtype)


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


class LocalMHA(nn.Module):
    """Pre-LN multi-head self-attention inside fixed, non-overlapping windows of ``window_size``
    frames (positions restart at 0 in every window, rotary on q and k), plus the residual."""

    def __init__(self, dim: int, window_size: int, dim_head: int = 64):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.heads = dim // dim_head
        self.window_size = window_size
        self.to_qkv = nn.Linear(dim, dim * 3, bias=False)
        self.rel_pos = SinusoidalEmbeddings(dim_head)
        self.to_out = nn.Linear(dim, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        b, c, t = x.shape
        w, n, h = t // self.window_size, self.window_size, self.heads
        qkv = self.to_qkv(self.norm(x.transpose(1, 2)))
        qkv = qkv.view(b, w, n, 3, h, c // h).permute(3, 0, 4, 1, 2, 5)  # [3, B, H, W, N, D]
        q, k, v = qkv.unbind(0)
        cos, sin = self.rel_pos.tables(n, x.device, q.dtype)
        q = q * cos + _rotate_half(q) * sin
        k = k * cos + _rotate_half(k) * sin
        out = F.scaled_dot_product_attention(q, k, v)  # [B, H, W, N, D]
        out = out.permute(0, 2, 3, 1, 4).reshape(b, t, c)
        return self.to_out(out).transpose(1, 2) + x


class ResidualUnit(nn.Module):
    """``x + conv1x1(snake(conv_k7_dil(snake(x))))`` ("same" length)."""

    def __init__(self, dim: int, dilation: int = 1, kernel: int = 7, groups: int = 1):
        super().__init__()
        pad = ((kernel - 1) * dilation) // 2
        self.block = nn.Sequential(
            Snake1d(dim),
            nn.Conv1d(dim, dim, kernel, dilation=dilation, padding=pad, groups=groups),
            Snake1d(dim),
            nn.Conv1d(dim, dim, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        y = self.block(x)
        pad = (x.shape[-1] - y.shape[-1]) // 2
        if pad > 0:
            x = x[..., pad:-pad]
        return y.add_(x) if not torch.is_grad_enabled() else x + y  # y is a fresh buffer: add in place at inference


class EncoderBlock(nn.Module):
    """Three residual units (dilations 1, 3, 9), Snake, strided conv (k = 2 * stride)."""

    def __init__(self, output_dim: int, stride: int, groups: int = 1):
        super().__init__()
        input_dim = output_dim // 2
        self.block = nn.Sequential(
            ResidualUnit(input_dim, 1, groups=groups),
            ResidualUnit(input_dim, 3, groups=groups),
            ResidualUnit(input_dim, 9, groups=groups),
            Snake1d(input_dim),
            nn.Conv1d(input_dim, output_dim, 2 * stride, stride=stride, padding=math.ceil(stride / 2)),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return self.block(x)


class NoiseBlock(nn.Module):
    """``x + noise * conv1x1(x)`` with ``noise`` ``[B, 1, T]`` given by the caller."""

    def __init__(self, dim: int):
        super().__init__()
        self.linear = nn.Conv1d(dim, dim, 1, bias=False)

    def forward(self, x: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:  # noqa: D102
        h = self.linear(x)
        return h.mul_(noise).add_(x) if not torch.is_grad_enabled() else x + noise * h


class DecoderBlock(nn.Module):
    """Snake, transposed conv (k = 2 * stride), optional NoiseBlock, three residual units."""

    def __init__(self, input_dim: int, output_dim: int, stride: int, noise: bool, groups: int = 1):
        super().__init__()
        layers: list[nn.Module] = [
            Snake1d(input_dim),
            nn.ConvTranspose1d(input_dim, output_dim, 2 * stride, stride=stride, padding=math.ceil(stride / 2),
                               output_padding=stride % 2),
        ]
        self.has_noise = noise
        if noise:
            layers.append(NoiseBlock(output_dim))
        layers += [ResidualUnit(output_dim, 1, groups=groups), ResidualUnit(output_dim, 3, groups=groups),
                   ResidualUnit(output_dim, 9, groups=groups)]
        self.block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:  # noqa: D102
        x = self.block[1](self.block[0](x))
        rest = 2
        if self.has_noise:
            if noise is None:
                raise ValueError("DecoderBlock with noise needs its noise tensor")
            x = self.block[2](x, noise)
            rest = 3
        for layer in self.block[rest:]:
            x = layer(x)
        return x


class Encoder(nn.Module):
    """Waveform ``[B, 1, L]`` -> latents ``[B, d_model * 2**len(strides), L / prod(strides)]``."""

    def __init__(self, d_model: int, strides: Sequence[int], depthwise: bool = False, attn_window_size: int | None = 32):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv1d(1, d_model, 7, padding=3)]
        for stride in strides:
            d_model *= 2
            layers.append(EncoderBlock(d_model, stride, groups=d_model // 2 if depthwise else 1))
        if attn_window_size is not None:
            layers.append(LocalMHA(d_model, attn_window_size))
        layers.append(nn.Conv1d(d_model, d_model, 7, padding=3, groups=d_model if depthwise else 1))
        self.block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return self.block(x)


class Decoder(nn.Module):
    """Latents ``[B, D, T]`` -> waveform ``[B, 1, T * prod(rates)]`` in ``[-1, 1]``.

    ``noise`` is one ``[B, 1, T_i]`` tensor per DecoderBlock (``T_i`` its output length), as
    :meth:`noise_shapes` lists them; ``None`` for a model built with ``noise=False``."""

    def __init__(self, input_channel: int, channels: int, rates: Sequence[int], noise: bool = False,
                 depthwise: bool = False, attn_window_size: int | None = 32, d_out: int = 1):
        super().__init__()
        if depthwise:
            layers: list[nn.Module] = [nn.Conv1d(input_channel, input_channel, 7, padding=3, groups=input_channel),
                                       nn.Conv1d(input_channel, channels, 1)]
        else:
            layers = [nn.Conv1d(input_channel, channels, 7, padding=3)]
        if attn_window_size is not None:
            layers.append(LocalMHA(channels, attn_window_size))
        output_dim = channels
        for i, stride in enumerate(rates):
            input_dim, output_dim = channels // 2**i, channels // 2 ** (i + 1)
            layers.append(DecoderBlock(input_dim, output_dim, stride, noise, groups=output_dim if depthwise else 1))
        layers += [Snake1d(output_dim), nn.Conv1d(output_dim, d_out, 7, padding=3), nn.Tanh()]
        self.model = nn.Sequential(*layers)
        self.rates = list(rates)
        self.noise = noise

    def noise_shapes(self, batch: int, frames: int) -> list[tuple[int, int, int]]:
        """Shapes of the noise each DecoderBlock draws for ``frames`` latent frames, in order."""
        if not self.noise:
            return []
        shapes, t = [], frames
        for r in self.rates:
            t *= r
            shapes.append((batch, 1, t))
        return shapes

    def forward(self, x: torch.Tensor, noise: Sequence[torch.Tensor] | None = None) -> torch.Tensor:  # noqa: D102
        i = 0
        for layer in self.model:
            if isinstance(layer, DecoderBlock):
                x = layer(x, noise[i] if noise is not None and self.noise else None)
                i += 1
            else:
                x = layer(x)
        return x
