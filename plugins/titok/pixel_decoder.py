"""MaskGIT-VQGAN pixel decoder (bundled in TiTok's legacy checkpoints as ``pixel_decoder.*``).

The legacy TiTok decoder predicts 1024-way proxy-code logits per 16x16 patch; their softmax
mixes the MaskGIT-VQGAN codebook (``pixel_quantize.embedding.weight`` [1024, 256]) into a
latent map that this convolutional decoder turns into RGB in (about) [0, 1].

Layout and key names follow the released weights: ``conv_in``, ``mid.{j}``,
``up.{i}.block.{j}`` / ``up.{i}.upsample_conv`` (``i`` = resolution level, run from the
coarsest), ``norm_out``, ``conv_out``.

Speed, same arithmetic as the reference up to float rounding (parity-tested):
* "same" padding of the 3x3 stride-1 convolutions is the symmetric padding 1, passed to the
  convolution instead of a separate ``F.pad`` copy;
* activations run in channels-last layout (faster oneDNN convolutions on CPU) with in-place
  SiLU and residual adds; the upsampling step writes a tensor with channels-last strides for
  every batch size, so the layout survives to the last layer (with batch 1 a permuted view used
  to fall back to NCHW after the first upsample, which cost ~20% of the decoder's time);
* nearest x2 upsampling followed by a 3x3 convolution is computed as one 2x2 convolution per
  output phase on the low-resolution map (16 instead of 36 multiply-adds per output pixel and
  channel pair), see :func:`upsample_conv`.

Example:
    >>> import torch
    >>> dec = PixelDecoder(hidden_channels=32, channel_mult=(1, 2), num_res_blocks=1, z_channels=8)
    >>> dec(torch.randn(1, 8, 4, 4)).shape
    torch.Size([1, 3, 8, 8])
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["ResnetBlock", "UpsamplingBlock", "PixelDecoder", "upsample_conv"]


def _silu(x: torch.Tensor) -> torch.Tensor:
    """SiLU, in place when no gradient is being recorded."""
    return F.silu(x, inplace=not (torch.is_grad_enabled() and x.requires_grad))


def _add(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``x + y``, written into ``x`` when no gradient is being recorded."""
    return x + y if torch.is_grad_enabled() and (x.requires_grad or y.requires_grad) else x.add_(y)


def _norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(num_groups=32, num_channels=channels, eps=1e-6, affine=True)


# Nearest x2 upsampling then a 3x3 conv (padding 1): output row 2i+a reads input rows i-1+a+r,
# r in {0, 1}; these slices of the 3 kernel rows fall on input row r (same for columns).
_PHASE_TAPS = {0: (slice(0, 1), slice(1, 3)), 1: (slice(0, 2), slice(2, 3))}


def _phase_weights(weight: torch.Tensor) -> torch.Tensor:
    """3x3 kernel [O, I, 3, 3] -> four 2x2 kernels [4*O, I, 2, 2] (phase-major: (0,0), (0,1), ...)."""
    out = []
    for a in (0, 1):
        for b in (0, 1):
            rows = [weight[:, :, taps].sum(2) for taps in _PHASE_TAPS[a]]  # 2 x [O, I, 3]
            out.append(torch.stack([torch.stack([r[..., taps].sum(-1) for taps in _PHASE_TAPS[b]], -1) for r in rows], -2))
    return torch.cat(out, 0)


class _PhaseCache:
    """The phase kernels of one conv, recomputed only when its weights change."""

    def __init__(self):
        self.key, self.value = None, None

    def get(self, conv: nn.Conv2d) -> tuple[torch.Tensor, torch.Tensor | None]:
        w, b = conv.weight, conv.bias
        key = (w.data_ptr(), w._version, w.dtype, w.device, None if b is None else (b.data_ptr(), b._version))
        if torch.is_grad_enabled():  # never hand cached (possibly inference-mode) tensors to autograd
            return _phase_weights(w), None if b is None else b.repeat(4)
        if key != self.key:
            with torch.no_grad():
                self.value = (_phase_weights(w), None if b is None else b.repeat(4))
            self.key = key
        return self.value


