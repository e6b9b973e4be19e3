"""FlexTok building blocks with the official parameter names (so ``strict=True`` loads work).

Attention goes through :func:`zoo.nn.attention.attention`; masks are zoo masks.

Example:
    >>> import torch
    >>> from zoo_plugins.flextok.config import TransformerConfig
    >>> blk = Block(TransformerConfig(dim=64, depth=1, head_dim=32))
    >>> blk(torch.randn(2, 5, 64)).shape
    torch.Size([2, 5, 64])
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from zoo.nn.attention import attention
from zoo.nn.masks import Mask

from .config import TransformerConfig

__all__ = ["Attention", "Block", "Fp32LayerNorm", "Mlp", "Ragged", "TimestepEmbedder", "Trunk", "make_norm", "sincos_posemb_2d"]


class Fp32LayerNorm(nn.LayerNorm):
    """LayerNorm computed in float32 and cast back (parameters, if any, as nn.LayerNorm)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight.float() if self.weight is not None else None
        b = self.bias.float() if self.bias is not None else None
        return F.layer_norm(x.float(), self.normalized_shape, w, b, self.eps).type_as(x)


def make_norm(dim: int, eps: float, affine: bool, bias: bool) -> Fp32LayerNorm:
    """An fp32 LayerNorm; ``affine=False`` gives no parameters (FlexTok's default)."""
    return Fp32LayerNorm(dim, eps=eps, elementwise_affine=affine, bias=bias and affine)


def _act(name: str) -> nn.Module:
    return {"silu": nn.SiLU(), "gelu": nn.GELU(), "gelu_tanh": nn.GELU(approximate="tanh")}[name]


class Attention(nn.Module):
    """Multi-head attention with separate ``wq/wk/wv``, optional QK-norm, muP scale ``8/head_dim``."""

    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        dim = cfg.dim
        self.num_heads = dim // cfg.head_dim
        self.head_dim = dim // self.num_heads
        self.wq = nn.Linear(dim, dim, bias=cfg.qkv_bias)
        self.wk = nn.Linear(dim, dim, bias=cfg.qkv_bias)
        self.wv = nn.Linear(dim, dim, bias=cfg.qkv_bias)
        self.proj = nn.Linear(dim, dim, bias=cfg.proj_bias)
        if cfg.qk_norm:
            self.q_norm = make_norm(self.head_dim, cfg.norm_eps, cfg.norm_affine, cfg.norm_bias)
            self.k_norm = make_norm(self.head_dim, cfg.norm_eps, cfg.norm_affine, cfg.norm_bias)
        else:
            self.q_norm = self.k_norm = nn.Identity()
        self.scale = 8.0 / self.head_dim if cfg.attn_scale_mup else self.head_dim**-0.5
        self.attn_backend: str | None = None

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        return x.view(b, n, self.num_heads, self.head_dim).transpose(1, 2)

    def forward(self, x: torch.Tensor, mask: Mask | None = None, layout: Ragged | None = None) -> torch.Tensor:
        if layout is None:
            q = self.q_norm(self._heads(self.wq(x)))
            k = self.k_norm(self._heads(self.wk(x)))
            v = self._heads(self.wv(x))
            out = attention(q, k, v, mask=mask, scale=self.scale, backend=self.attn_backend)
            b, h, n, d = out.shape
            return self.proj(out.transpose(1, 2).reshape(b, n, h * d))
        # ragged rows: x is [N, D] (valid tokens only); attention runs on [rows, Lmax] with padding
        n, h, d = x.shape[0], self.num_heads, self.head_dim
        q = self.q_norm(self.wq(x).view(n, h, d))
        k = self.k_norm(self.wk(x).view(n, h, d))
        v = self.wv(x).view(n, h, d)
        q, k, v = (layout.pad(t).transpose(1, 2) for t in (q, k, v))
        out = attention(q, k, v, mask=mask, scale=self.scale, backend=self.attn_backend)
        return self.proj(layout.unpad(out.transpose(1, 2)).reshape(n, h * d))


