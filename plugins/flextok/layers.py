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

from zoo.errors import InputError
from zoo.nn.attention import attention
from zoo.nn.masks import CausalMask, Mask

from .config import TransformerConfig

__all__ = ["Attention", "Block", "Fp32LayerNorm", "Mlp", "PrefixLM", "Ragged", "TimestepEmbedder", "Trunk", "make_norm", "sincos_posemb_2d"]


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

    def forward(self, x: torch.Tensor, mask: Mask | None = None, layout: Ragged | PrefixLM | None = None,
                out_from: int = 0) -> torch.Tensor:
        """Self-attention of ``x`` [B, L, D] (or ``[N, D]`` with a :class:`Ragged` layout).
        ``out_from > 0``: only positions ``out_from..L-1`` are queried and returned (the keys
        and values still cover all of ``x``); ``mask`` must then be None or a bottom-right
        :class:`~zoo.nn.masks.CausalMask`."""
        if not isinstance(layout, Ragged):
            q = self.q_norm(self._heads(self.wq(x[:, out_from:] if out_from else x)))
            k = self.k_norm(self._heads(self.wk(x)))
            v = self._heads(self.wv(x))
            if isinstance(layout, PrefixLM):
                out = layout.attention(q, k, v, out_from, self.scale, self.attn_backend)
            else:
                if out_from and mask is not None and not isinstance(mask, CausalMask):
                    raise InputError(f"Attention(out_from={out_from}) needs mask None or CausalMask, got {type(mask).__name__}")
                out = attention(q, k, v, mask=mask, scale=self.scale, backend=self.attn_backend)
            b, h, n, d = out.shape
            return self.proj(out.transpose(1, 2).reshape(b, n, h * d))
        # ragged rows: x is [N, D] (valid tokens only); attention runs per group of equal rows
        n, h, d = x.shape[0], self.num_heads, self.head_dim
        q = self.q_norm(self.wq(x).view(n, h, d))
        k = self.k_norm(self.wk(x).view(n, h, d))
        v = self.wv(x).view(n, h, d)
        out = layout.attention(q, k, v, self.scale, self.attn_backend)
        return self.proj(out.view(n, h * d))


class PrefixLM:
    """FlexTok's ``causal_last`` mask over ``[prefix | suffix]`` without a dense mask: prefix
    tokens attend to the prefix only (one unmasked attention), suffix tokens to the prefix and
    to earlier suffix tokens (a bottom-right :class:`~zoo.nn.masks.CausalMask`).

    Example:
        >>> q = k = v = torch.randn(1, 2, 5, 8)
        >>> PrefixLM(3).attention(q, k, v, 0, 8**-0.5, None).shape
        torch.Size([1, 2, 5, 8])
    """

    def __init__(self, n_prefix: int):
        self.n_prefix = n_prefix

    def attention(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, q_from: int, scale: float,
                  backend: str | None) -> torch.Tensor:
        """Attention for queries at positions ``q_from..L-1`` over all ``L`` keys ([B, H, *, d])."""
        from zoo.nn.masks import CausalMask

        p, outs = self.n_prefix, []
        n_pre = max(0, p - q_from)
        if n_pre:
            outs.append(attention(q[:, :, :n_pre], k[:, :, :p], v[:, :, :p], scale=scale, backend=backend))
        if q.shape[2] > n_pre:
            outs.append(attention(q[:, :, n_pre:], k, v, mask=CausalMask(), scale=scale, backend=backend))
        return outs[0] if len(outs) == 1 else torch.cat(outs, 2)