def upsample_conv(x: torch.Tensor, conv: nn.Conv2d, cache: _PhaseCache | None = None) -> torch.Tensor:
    """``conv(F.interpolate(x, scale_factor=2, mode="nearest"))`` for a 3x3, padding-1 ``conv``,
    without building the upsampled map.

    Example:
        >>> conv = nn.Conv2d(4, 5, 3, padding=1)
        >>> x = torch.randn(1, 4, 6, 7)
        >>> ref = conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))
        >>> bool(torch.allclose(upsample_conv(x, conv), ref, atol=1e-5))
        True
    """
    b, _, h, w = x.shape
    o = conv.out_channels
    weight, bias = (cache or _PhaseCache()).get(conv)
    y = F.conv2d(x, weight, bias, padding=1)  # [B, 4*O, h+1, w+1]
    y = y.view(b, 2, 2, o, h + 1, w + 1)
    out = torch.empty((b, o, 2 * h, 2 * w), dtype=x.dtype, device=x.device, memory_format=torch.channels_last)
    phases = out.permute(0, 2, 3, 1).view(b, h, 2, w, 2, o).permute(0, 5, 1, 2, 3, 4)  # a view of out
    for a in (0, 1):
        for c in (0, 1):
            phases[:, :, :, a, :, c] = y[:, a, c, :, a : a + h, c : c + w]
    return out  # channels-last strides for every batch size, so the next layers stay channels-last


class ResnetBlock(nn.Module):
    """GroupNorm-SiLU-conv twice, plus a residual.

    When the channel count changes the released model adds ``nin_shortcut`` applied to the
    block's *output* (not to its input) as the residual; zoo keeps that arithmetic because the
    weights were trained with it.
    """

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.norm1 = _norm(in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)
        self.norm2 = _norm(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        if in_channels != out_channels:
            self.nin_shortcut = nn.Conv2d(out_channels, out_channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(_silu(self.norm1(x)))
        h = self.conv2(_silu(self.norm2(h)))
        if self.in_channels != self.out_channels:
            return _add(self.nin_shortcut(h), h)
        return _add(h, x)


class UpsamplingBlock(nn.Module):
    """``num_res_blocks`` ResnetBlocks, then (except at level 0) nearest x2 + 3x3 conv."""

    def __init__(self, in_channels: int, out_channels: int, num_res_blocks: int, upsample: bool):
        super().__init__()
        blocks = []
        for _ in range(num_res_blocks):
            blocks.append(ResnetBlock(in_channels, out_channels))
            in_channels = out_channels
        self.block = nn.ModuleList(blocks)
        self.add_upsample = upsample
        if upsample:
            self.upsample_conv = nn.Conv2d(out_channels, out_channels, 3, padding=1)
            self._phases = _PhaseCache()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.block:
            x = block(x)
        if self.add_upsample:
            x = upsample_conv(x, self.upsample_conv, self._phases)
        return x


class PixelDecoder(nn.Module):
    """Latent map [B, z_channels, h, w] -> RGB [B, 3, h*2^(levels-1), w*2^(levels-1)]."""

    def __init__(
        self,
        hidden_channels: int = 128,
        channel_mult: Sequence[int] = (1, 1, 2, 2, 4),
        num_res_blocks: int = 2,
        z_channels: int = 256,
        out_channels: int = 3,
    ):
        super().__init__()
        mult = [int(m) for m in channel_mult]
        levels = len(mult)
        top = hidden_channels * mult[-1]
        self.conv_in = nn.Conv2d(z_channels, top, 3, padding=1)
        self.mid = nn.ModuleList(ResnetBlock(top, top) for _ in range(num_res_blocks))
        up = []
        for i in range(levels):
            block_in = hidden_channels * (mult[-1] if i == levels - 1 else mult[i + 1])
            up.append(UpsamplingBlock(block_in, hidden_channels * mult[i], num_res_blocks, upsample=i != 0))
        self.up = nn.ModuleList(up)  # index = level; run from the coarsest (last) to level 0
        self.norm_out = _norm(hidden_channels * mult[0])
        self.conv_out = nn.Conv2d(hidden_channels * mult[0], out_channels, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.conv_in(z.contiguous(memory_format=torch.channels_last))
        for block in self.mid:
            x = block(x)
        for block in reversed(self.up):
            x = block(x)
        x = self.conv_out(_silu(self.norm_out(x)))
        return x.contiguous()
