"""Factorised space-time transformer blocks (the C-ViViT / Phenaki / OmniTokenizer family).

A video's patch grid ``[B, T, H, W, D]`` is processed by a *spatial* transformer over each frame
(``(B T) (H W) D``: full attention, or Swin-style window attention with a relative position bias
table) and a *temporal* transformer over each position (``(B H W) T D``: optionally causal, so the
first frame is encoded like an image). Every block starts with a PEG (a depthwise 3x3x3
convolution, causal in time when asked) and ends with a GEGLU feed-forward.

Parameter names and layouts are those of ``FoundationVision/OmniTokenizer``
``modules/attention.py`` (``layers.{i}.0`` PEG ``dsconv``, ``layers.{i}.1`` attention,
``layers.{i}.3`` feed-forward, ``norm_out.gamma`` / ``norm_out.beta``), so its checkpoints load
unchanged. Behaviour follows the reference as it runs on torch >= 2.1 (the torch 2.2 it was
trained with): attention is cosine-similarity attention (l2-normalised q and k times learned
``q_scale`` / ``k_scale``, scale 8); on that path the reference computes its continuous
position bias and its ALiBi bias but never adds them (its SDPA call drops them), so zoo keeps
their parameters for a strict load and does not compute them. The PEG reshapes a temporal
sequence ``(B H W) T D`` with the *spatial* shape ``(B, T, H, W)`` exactly as the reference does
(its "TO FIX" note): the weights were trained with that layout, which also lets later frames
reach earlier ones through the PEG, so a "causal" temporal stack with a PEG is not strictly
causal. Attention normalises only the queries' input (keys and values are projected from the
raw input), as the reference does.

Attention runs through :func:`zoo.nn.attention.attention` (``causal`` -> :class:`~zoo.nn.masks.CausalMask`,
the window bias -> :class:`~zoo.nn.masks.AdditiveBias`). 2-D rotary embeddings
(``spatial_pos="rope"``) follow the reference's ``precompute_freqs_cis_2d`` / ``apply_rotary_emb``:
x and y rotations alternate per frequency (channel pairs ``x0 y0 x1 y1 ...``), a different layout
from the EVA-02 one of :mod:`zoo.nn.rope2d` (rows in the first half, columns in the second).

Example:
    >>> import torch
    >>> spatial = SpaceTimeTransformer(32, depth=2, block="tw", dim_head=8, heads=4, peg=True, window_size=2)
    >>> temporal = SpaceTimeTransformer(32, depth=1, block="t", dim_head=8, heads=4, peg=True, peg_causal=True, causal=True)
    >>> x = torch.randn(2, 3, 4, 4, 32)                                       # [B, T, H, W, D]
    >>> y = spatial(x.reshape(6, 16, 32), video_shape=(2, 3, 4, 4))           # per frame
    >>> y = y.reshape(2, 3, 4, 4, 32).permute(0, 2, 3, 1, 4).reshape(32, 3, 32)
    >>> temporal(y, video_shape=(2, 3, 4, 4), is_spatial=False).shape          # per position, causal in time
    torch.Size([32, 3, 32])
"""

from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from zoo.errors import ConfigError, InputError
from zoo.nn.attention import attention
from zoo.nn.masks import AdditiveBias, CausalMask

__all__ = [
    "GammaLayerNorm", "PEG", "CosineAttention", "WindowAttention", "SpaceTimeTransformer", "feed_forward",
    "rope_2d", "apply_rope_2d", "window_partition", "window_reverse",
]


class GammaLayerNorm(nn.Module):
    """LayerNorm with a learned ``gamma`` and a fixed zero ``beta`` buffer (the reference's ``LayerNorm``)."""

    def __init__(self, dim: int):
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(dim))
        self.register_buffer("beta", torch.zeros(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x, x.shape[-1:], self.gamma, self.beta)


class _GEGLU(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, gate = x.chunk(2, dim=-1)
        return F.gelu(gate).mul_(x)  # in place: the same values as gelu(gate) * x, one hidden-sized buffer less


def feed_forward(dim: int, mult: float = 4.0) -> nn.Sequential:
    """``LayerNorm -> Linear(dim, 2 * inner) -> GEGLU -> Linear(inner, dim)`` with ``inner = int(mult * 2/3 * dim)``
    (keys ``0``, ``1``, ``4`` as in the reference's ``nn.Sequential``; index 3 is its dropout).

    Example:
        >>> sorted(feed_forward(12).state_dict())
        ['0.bias', '0.weight', '1.weight', '4.weight']
    """
    inner = int(mult * (2 / 3) * dim)
    return nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, inner * 2, bias=False), _GEGLU(), nn.Identity(),
                         nn.Linear(inner, dim, bias=False))


# ----------------------------------------------------------------------------- position terms