class Ragged:
    """Rows of different lengths stored as valid tokens only (``[N, ...]``); ``pad`` scatters
    them into ``[rows, Lmax, ...]`` for attention and ``unpad`` gathers them back. Linear layers
    then cost nothing for padding."""

    def __init__(self, lengths: Sequence[int], device: torch.device):
        self.rows, self.lmax = len(lengths), max(lengths)
        pos = [r * self.lmax + i for r, n in enumerate(lengths) for i in range(n)]
        self.index = torch.tensor(pos, dtype=torch.long, device=device)
        self.dense = sum(lengths) == self.rows * self.lmax

    def pad(self, t: torch.Tensor) -> torch.Tensor:
        if self.dense:
            return t.reshape(self.rows, self.lmax, *t.shape[1:])
        out = t.new_zeros(self.rows * self.lmax, *t.shape[1:])
        return out.index_copy_(0, self.index, t).view(self.rows, self.lmax, *t.shape[1:])

    def unpad(self, t: torch.Tensor) -> torch.Tensor:
        t = t.reshape(self.rows * self.lmax, *t.shape[2:])
        return t if self.dense else t.index_select(0, self.index)


class Mlp(nn.Module):
    """``fc2(act(fc1 x) * fc3 x)`` (SwiGLU, hidden = int(2/3 * ratio * dim)) or a plain MLP."""

    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        hidden = int(cfg.dim * cfg.mlp_ratio)
        self.gated = cfg.gated_mlp
        if self.gated:
            hidden = int(2 * hidden / 3)
        self.fc1 = nn.Linear(cfg.dim, hidden, bias=cfg.mlp_bias)
        self.act = _act(cfg.act)
        self.fc2 = nn.Linear(hidden, cfg.dim, bias=cfg.mlp_bias)
        if self.gated:
            self.fc3 = nn.Linear(cfg.dim, hidden, bias=cfg.mlp_bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.act(self.fc1(x))
        if self.gated:
            h = h * self.fc3(x)
        return self.fc2(h)


class Block(nn.Module):
    """Pre-LN block; with ``adaln_expansion > 0`` an adaLN-zero modulation of 6 vectors per
    segment, given to :meth:`forward` as ``mod = (gate_msa, gate_mlp, shift_msa, scale_msa,
    shift_mlp, scale_mlp)``, each broadcastable to ``x`` (built once per step by :class:`Trunk`)."""

    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.norm1 = make_norm(cfg.dim, cfg.norm_eps, cfg.norm_affine, cfg.norm_bias)
        self.attn = Attention(cfg)
        self.norm2 = make_norm(cfg.dim, cfg.norm_eps, cfg.norm_affine, cfg.norm_bias)
        self.mlp = Mlp(cfg)
        if cfg.adaln_expansion:
            self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(cfg.dim, cfg.adaln_expansion * 6 * cfg.dim))

    def forward(self, x: torch.Tensor, mask: Mask | None = None, mod: tuple | None = None,
                layout: Ragged | None = None) -> torch.Tensor:
        if mod is None:
            x = x + self.attn(self.norm1(x), mask, layout)
            return x + self.mlp(self.norm2(x))
        gate_msa, gate_mlp, shift_msa, scale_msa, shift_mlp, scale_mlp = mod
        x = x + gate_msa * self.attn(torch.addcmul(shift_msa, self.norm1(x), scale_msa), mask, layout)
        return x + gate_mlp * self.mlp(torch.addcmul(shift_mlp, self.norm2(x), scale_mlp))


