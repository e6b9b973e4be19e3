"""SEANet encoder and decoder (EnCodec layout), shared by WavTokenizer, SpeechTokenizer and DM-Codec.

Weight norm is folded at load time (:mod:`zoo.nn.weight_norm`), so the convolutions are plain
``Conv1d`` / ``ConvTranspose1d`` layers. Layer indices follow the official ``model.N`` numbering
so converters are renames (``model.N.conv.conv.weight`` -> ``model.N.weight``). Encoder, with
one residual layer per stage (``n_residual_layers=1``)::

    0 conv(1->F, k7) | [resblock, ELU, down conv(k=2r, stride r)] x len(ratios) | LSTM | ELU | conv(k7)

Every convolution is "same"-padded by reflection, with extra right padding so the last window is
full: ``L`` samples give ``ceil(L / hop)`` frames. The decoder mirrors it (conv, LSTM,
[ELU, transposed conv, resblocks] x len(ratios), ELU, conv), trimming ``k - stride`` samples of
each transposed conv right-light (EnCodec's non-causal rule). ``bidirectional=True`` (SpeechTokenizer's
encoder) makes the LSTM bidirectional, the skip adds the input to both directions, and the last
conv takes twice the width.

Example:
    >>> import torch
    >>> enc = SEANetEncoder(ratios=[8, 5, 4, 2], n_filters=4, dimension=8)
    >>> enc(torch.zeros(1, 1, 700)).shape
    torch.Size([1, 8, 3])
    >>> dec = SEANetDecoder(ratios=[8, 5, 4, 2], n_filters=4, dimension=8)
    >>> dec(torch.zeros(1, 8, 3)).shape
    torch.Size([1, 1, 960])
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from zoo.nn.snake import Snake1d

__all__ = ["activation", "lstm_in_chunks", "PaddedConv1d", "PaddedConvTranspose1d", "SEANetResBlock", "SEANetEncoder", "SEANetDecoder", "SkipLSTM",
           "receptive_field"]


def activation(name: str, channels: int) -> nn.Module:
    """``"ELU"`` (alpha 1) or ``"Snake"`` (one ``alpha`` per channel), the releases' two choices."""
    if name == "ELU":
        return nn.ELU()
    if name == "Snake":
        return Snake1d(channels)
    raise ValueError(f"SEANet activation must be 'ELU' or 'Snake', got {name!r}")


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


class PaddedConvTranspose1d(nn.ConvTranspose1d):
    """ConvTranspose1d trimmed by ``k - stride`` samples (``k - stride - (k - stride) // 2`` on the left):
    ``T`` frames give ``T * stride`` samples."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        y = F.conv_transpose1d(x, self.weight, self.bias, self.stride, 0, 0, self.groups, self.dilation)
        total = self.kernel_size[0] - self.stride[0]
        right = total // 2
        left = total - right
        return y[..., left : y.shape[-1] - right]


class SEANetResBlock(nn.Module):
    """``shortcut(x) + conv1x1(elu(conv_k(elu(x))))`` with a 1x1-conv shortcut (true_skip=False)."""

    def __init__(self, dim: int, kernel_size: int = 3, dilation: int = 1, compress: int = 2, act: str = "ELU"):
        super().__init__()
        hidden = dim // compress
        self.block = nn.Sequential(
            activation(act, dim),
            PaddedConv1d(dim, hidden, kernel_size, dilation=dilation),
            activation(act, hidden),
            PaddedConv1d(hidden, dim, 1),
        )
        self.shortcut = PaddedConv1d(dim, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``shortcut(x) + conv1x1(h)`` as one 1x1 conv over ``[x; h]`` (same sum, one pass)."""
        h = self.block[2](self.block[1](self.block[0](x)))
        last, short = self.block[3], self.shortcut
        weight = torch.cat([short.weight, last.weight], dim=1)
        return F.conv1d(torch.cat([x, h], dim=1), weight, short.bias + last.bias)