def rope_2d(dim: int, n: int, theta: float = 10000.0) -> torch.Tensor:
    """Complex rotations ``[n, dim/2]`` for ``n`` patches of a square grid, x and y interleaved
    (the reference's ``precompute_freqs_cis_2d``)."""
    side = int(n**0.5)
    pos = torch.arange(n)
    x_pos, y_pos = pos % side, pos // side
    freqs = 1.0 / (theta ** (torch.arange(0, dim, 4)[: dim // 4].float() / dim))
    x_cis = torch.polar(torch.ones(n, freqs.numel()), torch.outer(x_pos, freqs).float())
    y_cis = torch.polar(torch.ones(n, freqs.numel()), torch.outer(y_pos, freqs).float())
    return torch.cat([x_cis.unsqueeze(-1), y_cis.unsqueeze(-1)], dim=-1).reshape(n, -1)


def apply_rope_2d(q: torch.Tensor, k: torch.Tensor, freqs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Rotate ``q``, ``k`` ``[B, N, H, D]`` (pairs of channels as complex numbers) by ``freqs`` ``[N, D/2]``."""
    def rot(t):
        tc = torch.view_as_complex(t.float().reshape(*t.shape[:-1], -1, 2))
        return torch.view_as_real(tc * freqs.view(1, t.shape[1], 1, -1)).flatten(3).type_as(t)

    return rot(q), rot(k)


def window_partition(x: torch.Tensor, window: int) -> torch.Tensor:
    """``[B, H, W, C]`` -> ``[B * nW, window, window, C]`` (row-major windows)."""
    b, h, w, c = x.shape
    x = x.view(b, h // window, window, w // window, window, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, window, window, c)


def window_reverse(windows: torch.Tensor, window: int, h: int, w: int) -> torch.Tensor:
    """Inverse of :func:`window_partition` -> ``[B, H, W, C]``."""
    b = windows.shape[0] // ((h // window) * (w // window))
    x = windows.view(b, h // window, w // window, window, window, -1)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(b, h, w, -1)


class _ContinuousPositionBias(nn.Module):
    """The reference's continuous position bias MLP: parameters only (never added on its SDPA path)."""

    def __init__(self, dim: int, heads: int, layers: int = 2):
        super().__init__()
        self.net = nn.ModuleList([nn.Sequential(nn.Linear(2, dim), nn.LeakyReLU(0.1))])
        for _ in range(layers - 1):
            self.net.append(nn.Sequential(nn.Linear(dim, dim), nn.LeakyReLU(0.1)))
        self.net.append(nn.Linear(dim, heads))


# ----------------------------------------------------------------------------- blocks


class PEG(nn.Module):
    """Position-encoding generator: a depthwise 3x3x3 convolution over ``[B, T, H, W, D]``, zero
    padded (in time ``(2, 0)`` when ``causal``); sequences ``[N, L, D]`` are viewed as ``shape + (D,)``."""

    def __init__(self, dim: int, causal: bool = False):
        super().__init__()
        self.causal = causal
        self.dsconv = nn.Conv3d(dim, dim, 3, groups=dim)

    def forward(self, x: torch.Tensor, shape: Optional[tuple[int, int, int, int]] = None) -> torch.Tensor:
        orig = x.shape
        if x.dim() == 3:
            if shape is None:
                raise InputError("PEG on a [N, L, D] sequence needs shape=(B, T, H, W)")
            x = x.reshape(*shape, -1)
        x = x.movedim(-1, 1)
        x = F.pad(x, (1, 1, 1, 1, *((2, 0) if self.causal else (1, 1))))
        return self.dsconv(x).movedim(1, -1).reshape(orig)


class CosineAttention(nn.Module):
    """Self-attention on l2-normalised q, k (times ``q_scale`` / ``k_scale``), scale 8, optional
    causal mask and 2-D RoPE (``spatial_pos="rope"``, spatial calls only). Only the queries see
    ``norm``: the reference takes keys and values from the input before normalising it."""

    def __init__(self, dim: int, dim_head: int = 64, heads: int = 8, causal: bool = False, scale: float = 8.0,
                 spatial_pos: str = "rel"):
        super().__init__()
        self.heads, self.causal, self.scale, self.spatial_pos = heads, causal, scale, spatial_pos
        inner = dim_head * heads
        if spatial_pos == "rel":
            self.spatial_rel_pos_bias = _ContinuousPositionBias(dim, heads)
        self.norm = GammaLayerNorm(dim)
        self.context_norm = GammaLayerNorm(dim)
        self.to_q = nn.Linear(dim, inner, bias=False)
        self.to_kv = nn.Linear(dim, inner * 2, bias=False)
        self.q_scale = nn.Parameter(torch.ones(dim_head))
        self.k_scale = nn.Parameter(torch.ones(dim_head))
        self.to_out = nn.Linear(inner, dim, bias=False)
        self.attn_backend: Optional[str] = None
        self._rope: dict[tuple, torch.Tensor] = {}  # rotations per (tokens, head dim, device), built once

    def rope(self, n: int, dim_head: int, device: torch.device) -> torch.Tensor:
        """The 2-D rotations for ``n`` tokens (:func:`rope_2d`), built on first use and kept (as the
        reference keeps its ``freqs_cis``)."""
        key = (n, dim_head, str(device))
        if key not in self._rope:
            self._rope[key] = rope_2d(dim_head, n).to(device)
        return self._rope[key]

    def forward(self, x: torch.Tensor, is_spatial: bool = True) -> torch.Tensor:
        b, n, _ = x.shape
        k, v = self.to_kv(x).chunk(2, dim=-1)  # keys and values from the un-normalised input, as the reference
        q = self.to_q(self.norm(x))
        q, k, v = (t.reshape(b, n, self.heads, -1) for t in (q, k, v))
        if self.spatial_pos == "rope" and is_spatial:
            q, k = apply_rope_2d(q, k, self.rope(n, q.shape[-1], x.device))
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))
        q = F.normalize(q, dim=-1) * self.q_scale
        k = F.normalize(k, dim=-1) * self.k_scale
        out = attention(q, k, v, mask=CausalMask() if self.causal else None, scale=self.scale, backend=self.attn_backend)
        return self.to_out(out.transpose(1, 2).reshape(b, n, -1))


class WindowAttention(nn.Module):
    """Swin window attention (no shift) over a square token grid, with a learned relative position
    bias table; keys as the reference (``norm``, ``relative_position_bias_table``,
    ``relative_position_index``, ``qkv``, ``proj``)."""

    def __init__(self, dim: int, window_size: int, heads: int):
        super().__init__()
        self.window, self.heads = int(window_size), heads
        w = self.window
        self.norm = GammaLayerNorm(dim)
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * w - 1) ** 2, heads))
        coords = torch.stack(torch.meshgrid(torch.arange(w), torch.arange(w), indexing="ij")).flatten(1)
        rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + (w - 1)
        self.register_buffer("relative_position_index", rel[..., 0] * (2 * w - 1) + rel[..., 1])
        self.qkv = nn.Linear(dim, dim * 3, bias=False)
        self.proj = nn.Linear(dim, dim)
        self.attn_backend: Optional[str] = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        side, w = int(math.sqrt(n)), self.window
        if side * side != n or side % w:
            raise InputError(f"window attention needs a square grid whose side is a multiple of {w}, got {n} tokens")
        win = window_partition(self.norm(x).view(b, side, side, c), w).reshape(-1, w * w, c)
        bw = win.shape[0]
        q, k, v = self.qkv(win).reshape(bw, w * w, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        bias = self.relative_position_bias_table[self.relative_position_index.reshape(-1)].view(w * w, w * w, -1)
        out = attention(q, k, v, mask=AdditiveBias(bias.permute(2, 0, 1)[None].contiguous()),
                        scale=(c // self.heads) ** -0.5, backend=self.attn_backend)
        out = self.proj(out.transpose(1, 2).reshape(bw, w * w, c))
        return window_reverse(out.view(-1, w, w, c), w, side, side).reshape(b, n, c)


class SpaceTimeTransformer(nn.Module):
    """``depth`` blocks, ``block[i]`` = ``"t"`` (PEG when ``peg``, cosine attention, feed-forward) or
    ``"w"`` (window attention, feed-forward), then ``norm_out`` (the reference's ``Transformer``
    without cross-attention; its pooling / upsampling blocks are not implemented)."""

    def __init__(self, dim: int, *, depth: int, block: str, causal: bool = False, dim_head: int = 64, heads: int = 8,
                 ff_mult: float = 4.0, peg: bool = False, peg_causal: bool = False, window_size: int = 4,
                 spatial_pos: str = "rel"):
        super().__init__()
        if len(block) != depth or set(block) - {"t", "w"}:
            raise ConfigError(f"block must be {depth} letters of 't' (attention) / 'w' (window attention), got {block!r}"
                              " (the reference's pooling / upsampling blocks are not implemented)")
        if spatial_pos not in ("rel", "rope", "none"):
            raise ConfigError(f"spatial_pos must be 'rel', 'rope' or 'none', got {spatial_pos!r}")
        self.block = block
        self.layers = nn.ModuleList()
        for kind in block:
            if kind == "t":
                self.layers.append(nn.ModuleList([
                    PEG(dim, causal=peg_causal) if peg else nn.Identity(),
                    CosineAttention(dim, dim_head, heads, causal=causal, spatial_pos=spatial_pos),
                    nn.Identity(), feed_forward(dim, ff_mult)]))
            else:
                self.layers.append(nn.ModuleList([nn.Identity(), WindowAttention(dim, window_size, heads), nn.Identity(),
                                                  feed_forward(dim, ff_mult)]))
        self.norm_out = GammaLayerNorm(dim)

    def forward(self, x: torch.Tensor, video_shape: Optional[tuple[int, int, int, int]] = None,
                is_spatial: bool = True) -> torch.Tensor:
        for kind, (peg, attn, _, ff) in zip(self.block, self.layers):
            # residuals added in place into the fresh branch output: the same sums, one buffer less each
            if kind == "t":
                if isinstance(peg, PEG):
                    x = peg(x, shape=video_shape).add_(x)
                x = attn(x, is_spatial=is_spatial).add_(x)
            else:
                x = attn(x).add_(x)
            x = ff(x).add_(x)
        return self.norm_out(x)
