"""E-MMDiT, Nitro-E's denoiser (Shen et al. 2025), built by zoo in the official key layout.

An MMDiT (joint image/text attention, SD3-style, one shared AdaLN-single timestep modulation
with per-block learned affine "AdaLN-affine") in three groups of blocks (``[4, 16, 4]``): after
the first group the image tokens are compressed on two paths (2x and 4x pixel-unshuffle, 1x1
convs: ``h*w -> h*w/4 + h*w/16`` tokens), the middle group runs on them, then they are
reconstructed (pixel-shuffle back, merged with the first group's output by an MLP) and the sine
-cosine positions are added again ("position reinforcement"). Alternating subregion attention
(ASA, ``use_sub_attn``): blocks ``i % 3 == 1`` split the image and the text tokens into 4
interleaved subsets (every 4th token), blocks ``i % 3 == 2`` into 4 interleaved runs of 4, and
attend within each subset; blocks ``i % 3 == 0`` attend globally.

Every parameter and buffer name is the reference's (``AMD-AGI/Nitro-E``
``core/models/transformer_emmdit.py``, which builds on diffusers 0.32 internals): the official
``Nitro-E-*.safetensors`` load with ``strict=True``. zoo writes the blocks on torch and
:func:`zoo.nn.attention` (no diffusers import). zoo computes one thing less, with the same result:
the last block's text queries and text output (the reference computes them and drops them).

Example:
    >>> import torch
    >>> net = EMMDiT(sample_size=4, in_channels=4, out_channels=4, attention_head_dim=8, num_attention_heads=2,
    ...              caption_channels=12, caption_projection_dim=16, pos_embed_max_size=8, use_sub_attn=False)
    >>> x = torch.randn(1, 4, 4, 4)
    >>> net(x, torch.randn(1, 16, 12), torch.tensor([500.0])).shape
    torch.Size([1, 4, 4, 4])
"""

from __future__ import annotations

from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from zoo.errors import ConfigError, InputError
from zoo.nn.attention import attention
from zoo.nn.timestep import timestep_embedding

__all__ = ["EMMDiT", "sincos_pos_embed", "asa_split", "asa_merge"]