class Ragged:
    """Rows of different lengths stored as valid tokens only (``[N, ...]``, row after row).

    Attention runs per *group* of consecutive rows of equal length, each a free
    ``[g, L, ...]`` view of the token buffer: no padding, no copies, and rows without a
    bias take SDPA's unmasked path. ``mults[r] > 1`` says that row ``r``'s last token stands
    for that many identical keys (its logit gets ``+log(mult)``, exactly the softmax over the
    repeated keys). Linear layers never see padding.

    Example:
        >>> lay = Ragged([3, 2, 2], torch.device("cpu"), mults=[1, 1, 4])
        >>> [(g.start, g.rows, g.length) for g in lay.groups]
        [(0, 1, 3), (3, 2, 2)]
    """

    class Group:
        """``rows`` consecutive rows of ``length`` tokens from token ``start``; ``mask`` or None."""

        def __init__(self, start: int, rows: int, length: int, mask: Mask | None):
            self.start, self.rows, self.length, self.mask = start, rows, length, mask

    def __init__(self, lengths: Sequence[int], device: torch.device, mults: Sequence[int] | None = None):
        from zoo.nn.masks import AdditiveBias

        mults = [1] * len(lengths) if mults is None else list(mults)
        if len(mults) != len(lengths):
            raise InputError(f"Ragged: {len(lengths)} lengths but {len(mults)} multiplicities")
        self.rows, self.lmax = len(lengths), max(lengths)
        self.lengths, self.mults = list(lengths), mults
        self.groups: list[Ragged.Group] = []
        start, r = 0, 0
        while r < len(lengths):
            e = r
            while e + 1 < len(lengths) and lengths[e + 1] == lengths[r]:
                e += 1
            g, n = e - r + 1, lengths[r]
            mask = None
            if any(m > 1 for m in mults[r : e + 1]):
                bias = torch.zeros(g, n)
                for i, m in enumerate(mults[r : e + 1]):
                    if m > 1:
                        bias[i, n - 1] = math.log(m)
                mask = AdditiveBias(bias[:, None, None, :].to(device))
            self.groups.append(Ragged.Group(start, g, n, mask))
            start += g * n
            r = e + 1

    def attention(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float,
                  backend: str | None) -> torch.Tensor:
        """Per-row attention of ``[N, H, d]`` queries/keys/values -> ``[N, H, d]``."""
        n, h, d = q.shape
        if len(self.groups) == 1:
            grp = self.groups[0]
            qq, kk, vv = (t.view(grp.rows, grp.length, h, d).transpose(1, 2) for t in (q, k, v))
            return attention(qq, kk, vv, mask=grp.mask, scale=scale, backend=backend).transpose(1, 2).reshape(n, h, d)
        out = q.new_empty(n, h, d)
        for grp in self.groups:
            sl = slice(grp.start, grp.start + grp.rows * grp.length)
            qq, kk, vv = (t[sl].view(grp.rows, grp.length, h, d).transpose(1, 2) for t in (q, k, v))
            o = attention(qq, kk, vv, mask=grp.mask, scale=scale, backend=backend)
            out[sl].view(grp.rows, grp.length, h, d).copy_(o.transpose(1, 2))
        return out


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
                layout: Ragged | PrefixLM | None = None, out_from: int = 0) -> torch.Tensor:
        """``out_from > 0`` (no adaLN, ``[B, L, D]`` input): return only the outputs of positions
        ``out_from..L-1``, computing queries, attention output and MLP for those alone."""
        if out_from:
            if mod is not None or isinstance(layout, Ragged):
                raise InputError("Block(out_from>0) is for unmodulated [B, L, D] inputs")
            x_out = x[:, out_from:]
            x_out = x_out + self.attn(self.norm1(x), mask, layout, out_from)
            return x_out + self.mlp(self.norm2(x_out))
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
        """All blocks' adaLN outputs for a time embedding ``emb`` [B, D]:
        ``[B, depth, expansion, 6, D]`` (order gate_msa, gate_mlp, shift_msa, scale_msa,
        shift_mlp, scale_mlp)."""
        cfg = self.cfg
        e = F.silu(emb)
        # one GEMV per block: concatenating the weights first would copy depth * 6 * exp * D^2
        # floats (340 MB at d12) on every Euler step
        mods = [blk.adaLN_modulation[1](e) for blk in self.blocks]
        return torch.stack(mods, 1).view(emb.shape[0], cfg.depth, cfg.adaln_expansion, 6, cfg.dim)

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
        layout: Ragged | PrefixLM | None = None,
        out_from: int = 0,
    ) -> torch.Tensor:
        """Run the blocks; ``out_from > 0``: the last block computes (and the trunk returns)
        only positions ``out_from..L-1`` (e.g. FlexTok's encoder, whose output is its registers)."""
        flat = isinstance(layout, Ragged)
        last = len(self.blocks) - 1
        for i, blk in enumerate(self.blocks):
            mod = None if allmod is None else self.block_mod(allmod, i, seg_idx, flat)
            x = blk(x, mask, mod, layout, out_from if i == last else 0)
        return x[:, out_from:] if out_from and not self.blocks else x


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
            raise InputError(f"timesteps must be <= max_timestep={self.max_timestep}, got max {float(t.max())}")
        feats = self.features(t)
        return self.mlp(feats.to(self.mlp[0].weight.dtype))


def sincos_posemb_2d(h: int, w: int, dim: int, temperature: float = 10000.0) -> torch.Tensor:
    """MoCo-v3 2D sin-cos posemb as FlexTok lays it out: ``[1, dim, h, w]``.

    The reference flattens a (w, h)-indexed grid and reads it back as (h, w); the values here are
    the same (they are also stored in the checkpoint, which overrides them on load).
    """
    if dim % 4:
        raise InputError(f"sincos posemb needs dim divisible by 4, got {dim}")
    gw, gh = torch.meshgrid(torch.arange(w, dtype=torch.float32), torch.arange(h, dtype=torch.float32), indexing="ij")
    pos_dim = dim // 4
    omega = 1.0 / temperature ** (torch.arange(pos_dim, dtype=torch.float32) / pos_dim)
    ow = gw.reshape(-1)[:, None] * omega[None]
    oh = gh.reshape(-1)[:, None] * omega[None]
    emb = torch.cat([ow.sin(), ow.cos(), oh.sin(), oh.cos()], dim=1)  # [(w h), D] read as [(h w), D]
    return emb.view(h, w, dim).permute(2, 0, 1).unsqueeze(0).contiguous()