def lstm_in_chunks(lstm: nn.LSTM, x: torch.Tensor, chunk: int) -> torch.Tensor:
    """``lstm(x)[0]`` for ``x`` ``[T, B, C]`` (zero initial state, eval), ``chunk`` steps at a time.

    Layer by layer: the forward direction runs over the chunks in order carrying its ``(h, c)``,
    the backward direction over the chunks in reverse order carrying its own, each writing its
    half of the layer's output ``[T, B, D * H]``, the next layer's input. The recurrences are the
    one-call ones, so the result equals ``lstm(x)[0]`` up to float rounding; what is held is the
    input and one output per layer (a bidirectional layer cannot emit frame 0 before it has seen
    frame ``T - 1``), while the input-gate projections torch computes for a whole call (``4 H``
    per step and direction) only ever exist for one chunk.

    Example:
        >>> _ = torch.manual_seed(0); lstm = nn.LSTM(4, 4, 2, bidirectional=True).eval()
        >>> x = torch.randn(30, 1, 4)
        >>> with torch.no_grad():
        ...     print(torch.allclose(lstm_in_chunks(lstm, x, 7), lstm(x)[0], atol=1e-6))
        True
    """
    if lstm.batch_first or lstm.proj_size:
        raise ValueError("lstm_in_chunks takes a sequence-first LSTM without projections")
    steps, batch, _ = x.shape
    hidden, dirs = lstm.hidden_size, 2 if lstm.bidirectional else 1
    starts = list(range(0, steps, max(1, int(chunk))))
    inp = x
    for layer in range(lstm.num_layers):
        out = x.new_empty(steps, batch, dirs * hidden)
        for d in range(dirs):
            sfx = f"_l{layer}" + ("_reverse" if d else "")
            params = [getattr(lstm, f"{w}{sfx}") for w in (("weight_ih", "weight_hh", "bias_ih", "bias_hh") if lstm.bias
                                                           else ("weight_ih", "weight_hh"))]
            zero = x.new_zeros(1, batch, hidden)
            state = (zero, zero)
            for t0 in reversed(starts) if d else starts:
                seg = inp[t0 : t0 + chunk]
                y, h, c = torch.lstm(seg.flip(0) if d else seg, state, params, lstm.bias, 1, 0.0, False, False, False)
                state = (h, c)
                out[t0 : t0 + chunk, :, d * hidden : (d + 1) * hidden] = y.flip(0) if d else y
        inp = out
    return inp


class SkipLSTM(nn.Module):
    """``lstm(x) + x`` on ``[B, C, T]`` (``x`` repeated for both directions when bidirectional);
    ``state`` carries (h, c) across chunks of one stream."""

    def __init__(self, dim: int, num_layers: int = 2, bidirectional: bool = False):
        super().__init__()
        self.bidirectional = bidirectional
        self.lstm = nn.LSTM(dim, dim, num_layers, bidirectional=bidirectional)

    def forward(self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None = None):  # noqa: D102
        y, state = self.lstm(x.permute(2, 0, 1), state)
        y = y.permute(1, 2, 0)
        return y + (x.repeat(1, 2, 1) if self.bidirectional else x), state

    def chunked(self, x: torch.Tensor, chunk: int) -> torch.Tensor:
        """``forward(x)[0]`` on a whole ``[B, C, T]`` sequence via :func:`lstm_in_chunks` (the
        bounded-memory path for a bidirectional LSTM), the skip added in place."""
        xt = x.permute(2, 0, 1)
        y = lstm_in_chunks(self.lstm, xt, chunk)
        for d in range(2 if self.bidirectional else 1):
            y[..., d * x.shape[1] : (d + 1) * x.shape[1]] += xt
        return y.permute(1, 2, 0)


def _res_blocks(dim: int, n: int, kernel: int, dilation_base: int, compress: int, act: str) -> list[nn.Module]:
    return [SEANetResBlock(dim, kernel, dilation_base**j, compress, act) for j in range(n)]