def sincos_pos_embed(dim: int, grid: int, base_size: int, interpolation_scale: float) -> torch.Tensor:
    """``[grid * grid, dim]`` 2-D sine-cosine positions as diffusers' ``get_2d_sincos_pos_embed``
    (``output_type='pt'``) computes them: float32 positions ``i / (grid / base_size) / scale``,
    float64 frequencies, first half from the column index (float64 result).

    Example:
        >>> sincos_pos_embed(4, 2, 2, 1.0).shape
        torch.Size([4, 4])
    """
    if dim % 4:
        raise ConfigError(f"2-D sine-cosine positions need a width divisible by 4, got {dim}")
    pos = torch.arange(grid, dtype=torch.float32) / (grid / base_size) / interpolation_scale
    omega = torch.arange(dim // 4, dtype=torch.float64) / (dim / 4.0)
    omega = 1.0 / 10000**omega

    def one(p: torch.Tensor) -> torch.Tensor:
        out = torch.outer(p.reshape(-1).double(), omega)
        return torch.cat([out.sin(), out.cos()], dim=1)

    cols = pos[None, :].expand(grid, grid)
    rows = pos[:, None].expand(grid, grid)
    return torch.cat([one(cols), one(rows)], dim=1)


def crop_pos_embed(table: torch.Tensor, height: int, width: int, max_size: int) -> torch.Tensor:
    """The centred ``height x width`` window of a ``[1, max_size**2, D]`` table, as ``[1, h*w, D]``."""
    if height > max_size or width > max_size:
        raise InputError(f"a {height}x{width} latent grid is larger than the positional table ({max_size}x{max_size})")
    top, left = (max_size - height) // 2, (max_size - width) // 2
    grid = table.reshape(1, max_size, max_size, -1)[:, top:top + height, left:left + width, :]
    return grid.reshape(1, height * width, -1)


def asa_split(x: torch.Tensor, ratio: int, run: int) -> torch.Tensor:
    """``[B, L, C] -> [B * ratio, L / ratio, C]``: subset ``s`` holds the runs of ``run`` tokens
    at positions ``s, s + ratio, s + 2 ratio, ...`` (einops ``b (l s n) c -> (b s) (l n) c``).

    Example:
        >>> asa_split(torch.arange(8.0).view(1, 8, 1), 2, 2)[:, :, 0].tolist()
        [[0.0, 1.0, 4.0, 5.0], [2.0, 3.0, 6.0, 7.0]]
    """
    b, n, c = x.shape
    if n % (ratio * run):
        raise InputError(f"subregion attention splits {n} tokens into {ratio} subsets of runs of {run}: "
                         f"the count must be a multiple of {ratio * run} (text length or image size)")
    return x.view(b, n // (ratio * run), ratio, run, c).transpose(1, 2).reshape(b * ratio, n // ratio, c)


def asa_merge(x: torch.Tensor, ratio: int, run: int) -> torch.Tensor:
    """The inverse of :func:`asa_split` (``(b s) (l n) c -> b (l s n) c``)."""
    bs, m, c = x.shape
    b = bs // ratio
    return x.view(b, ratio, m // run, run, c).transpose(1, 2).reshape(b, m * ratio, c)


class RMSNorm(nn.Module):
    """RMS norm over the last dim with a weight, computed as diffusers' ``RMSNorm`` (float32 variance)."""

    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        var = x.to(torch.float32).pow(2).mean(-1, keepdim=True)
        x = x * torch.rsqrt(var + self.eps)
        if self.weight.dtype in (torch.float16, torch.bfloat16):
            x = x.to(self.weight.dtype)
        return x * self.weight


class JointAttention(nn.Module):
    """SD3's joint attention (diffusers ``Attention`` + ``JointAttnProcessor2_0`` key names):
    image and text tokens projected apart, RMS-normed per head, attended together, projected back apart.
    ``context_pre_only``: the text keeps no output (``to_add_out`` absent) and zoo skips its queries."""

    def __init__(self, dim: int, heads: int, head_dim: int, context_pre_only: bool = False, qk_norm: Optional[str] = "rms_norm"):
        super().__init__()
        inner = heads * head_dim
        self.heads, self.head_dim, self.context_pre_only = heads, head_dim, context_pre_only
        self.to_q, self.to_k, self.to_v = (nn.Linear(dim, inner) for _ in range(3))
        self.add_q_proj, self.add_k_proj, self.add_v_proj = (nn.Linear(dim, inner) for _ in range(3))
        if qk_norm == "rms_norm":
            self.norm_q, self.norm_k = RMSNorm(head_dim), RMSNorm(head_dim)
            self.norm_added_q, self.norm_added_k = RMSNorm(head_dim), RMSNorm(head_dim)
        elif qk_norm is None:
            self.norm_q = self.norm_k = self.norm_added_q = self.norm_added_k = None
        else:
            raise ConfigError(f"qk_norm {qk_norm!r} is not supported (Nitro-E uses 'rms_norm' or None)")
        self.to_out = nn.ModuleList([nn.Linear(inner, dim), nn.Dropout(0.0)])
        if not context_pre_only:
            self.to_add_out = nn.Linear(inner, dim)

    def _heads(self, x: torch.Tensor, norm: Optional[nn.Module]) -> torch.Tensor:
        x = x.view(x.shape[0], -1, self.heads, self.head_dim).transpose(1, 2)
        return norm(x) if norm is not None else x

    def forward(self, x: torch.Tensor, ctx: torch.Tensor) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        b, n = x.shape[:2]
        q = self._heads(self.to_q(x), self.norm_q)
        k = torch.cat([self._heads(self.to_k(x), self.norm_k), self._heads(self.add_k_proj(ctx), self.norm_added_k)], dim=2)
        v = torch.cat([self._heads(self.to_v(x), None), self._heads(self.add_v_proj(ctx), None)], dim=2)
        if not self.context_pre_only:
            q = torch.cat([q, self._heads(self.add_q_proj(ctx), self.norm_added_q)], dim=2)
        out = attention(q, k, v).transpose(1, 2).reshape(b, -1, self.heads * self.head_dim)
        img = self.to_out[0](out[:, :n])
        return img, (None if self.context_pre_only else self.to_add_out(out[:, n:]))


class FeedForward(nn.Module):
    """diffusers' ``FeedForward(dim, mult=3, activation_fn="gelu-approximate")`` key layout (``net.0.proj``, ``net.2``)."""

    def __init__(self, dim: int, mult: int = 3):
        super().__init__()
        proj = nn.Module()
        proj.proj = nn.Linear(dim, dim * mult)
        self.net = nn.ModuleList([proj, nn.Dropout(0.0), nn.Linear(dim * mult, dim)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net[2](F.gelu(self.net[0].proj(x), approximate="tanh"))


class EMMDiTBlock(nn.Module):
    """One joint block with AdaLN-affine modulation (``bias + temb * (1 + scale)``) and optional ASA."""

    def __init__(self, dim: int, heads: int, head_dim: int, context_pre_only: bool, qk_norm: Optional[str],
                 subsample_ratio: int = 1, subsample_seq_len: int = 1):
        super().__init__()
        self.context_pre_only = context_pre_only
        self.subsample_ratio, self.subsample_seq_len = subsample_ratio, subsample_seq_len
        self.norm1 = nn.LayerNorm(dim)
        self.norm1_context = nn.LayerNorm(dim)
        self.attn = JointAttention(dim, heads, head_dim, context_pre_only, qk_norm)
        self.norm2 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.ff = FeedForward(dim)
        if not context_pre_only:
            self.norm2_context = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
            self.ff_context = FeedForward(dim)
        self.scale_shift_bias = nn.Parameter(torch.randn(6, dim) / dim**0.5)
        self.scale_shift_scale = nn.Parameter(torch.randn(6, dim) / dim**0.5)
        if not context_pre_only:
            self.scale_shift_bias_c = nn.Parameter(torch.randn(6, dim) / dim**0.5)
            self.scale_shift_scale_c = nn.Parameter(torch.randn(6, dim) / dim**0.5)

    def forward(self, x: torch.Tensor, ctx: torch.Tensor, temb: torch.Tensor) -> tuple[Optional[torch.Tensor], torch.Tensor]:
        b = x.shape[0]
        t6 = temb.reshape(b, 6, -1)
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = (self.scale_shift_bias[None] + t6 * (1 + self.scale_shift_scale[None])).chunk(6, dim=1)
        nx = self.norm1(x) * (1 + scale_msa) + shift_msa
        nctx = self.norm1_context(ctx)
        if not self.context_pre_only:
            c_shift_msa, c_scale_msa, c_gate_msa, c_shift_mlp, c_scale_mlp, c_gate_mlp = (self.scale_shift_bias_c[None] + t6 * (1 + self.scale_shift_scale_c)).chunk(6, dim=1)
            nctx = nctx * (1 + c_scale_msa) + c_shift_msa
        r, s = self.subsample_ratio, self.subsample_seq_len
        if r > 1:
            nx, nctx = asa_split(nx, r, s), asa_split(nctx, r, s)
        attn_x, attn_ctx = self.attn(nx, nctx)
        if r > 1:
            attn_x = asa_merge(attn_x, r, s)
            attn_ctx = asa_merge(attn_ctx, r, s) if attn_ctx is not None else None
        x = x + gate_msa * attn_x
        x = x + gate_mlp * self.ff(self.norm2(x) * (1 + scale_mlp) + shift_mlp)
        if self.context_pre_only:
            return None, x
        ctx = ctx + c_gate_msa * attn_ctx
        ctx = ctx + c_gate_mlp * self.ff_context(self.norm2_context(ctx) * (1 + c_scale_mlp) + c_shift_mlp)
        return ctx, x


def _path(shuffle: nn.Module, c_in: int, c: int) -> nn.Sequential:
    return nn.Sequential(shuffle, nn.Conv2d(c_in, c, 1), nn.GELU("tanh"), nn.Conv2d(c, c, 1))


class TokenCompressor(nn.Module):
    """``[B, h*w, C] -> [B, h*w/4 + h*w/16, C]``: a 2x and a 4x pixel-unshuffle path (1x1 conv, GELU, 1x1 conv)."""

    def __init__(self, c: int):
        super().__init__()
        self.body2x = _path(nn.PixelUnshuffle(2), c * 4, c)
        self.body4x = _path(nn.PixelUnshuffle(4), c * 16, c)

    def forward(self, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        grid = x.transpose(1, 2).reshape(x.shape[0], -1, h, w)
        return torch.cat([self.body2x(grid).flatten(2).transpose(1, 2), self.body4x(grid).flatten(2).transpose(1, 2)], dim=1)


class TokenReconstructor(nn.Module):
    """Both paths pixel-shuffled back to ``h x w`` and merged with the skip tokens by an MLP (``mergers``)."""

    def __init__(self, c: int):
        super().__init__()
        self.body2x = _path(nn.PixelShuffle(2), c // 4, c)
        self.body4x = _path(nn.PixelShuffle(4), c // 16, c)
        self.mergers = nn.Sequential(nn.Linear(c * 3, c), nn.GELU("tanh"), nn.Linear(c, c))

    def forward(self, x2: torch.Tensor, x4: torch.Tensor, skip: torch.Tensor, h: int, w: int) -> torch.Tensor:
        b, c = x2.shape[0], x2.shape[-1]
        y2 = self.body2x(x2.transpose(1, 2).reshape(b, c, h // 2, w // 2)).flatten(2).transpose(1, 2)
        y4 = self.body4x(x4.transpose(1, 2).reshape(b, c, h // 4, w // 4)).flatten(2).transpose(1, 2)
        return self.mergers(torch.cat([y2, y4, skip], dim=2))


class PatchEmbed(nn.Module):
    """diffusers' ``PatchEmbed`` with ``pos_embed_max_size`` (a persistent ``[1, M*M, D]`` table, centre-cropped)."""

    def __init__(self, sample_size: int, patch_size: int, in_channels: int, dim: int, interpolation_scale: float, max_size: int):
        super().__init__()
        self.patch_size, self.max_size = patch_size, max_size
        self.proj = nn.Conv2d(in_channels, dim, patch_size, stride=patch_size)
        table = sincos_pos_embed(dim, max_size, sample_size // patch_size, interpolation_scale)
        self.register_buffer("pos_embed", table.float().unsqueeze(0), persistent=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2] // self.patch_size, x.shape[-1] // self.patch_size
        x = self.proj(x).flatten(2).transpose(1, 2)
        return (x + crop_pos_embed(self.pos_embed, h, w, self.max_size)).to(x.dtype)


class TimestepMLP(nn.Module):
    """diffusers' ``TimestepEmbedding`` key layout (``linear_1``, SiLU, ``linear_2``)."""

    def __init__(self, c_in: int, dim: int):
        super().__init__()
        self.linear_1, self.linear_2 = nn.Linear(c_in, dim), nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear_2(F.silu(self.linear_1(x)))


class AdaLNSingle(nn.Module):
    """PixArt's ``AdaLayerNormSingle`` (no size conditions): ``t -> (linear(silu(e)), e)``,
    ``e = timestep_embedder([cos | sin](t f))`` with 256 frequencies (key names ``emb.timestep_embedder.*``, ``linear``)."""

    def __init__(self, dim: int):
        super().__init__()
        self.emb = nn.Module()
        self.emb.timestep_embedder = TimestepMLP(256, dim)
        self.linear = nn.Linear(dim, 6 * dim)

    def forward(self, t: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        e = self.emb.timestep_embedder(timestep_embedding(t, 256).to(dtype))
        return self.linear(F.silu(e)), e


class EMMDiT(nn.Module):
    """The E-MMDiT denoiser: ``forward(latents [B, C, h, w], text [B, L, caption_channels], timestep [B]) -> [B, C, h, w]``.

    Arguments are the reference's (``EMMDiTTransformer``'s; its ``num_layers`` and
    ``interpolation_scale`` are unused there: the depth is ``block_split_stage``, fixed to
    ``[4, 16, 4]``, and the position scale is ``max(sample_size // 16, 1)``).
    """

    def __init__(self, sample_size: int = 16, patch_size: int = 1, in_channels: int = 32, attention_head_dim: int = 32,
                 num_attention_heads: int = 24, caption_channels: int = 2048, caption_projection_dim: int = 768,
                 out_channels: int = 32, pos_embed_max_size: int = 96, use_sub_attn: bool = True,
                 qk_norm: Optional[str] = "rms_norm", block_split_stage: Sequence[int] = (4, 16, 4), num_layers: Optional[int] = None,
                 interpolation_scale: Optional[float] = None):
        super().__init__()
        dim = num_attention_heads * attention_head_dim
        if caption_projection_dim != dim:
            raise ConfigError(f"caption_projection_dim ({caption_projection_dim}) must equal heads x head_dim ({dim}): text and image tokens share the blocks")
        if list(block_split_stage) != [4, 16, 4]:
            raise ConfigError(f"block_split_stage {list(block_split_stage)}: the reference (and its checkpoints) fix it to [4, 16, 4]")
        if dim % 16:
            raise ConfigError(f"the token reconstructor pixel-shuffles by 4: the width ({dim}) must be a multiple of 16")
        grid = sample_size // patch_size
        if sample_size % patch_size or grid % 4:
            raise ConfigError(f"the token compressor pixel-unshuffles by 4: the latent grid ({sample_size} / patch {patch_size}) must be a multiple of 4")
        if use_sub_attn and (grid * grid % 16 or (grid * grid // 4 + grid * grid // 16) % 16):
            raise ConfigError(f"subregion attention splits tokens into 4 x 4 runs: a {grid}x{grid} grid gives {grid * grid} and "
                              f"{grid * grid // 4 + grid * grid // 16} (compressed) image tokens, both must be multiples of 16")
        self.sample_size, self.patch_size, self.in_channels, self.out_channels = sample_size, patch_size, in_channels, out_channels
        self.use_sub_attn, self.inner_dim = use_sub_attn, dim
        self.block_split_stage = list(block_split_stage)
        scale = max(sample_size // 16, 1)  # the reference ignores its interpolation_scale argument
        self.pos_embed = PatchEmbed(sample_size, patch_size, in_channels, dim, scale, pos_embed_max_size)
        lv0 = crop_pos_embed(sincos_pos_embed(dim, pos_embed_max_size, sample_size // patch_size, scale)[None], sample_size, sample_size, pos_embed_max_size)
        self.register_buffer("pos_embed_lv0", lv0.float(), persistent=False)
        self.context_embedder = nn.Linear(caption_channels, caption_projection_dim)
        self.adaln_single = AdaLNSingle(dim)
        ratios, runs = ([1, 4, 4], [1, 1, 4]) if use_sub_attn else ([1, 1, 1], [1, 1, 1])
        self.block_groups = nn.ModuleList()
        i = 0
        for g, count in enumerate(self.block_split_stage):
            group = []
            for j in range(count):
                last = g == len(self.block_split_stage) - 1 and j == count - 1
                group.append(EMMDiTBlock(dim, num_attention_heads, attention_head_dim, last, qk_norm, ratios[i % 3], runs[i % 3]))
                i += 1
            self.block_groups.append(nn.ModuleList(group))
        self.tokencompressor = nn.ModuleList([nn.ModuleList([TokenCompressor(dim)])])
        self.tokenreconstructor = nn.ModuleList([nn.ModuleList([TokenReconstructor(dim)])])
        self.norm_out = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.proj_out = nn.Linear(dim, patch_size * patch_size * out_channels)

    @property
    def dtype(self) -> torch.dtype:
        return self.proj_out.weight.dtype

    def forward(self, latents: torch.Tensor, text: torch.Tensor, timestep: torch.Tensor) -> torch.Tensor:
        p = self.patch_size
        h, w = latents.shape[-2] // p, latents.shape[-1] // p
        if (h, w) != (self.sample_size // p, self.sample_size // p):
            raise InputError(f"E-MMDiT adds its {self.sample_size}x{self.sample_size} positions again after the token "
                             f"reconstruction: it runs at that latent size only, got {latents.shape[-2]}x{latents.shape[-1]}")
        x = self.pos_embed(latents)
        temb, _ = self.adaln_single(timestep, x.dtype)
        ctx = self.context_embedder(text)
        skip = None
        for g, blocks in enumerate(self.block_groups):
            for block in blocks:
                ctx, x = block(x, ctx, temb)
            if g == 0:
                skip = x
                x = self.tokencompressor[0][0](x, h, w)
            elif g == 1:
                x2, x4 = x.split([(h // 2) * (w // 2), (h // 4) * (w // 4)], dim=1)
                x = self.tokenreconstructor[0][0](x2, x4, skip, h, w) + self.pos_embed_lv0
        x = self.proj_out(self.norm_out(x))
        x = x.reshape(x.shape[0], h, w, p, p, self.out_channels)
        return torch.einsum("nhwpqc->nchpwq", x).reshape(x.shape[0], self.out_channels, h * p, w * p)
