"""Open-MAGVIT2-variant convolutional encoder/decoder blocks (used by WeTok and GigaTok).

The variant differs from the taming/LDM conv autoencoder in four places, each a block here:

* :class:`ResBlock` -- GroupNorm(32) -> SiLU -> 3x3 conv *without bias*, twice; a 1x1 bias-free
  ``nin_shortcut`` when the width changes; no attention anywhere;
* :class:`AdaptiveGroupNorm` -- affine-free GroupNorm whose scale and shift are linear maps of the
  per-channel standard deviation (unbiased variance + eps, then sqrt) and mean of the quantised
  latent over space (the decoder's "style");
* :func:`depth_to_space` / :class:`DepthToSpaceUpsample` -- 3x3 conv to 4x the channels, then
  depth-to-space in DCR order (channel ``(i*2 + j) * C + c`` goes to pixel offset ``(i, j)`` of
  output channel ``c``; *not* :func:`torch.nn.functional.pixel_shuffle`'s CRD order);
* downsampling by a strided 3x3 conv with symmetric padding 1 (``down.i.downsample`` is the conv).

:class:`Encoder` and :class:`Decoder` assemble them with ``ch``, ``ch_mult``, ``num_res_blocks``
and ``z_channels`` as config. Parameter names follow the reference modules
(``down.{i}.block.{j}.conv1``, ``mid_block.{j}``, ``adaptive.{i}.gamma``, ``up.{i}.upsample.conv1``),
so the official state dicts load without renaming. ``Decoder(noise_input=True)`` is the
"generative decoder" (WeTok's ``GANDecoder``): Gaussian noise shaped like the latent is
concatenated before ``conv_in``, drawn from the caller's :class:`torch.Generator`.

Example:
    >>> cfg = ConvConfig(ch=32, ch_mult=(1, 2), num_res_blocks=1, z_channels=8)
    >>> enc, dec = Encoder(cfg), Decoder(cfg)
    >>> z = enc(torch.randn(1, 3, 16, 16))
    >>> tuple(z.shape), tuple(dec(z).shape)
    ((1, 8, 8, 8), (1, 3, 16, 16))
    >>> depth_to_space(torch.arange(8.).view(1, 8, 1, 1), 2)[0, 1].tolist()
    [[1.0, 3.0], [5.0, 7.0]]
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["AdaptiveGroupNorm", "ConvConfig", "Decoder", "DepthToSpaceUpsample", "Encoder", "ResBlock",
           "depth_to_space"]


@dataclass(frozen=True)
class ConvConfig:
    """Widths and depths of an Open-MAGVIT2 conv encoder/decoder (the reference's ``ddconfig``).

    ``ch * ch_mult[i]`` channels at level ``i``; ``len(ch_mult) - 1`` down/upsamplings (factor
    ``2 ** (len(ch_mult) - 1)``); ``num_res_blocks`` ResBlocks per level and in the middle.
    """

    ch: int = 128
    ch_mult: tuple[int, ...] = (1, 2, 2, 4)
    num_res_blocks: int = 2
    z_channels: int = 18
    in_channels: int = 3
    out_ch: int = 3

    @property
    def downsample_factor(self) -> int:
        return 2 ** (len(self.ch_mult) - 1)


def depth_to_space(x: torch.Tensor, block_size: int) -> torch.Tensor:
    """``[B, C * s * s, H, W] -> [B, C, H * s, W * s]`` in DCR order (see the module docstring)."""
    b, c, h, w = x.shape
    s = int(block_size)
    if c % (s * s):
        raise ValueError(f"depth_to_space needs channels divisible by {s * s}, got {c}")
    x = x.view(b, s, s, c // (s * s), h, w).permute(0, 3, 4, 1, 5, 2)
    return x.reshape(b, c // (s * s), h * s, w * s)


def _group_norm(channels: int, affine: bool = True) -> nn.GroupNorm:
    return nn.GroupNorm(32, channels, eps=1e-6, affine=affine)


class ResBlock(nn.Module):
    """Pre-norm residual block: ``x + conv2(silu(gn2(conv1(silu(gn1(x))))))`` (bias-free convs)."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.norm1 = _group_norm(in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)
        self.norm2 = _group_norm(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        if in_channels != out_channels:
            self.nin_shortcut = nn.Conv2d(in_channels, out_channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        inplace = not torch.is_grad_enabled()  # inference: SiLU and the residual add in place
        # each step rebinds ``h`` so the previous activation is freed before the next conv runs:
        # at most three full-size tensors live at once (the reference holds four)
        h = F.silu(self.norm1(x), inplace=inplace)
        h = self.conv1(h)
        h = F.silu(self.norm2(h), inplace=inplace)
        h = self.conv2(h)
        shortcut = getattr(self, "nin_shortcut", None)
        skip = shortcut(x) if shortcut is not None else x
        return h.add_(skip) if inplace else h + skip


class AdaptiveGroupNorm(nn.Module):
    """GroupNorm(32, affine=False) modulated by the spatial statistics of a style latent.

    ``y = gamma(std(style)) * gn(x) + beta(mean(style))`` with ``std = sqrt(var_unbiased + eps)``
    over the style's spatial positions, per channel. ``conditional = True`` marks it for the
    ``norm=`` hook of :mod:`zoo.nn.conv_ae` (called as ``norm(x, cond)``).
    """

    conditional = True

    def __init__(self, style_channels: int, channels: int, eps: float = 1e-6):
        super().__init__()
        self.gn = nn.GroupNorm(32, channels, eps=eps, affine=False)
        self.gamma = nn.Linear(style_channels, channels)
        self.beta = nn.Linear(style_channels, channels)
        self.eps = eps

    @staticmethod
    def style_stats(style: torch.Tensor, eps: float = 1e-6) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-channel ``(std, mean)`` of ``style`` ``[B, C, H, W]`` over ``H*W`` -> two ``[B, C]``."""
        flat = style.flatten(2)
        var, mean = torch.var_mean(flat, dim=-1)
        return (var + eps).sqrt(), mean

    def forward(self, x: torch.Tensor, style: torch.Tensor | tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        std, mean = style if isinstance(style, tuple) else self.style_stats(style, self.eps)
        scale = self.gamma(std)[:, :, None, None]
        shift = self.beta(mean)[:, :, None, None]
        if torch.is_grad_enabled():
            return torch.addcmul(shift, self.gn(x), scale)
        return self.gn(x).mul_(scale).add_(shift)  # inference: no second full-size tensor


class DepthToSpaceUpsample(nn.Module):
    """``conv1`` (3x3, ``C -> 4C``) then :func:`depth_to_space` by 2: doubles H and W."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels * 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return depth_to_space(self.conv1(x), 2)


class Encoder(nn.Module):
    """Images ``[B, in_channels, H, W]`` -> latents ``[B, z_channels, H/f, W/f]``."""

    def __init__(self, cfg: ConvConfig):
        super().__init__()
        ch, mult, n = cfg.ch, tuple(cfg.ch_mult), cfg.num_res_blocks
        self.conv_in = nn.Conv2d(cfg.in_channels, ch, 3, padding=1, bias=False)
        self.down = nn.ModuleList()
        block_in = ch
        for i, m in enumerate(mult):
            level = nn.Module()
            level.block = nn.ModuleList()
            for _ in range(n):
                level.block.append(ResBlock(block_in, ch * m))
                block_in = ch * m
            if i < len(mult) - 1:
                level.downsample = nn.Conv2d(block_in, block_in, 3, stride=2, padding=1)
            self.down.append(level)
        self.mid_block = nn.ModuleList(ResBlock(block_in, block_in) for _ in range(n))
        self.norm_out = _group_norm(block_in)
        self.conv_out = nn.Conv2d(block_in, cfg.z_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv_in(x)
        for level in self.down:
            for block in level.block:
                x = block(x)
            if hasattr(level, "downsample"):
                x = level.downsample(x)
        for block in self.mid_block:
            x = block(x)
        return self.conv_out(F.silu(self.norm_out(x), inplace=not torch.is_grad_enabled()))


class Decoder(nn.Module):
    """Latents ``[B, z_channels, h, w]`` -> images ``[B, out_ch, h*f, w*f]`` (not clamped).

    Each level starts with an :class:`AdaptiveGroupNorm` conditioned on the decoder's input
    latent. With ``noise_input`` (generative decoder) ``conv_in`` takes ``[z | noise]``.
    """

    def __init__(self, cfg: ConvConfig, noise_input: bool = False):
        super().__init__()
        ch, mult, n = cfg.ch, tuple(cfg.ch_mult), cfg.num_res_blocks
        self.noise_input = bool(noise_input)
        block_in = ch * mult[-1]
        self.conv_in = nn.Conv2d(cfg.z_channels * (2 if noise_input else 1), block_in, 3, padding=1)
        self.mid_block = nn.ModuleList(ResBlock(block_in, block_in) for _ in range(n))
        adaptive: list[AdaptiveGroupNorm] = []
        up: list[nn.Module] = []
        for i in reversed(range(len(mult))):
            adaptive.insert(0, AdaptiveGroupNorm(cfg.z_channels, block_in))
            level = nn.Module()
            level.block = nn.ModuleList()
            for _ in range(n):
                level.block.append(ResBlock(block_in, ch * mult[i]))
                block_in = ch * mult[i]
            if i > 0:
                level.upsample = DepthToSpaceUpsample(block_in)
            up.insert(0, level)
        self.adaptive = nn.ModuleList(adaptive)
        self.up = nn.ModuleList(up)
        self.norm_out = _group_norm(block_in)
        self.conv_out = nn.Conv2d(block_in, cfg.out_ch, 3, padding=1)

    def forward(self, z: torch.Tensor, noise: torch.Tensor | None = None,
                generator: torch.Generator | None = None) -> torch.Tensor:
        """Decode ``z``; the generative decoder takes ``noise`` (shaped like ``z``) or draws it
        from ``generator`` (``torch.randn``)."""
        stats = AdaptiveGroupNorm.style_stats(z, self.adaptive[0].eps)
        x = z
        if self.noise_input:
            if noise is None:
                noise = torch.randn(z.shape, generator=generator, device=z.device, dtype=z.dtype)
            x = torch.cat([z, noise.to(z)], dim=1)
        x = self.conv_in(x)
        for block in self.mid_block:
            x = block(x)
        for i in reversed(range(len(self.up))):
            x = self.adaptive[i](x, stats)
            for block in self.up[i].block:
                x = block(x)
            if i > 0:
                x = self.up[i].upsample(x)
        return self.conv_out(F.silu(self.norm_out(x), inplace=not torch.is_grad_enabled()))
