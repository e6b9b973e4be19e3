"""Vocos backbone (pos_net + ConvNeXt with AdaLayerNorm) and the ISTFT head, "same" padding: the
feature-to-waveform head WavTokenizer and Language-Codec share.

Key names follow the official ``backbone.*`` / ``head.*`` layout. Differences from the
reference are in how, not what:

* the ConvNeXt stack runs in ``[B, T, C]`` layout (one transpose per block for the depthwise
  conv, none around the norms) and AdaLayerNorm with a fixed ``bandwidth_id`` becomes a fused
  ``layer_norm(x, weight=scale[id], bias=shift[id])``;
* the pos_net attention is one head of width ``dim`` through :func:`zoo.nn.attention.attention`
  (SDPA by default: no ``T x T`` matrix is kept; queries are processed in blocks so memory
  stays linear in ``T`` on every backend);
* the ISTFT overlap-add is a sum of ``n_fft / hop`` shifted slices instead of ``fold``, and
  the window envelope is computed once per length.

Example:
    >>> import torch
    >>> bb = VocosBackbone(input_channels=8, dim=32, intermediate_dim=48, num_layers=2)
    >>> head = ISTFTHead(dim=32, n_fft=64, hop_length=16)
    >>> head(bb(torch.randn(1, 8, 5))).shape
    torch.Size([1, 80])
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from zoo.errors import InputError

from zoo.nn.attention import attention

__all__ = ["ResnetBlock", "AttnBlock", "AdaLayerNorm", "ConvNeXtBlock", "VocosBackbone", "ISTFTHead", "istft_same", "overlap_add",
           "window_envelope"]

ATTN_QUERY_BLOCK = 4096


def _group_norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(32, channels, eps=1e-6, affine=True)


class ResnetBlock(nn.Module):
    """``x + conv2(silu(gn2(conv1(silu(gn1(x))))))`` on ``[B, C, T]`` (dropout is inference-off)."""

    def __init__(self, channels: int):
        super().__init__()
        self.norm1 = _group_norm(channels)
        self.conv1 = nn.Conv1d(channels, channels, 3, padding=1)
        self.norm2 = _group_norm(channels)
        self.conv2 = nn.Conv1d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        h = self.conv1(F.silu(self.norm1(x)))
        return x + self.conv2(F.silu(self.norm2(h)))


class AttnBlock(nn.Module):
    """Single-head full self-attention over time with 1x1-conv projections, scale ``C^-1/2``."""

    def __init__(self, channels: int):
        super().__init__()
        self.norm = _group_norm(channels)
        self.q = nn.Conv1d(channels, channels, 1)
        self.k = nn.Conv1d(channels, channels, 1)
        self.v = nn.Conv1d(channels, channels, 1)
        self.proj_out = nn.Conv1d(channels, channels, 1)
        self.attn_backend: str | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        h = self.norm(x).transpose(1, 2)  # [B, T, C]
        q = F.linear(h, self.q.weight[..., 0], self.q.bias)[:, None]
        k = F.linear(h, self.k.weight[..., 0], self.k.bias)[:, None]
        v = F.linear(h, self.v.weight[..., 0], self.v.bias)[:, None]
        t = q.shape[2]
        outs = [
            attention(q[:, :, i : i + ATTN_QUERY_BLOCK], k, v, backend=self.attn_backend)
            for i in range(0, t, ATTN_QUERY_BLOCK)
        ]
        o = outs[0] if len(outs) == 1 else torch.cat(outs, dim=2)
        o = F.linear(o[:, 0], self.proj_out.weight[..., 0], self.proj_out.bias)
        return x + o.transpose(1, 2)


class AdaLayerNorm(nn.Module):
    """LayerNorm whose scale/shift are embedding rows chosen by a condition id (``bandwidth_id``)."""

    def __init__(self, num_embeddings: int, dim: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.scale = nn.Embedding(num_embeddings, dim)
        self.shift = nn.Embedding(num_embeddings, dim)

    def forward(self, x: torch.Tensor, cond: int) -> torch.Tensor:  # noqa: D102  x: [..., C]
        return F.layer_norm(x, x.shape[-1:], self.scale.weight[cond], self.shift.weight[cond], self.eps)


class ConvNeXtBlock(nn.Module):
    """Depthwise conv k7 -> AdaLN -> Linear -> GELU -> Linear -> layer scale, residual; ``[B, T, C]``."""

    def __init__(self, dim: int, intermediate_dim: int, adanorm_num_embeddings: int):
        super().__init__()
        self.dwconv = nn.Conv1d(dim, dim, kernel_size=7, padding=3, groups=dim)
        self.norm = AdaLayerNorm(adanorm_num_embeddings, dim)
        self.pwconv1 = nn.Linear(dim, intermediate_dim)
        self.pwconv2 = nn.Linear(intermediate_dim, dim)
        self.gamma = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor, cond: int) -> torch.Tensor:  # noqa: D102
        h = self.dwconv(x.transpose(1, 2)).transpose(1, 2)
        h = self.pwconv2(F.gelu(self.pwconv1(self.norm(h, cond))))
        return x + self.gamma * h


class VocosBackbone(nn.Module):
    """Features ``[B, input_channels, T]`` -> hidden ``[B, T, dim]``.

    ``stem`` (embed + pos_net + AdaLN) has global operations (GroupNorm statistics over the
    whole sequence, full attention) and always sees the whole sequence; ``blocks`` (ConvNeXt +
    final LayerNorm) is local (receptive field ``3 * num_layers`` frames each side) and may be
    run on overlapping time chunks with identical results.
    """

    def __init__(self, input_channels: int = 512, dim: int = 768, intermediate_dim: int = 2304,
                 num_layers: int = 12, adanorm_num_embeddings: int = 4):
        super().__init__()
        self.embed = nn.Conv1d(input_channels, dim, kernel_size=7, padding=3)
        self.pos_net = nn.Sequential(
            ResnetBlock(dim), ResnetBlock(dim), AttnBlock(dim), ResnetBlock(dim), ResnetBlock(dim), _group_norm(dim)
        )
        self.norm = AdaLayerNorm(adanorm_num_embeddings, dim)
        self.convnext = nn.ModuleList(
            [ConvNeXtBlock(dim, intermediate_dim, adanorm_num_embeddings) for _ in range(num_layers)]
        )
        self.final_layer_norm = nn.LayerNorm(dim, eps=1e-6)
        self.bandwidth_id = 0

    @property
    def context(self) -> int:
        """Frames of context each side that ``blocks`` needs for exact chunked results."""
        return 3 * len(self.convnext)

    def stem(self, features: torch.Tensor) -> torch.Tensor:
        """``[B, C_in, T]`` -> ``[B, T, dim]`` (global: run on the whole sequence)."""
        x = self.pos_net(self.embed(features))
        return self.norm(x.transpose(1, 2), self.bandwidth_id)

    def blocks(self, x: torch.Tensor) -> torch.Tensor:
        """ConvNeXt stack + final LayerNorm on ``[B, T, dim]`` (local)."""
        for block in self.convnext:
            x = block(x, self.bandwidth_id)
        return self.final_layer_norm(x)

    def forward(self, features: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return self.blocks(self.stem(features))


class ISTFTHead(nn.Module):
    """Hidden ``[B, T, dim]`` -> waveform ``[B, T * hop]`` via magnitude/phase and a "same" ISTFT."""

    def __init__(self, dim: int = 768, n_fft: int = 1280, hop_length: int = 320):
        super().__init__()
        self.n_fft, self.hop_length = n_fft, hop_length
        self.out = nn.Linear(dim, n_fft + 2)
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)

    def frames(self, x: torch.Tensor) -> torch.Tensor:
        """Windowed time-domain frames ``[B, T, n_fft]`` (before overlap-add), float32 or wider
        even when the model runs in bfloat16/float16 (the spectrum and ISTFT stay float32)."""
        mag, phase = self.out(x).to(self.float_dtype(x)).chunk(2, dim=-1)
        mag = torch.exp(mag).clip(max=1e2)
        spec = torch.complex(mag * torch.cos(phase), mag * torch.sin(phase))
        return torch.fft.irfft(spec, self.n_fft, dim=-1, norm="backward") * self.window_for(spec.real)

    @staticmethod
    def float_dtype(x: torch.Tensor) -> torch.dtype:
        """The ISTFT's dtype: ``x``'s when float32/float64, else float32."""
        return x.dtype if x.dtype in (torch.float32, torch.float64) else torch.float32

    def window_for(self, like: torch.Tensor) -> torch.Tensor:
        """The Hann window in ``like``'s dtype (recomputed exactly if the buffer was cast down)."""
        if self.window.dtype in (torch.float32, torch.float64):
            return self.window.to(like.dtype)
        return torch.hann_window(self.n_fft, dtype=like.dtype, device=like.device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        frames = self.frames(x)
        return istft_same(frames, self.window_for(frames), self.hop_length)


def overlap_add(frames: torch.Tensor, hop: int) -> torch.Tensor:
    """Sum frames ``[B, T, N]`` placed every ``hop`` samples -> ``[B, (T - 1) * hop + N]``."""
    b, t, n = frames.shape
    if n % hop == 0:
        r = n // hop
        out = frames.new_zeros(b, t + r - 1, hop)
        for i in range(r):
            out[:, i : i + t] += frames[:, :, i * hop : (i + 1) * hop]
        return out.reshape(b, -1)
    return F.fold(frames.transpose(1, 2), (1, (t - 1) * hop + n), (1, n), stride=(1, hop))[:, 0, 0]


_ENVELOPES: dict[tuple, torch.Tensor] = {}


def window_envelope(window: torch.Tensor, hop: int, t: int) -> torch.Tensor:
    """Overlap-added squared window for ``t`` frames (cached per size, dtype and device)."""
    key = (window.shape[0], hop, t, window.dtype, window.device)
    env = _ENVELOPES.get(key)
    if env is None:
        env = overlap_add(window.square().expand(1, t, -1), hop)[0]
        if len(_ENVELOPES) > 64:
            _ENVELOPES.clear()
        _ENVELOPES[key] = env
    return env


def istft_same(frames: torch.Tensor, window: torch.Tensor, hop: int) -> torch.Tensor:
    """Overlap-add windowed frames and normalise by the window envelope, trimming
    ``(n_fft - hop) / 2`` samples each side ("same" padding): ``T`` frames -> ``T * hop`` samples."""
    n = window.shape[0]
    pad = (n - hop) // 2
    t = frames.shape[1]
    y = overlap_add(frames, hop)[:, pad:-pad]
    env = window_envelope(window, hop, t)[pad:-pad]
    if not bool((env > 1e-11).all()):
        raise InputError("ISTFT window envelope has zeros (NOLA violated); n_fft/hop do not fit")
    return y / env