class Trunk(nn.Module):
    """A stack of :class:`Block` (the reference FlexTransformer's ``blocks.N`` keys)."""

    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.cfg = cfg
        self.blocks = nn.ModuleList([Block(cfg) for _ in range(cfg.depth)])

    def modulations(self, emb: torch.Tensor) -> torch.Tensor:
        """All blocks' adaLN outputs for a time embedding ``emb`` [B, D] in one matmul:
        ``[B, depth, expansion, 6, D]`` (order gate_msa, gate_mlp, shift_msa, scale_msa,
        shift_mlp, scale_mlp)."""
        cfg = self.cfg
        w = torch.cat([blk.adaLN_modulation[1].weight for blk in self.blocks], 0)
        b = torch.cat([blk.adaLN_modulation[1].bias for blk in self.blocks], 0)
        return F.linear(F.silu(emb), w, b).view(emb.shape[0], cfg.depth, cfg.adaln_expansion, 6, cfg.dim)

    @staticmethod
    def block_mod(allmod: torch.Tensor, i: int, seg_idx: torch.Tensor | None, flat: bool = False) -> tuple:
        """Block ``i``'s 6 modulation tensors, broadcastable to ``[B, L, D]`` (``1 + scale``
        pre-added); ``seg_idx`` [L] maps each token to its sub-sequence (None: one per image).
        ``flat``: tokens are ``[N, D]`` (ragged layout) and the time embedding is shared."""
        m = allmod[:, i]  # [B, exp, 6, D]
        if seg_idx is None:
            m = m[:, 0].unsqueeze(2)  # [B, 6, 1, D]
        else:
            m = m.index_select(1, seg_idx).transpose(1, 2)  # [B, 6, L, D]
        if flat:
            m = m[0]  # [6, N or 1, D]
            g_msa, g_mlp, sh_msa, sc_msa, sh_mlp, sc_mlp = m.unbind(0)
        else:
            g_msa, g_mlp, sh_msa, sc_msa, sh_mlp, sc_mlp = m.unbind(1)
        return g_msa, g_mlp, sh_msa, 1.0 + sc_msa, sh_mlp, 1.0 + sc_mlp

    def forward(
        self,
        x: torch.Tensor,
        mask: Mask | None = None,
        allmod: torch.Tensor | None = None,
        seg_idx: torch.Tensor | None = None,
        layout: Ragged | None = None,
    ) -> torch.Tensor:
        flat = layout is not None
        for i, blk in enumerate(self.blocks):
            x = blk(x, mask, None if allmod is None else self.block_mod(allmod, i, seg_idx, flat), layout)
        return x


class TimestepEmbedder(nn.Module):
    """Sinusoidal time features (``cos | sin``, max period 256, frequencies scaled by
    ``1000 / max_timestep``) -> Linear -> SiLU -> Linear (keys ``mlp.0``, ``mlp.2``)."""

    def __init__(self, dim: int, freq_dim: int = 256, max_timestep: float = 1000.0):
        super().__init__()
        self.freq_dim, self.max_timestep = freq_dim, max_timestep
        self.mlp = nn.Sequential(nn.Linear(freq_dim, dim), nn.SiLU(), nn.Linear(dim, dim))

    def features(self, t: torch.Tensor, max_period: float = 256.0) -> torch.Tensor:
        half = self.freq_dim // 2
        scale = 1000.0 / self.max_timestep
        freqs = scale * torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32) / half).to(t.device)
        args = t[:, None].float() * freqs[None]
        emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
        if self.freq_dim % 2:
            emb = torch.cat([emb, torch.zeros_like(emb[:, :1])], dim=-1)
        return emb

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        if bool((t > self.max_timestep).any()):
            raise ValueError(f"timesteps must be <= max_timestep={self.max_timestep}, got max {float(t.max())}")
        feats = self.features(t)
        return self.mlp(feats.to(self.mlp[0].weight.dtype))


def sincos_posemb_2d(h: int, w: int, dim: int, temperature: float = 10000.0) -> torch.Tensor:
    """MoCo-v3 2D sin-cos posemb as FlexTok lays it out: ``[1, dim, h, w]``.

    The reference flattens a (w, h)-indexed grid and reads it back as (h, w); the values here are
    the same (they are also stored in the checkpoint, which overrides them on load).
    """
    if dim % 4:
        raise ValueError(f"sincos posemb needs dim divisible by 4, got {dim}")
    gw, gh = torch.meshgrid(torch.arange(w, dtype=torch.float32), torch.arange(h, dtype=torch.float32), indexing="ij")
    pos_dim = dim // 4
    omega = 1.0 / temperature ** (torch.arange(pos_dim, dtype=torch.float32) / pos_dim)
    ow = gw.reshape(-1)[:, None] * omega[None]
    oh = gh.reshape(-1)[:, None] * omega[None]
    emb = torch.cat([ow.sin(), ow.cos(), oh.sin(), oh.cos()], dim=1)  # [(w h), D] read as [(h w), D]
    return emb.view(h, w, dim).permute(2, 0, 1).unsqueeze(0).contiguous()