class SEANetEncoder(nn.Module):
    """Waveform ``[B, 1, L]`` -> latents ``[B, dimension, ceil(L / hop)]``.

    ``front`` (the convolutions before the LSTM, finite receptive field), ``lstm`` (sequential)
    and ``back`` (ELU + last conv) are exposed separately for chunked processing.
    """

    def __init__(self, ratios: Sequence[int] = (8, 5, 4, 2), n_filters: int = 32, dimension: int = 512,
                 lstm_layers: int = 2, kernel_size: int = 7, residual_kernel_size: int = 3, *,
                 n_residual_layers: int = 1, dilation_base: int = 2, compress: int = 2, bidirectional: bool = False,
                 last_kernel_size: int = 7, act: str = "ELU"):
        super().__init__()
        self.ratios = list(reversed(list(ratios)))  # encoder order
        self.hop = int(math.prod(self.ratios))
        layers: list[nn.Module] = [PaddedConv1d(1, n_filters, kernel_size)]
        mult = 1
        for ratio in self.ratios:
            layers += _res_blocks(mult * n_filters, n_residual_layers, residual_kernel_size, dilation_base, compress, act)
            layers += [activation(act, mult * n_filters), PaddedConv1d(mult * n_filters, 2 * mult * n_filters, 2 * ratio, stride=ratio)]
            mult *= 2
        width = mult * n_filters
        out_width = 2 * width if bidirectional else width
        layers += [SkipLSTM(width, lstm_layers, bidirectional), activation(act, out_width),
                   PaddedConv1d(out_width, dimension, last_kernel_size)]
        self.model = nn.Sequential(*layers)
        self.n_front = len(layers) - 3

    def front(self, wav: torch.Tensor) -> torch.Tensor:
        """Convolutional part: ``[B, 1, L]`` -> ``[B, width, ceil(L / hop)]``."""
        for layer in self.model[: self.n_front]:
            wav = layer(wav)
        return wav

    def lstm(self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None = None):
        """The LSTM (+ skip) on ``[B, width, T]``; returns ``(y, state)``."""
        return self.model[self.n_front](x, state)

    def back(self, x: torch.Tensor) -> torch.Tensor:
        """ELU + final conv (k7, needs 3 frames of context either side)."""
        return self.model[self.n_front + 2](self.model[self.n_front + 1](x))

    def forward(self, wav: torch.Tensor) -> torch.Tensor:  # noqa: D102
        y, _ = self.lstm(self.front(wav))
        return self.back(y)


class SEANetDecoder(nn.Module):
    """Latents ``[B, dimension, T]`` -> waveform ``[B, 1, T * hop]`` (no final activation).

    ``head`` (first conv), ``lstm`` (sequential, unidirectional) and ``tail`` (the upsampling
    convolutions, finite receptive field) are exposed separately for chunked decoding.
    """

    def __init__(self, ratios: Sequence[int] = (8, 5, 4, 2), n_filters: int = 32, dimension: int = 512,
                 lstm_layers: int = 2, kernel_size: int = 7, residual_kernel_size: int = 3, *,
                 n_residual_layers: int = 1, dilation_base: int = 2, compress: int = 2, last_kernel_size: int = 7,
                 act: str = "ELU"):
        super().__init__()
        self.ratios = list(ratios)
        self.hop = int(math.prod(self.ratios))
        mult = 2 ** len(self.ratios)
        layers: list[nn.Module] = [PaddedConv1d(dimension, mult * n_filters, kernel_size), SkipLSTM(mult * n_filters, lstm_layers)]
        for ratio in self.ratios:
            layers += [activation(act, mult * n_filters),
                       PaddedConvTranspose1d(mult * n_filters, mult * n_filters // 2, 2 * ratio, stride=ratio)]
            layers += _res_blocks(mult * n_filters // 2, n_residual_layers, residual_kernel_size, dilation_base, compress, act)
            mult //= 2
        layers += [activation(act, n_filters), PaddedConv1d(n_filters, 1, last_kernel_size)]
        self.model = nn.Sequential(*layers)

    def head(self, z: torch.Tensor) -> torch.Tensor:
        """First conv (k7, 3 frames of context either side)."""
        return self.model[0](z)

    def lstm(self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None = None):
        """The LSTM (+ skip); returns ``(y, state)``."""
        return self.model[1](x, state)

    def tail(self, x: torch.Tensor) -> torch.Tensor:
        """Upsampling convolutions: ``[B, width, T]`` -> ``[B, 1, T * hop]``."""
        for layer in self.model[2:]:
            x = layer(x)
        return x

    def forward(self, z: torch.Tensor) -> torch.Tensor:  # noqa: D102
        y, _ = self.lstm(self.head(z))
        return self.tail(y)


def receptive_field(encoder: SEANetEncoder) -> int:
    """Samples one output frame of ``encoder.front`` depends on (kernel spans composed)."""
    span = 1
    convs = [m for m in encoder.model[: encoder.n_front].modules() if isinstance(m, nn.Conv1d)]
    for conv in reversed(convs):
        k = (conv.kernel_size[0] - 1) * conv.dilation[0] + 1
        span = (span - 1) * conv.stride[0] + k
    return span
