"""MedITok (Masaaki-75/meditok ``MedITok``, UniTok's layout): images <-> ``[B, 8, L]`` ids.

Encode (the reference's ``img_to_idx``):

1. ViTamin-L (timm's ``VisionTransformer`` with timm's ViTamin MBConv stem as ``HybridEmbed``,
   ``patch_size=1``, no class token, a zero ``pos_embed`` of one row, GeGLU MLPs with tanh GELU)
   -> ``[B, L, 1024]`` (L = (H/16)(W/16));
2. ``quant_proj`` (an attention projection: causal attention whose heads are averaged, plus a
   linear path, plus a GeGLU MLP) -> ``[B, L, 64]``;
3. 8 groups of 8 channels, each l2-normalised and matched by cosine argmax against its own
   l2-normalised 4096-entry codebook.

Tokens: ids ``[B, 8, L]`` (sub-codebook first, positions row-major), ``codebook_size`` 4096.
Decode (``idx_to_img``): normalised codewords -> ``post_quant_proj`` -> ViTamin decoder (ViT
blocks, final norm, then 4 upsampling conv stages to pixels) -> clamp to [-1, 1].
"""

from __future__ import annotations

from functools import partial
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from zoo.errors import ConfigError, TokenError
from zoo.interfaces import Tokens, as_tokens  # at import, not in the first encode (1.4 MiB of modules)
from zoo.media.image import check_images
from zoo.model import ZooModel
from zoo.nn.attention import attention
from zoo.nn.masks import CausalMask
from zoo.nn.multi_codebook import MultiCodebookVQ

from .config import MedITokConfig

__all__ = ["AttnProjection", "MedITok", "ViTaminDecoder", "upsample_conv3x3", "vitamin_encoder"]


def _timm_parts():
    from zoo.nn.backbones import _timm

    _timm()
    from timm.layers import create_conv2d, get_act_layer, get_norm_act_layer, make_divisible
    from timm.models.vision_transformer import Block
    from timm.models.vitamin import GeGluMlp, VitCfg, VitConvCfg

    return dict(create_conv2d=create_conv2d, get_act_layer=get_act_layer, get_norm_act_layer=get_norm_act_layer,
                make_divisible=make_divisible,
                Block=Block, GeGluMlp=GeGluMlp, VitCfg=VitCfg, VitConvCfg=VitConvCfg)


def vitamin_encoder(c: MedITokConfig) -> nn.Module:
    """The encoder as the reference builds it: timm's ``vitamin_large_256`` (``pretrained=False``) with
    ``patch_size=1``, ``pos_embed='none'``, no class token or head, tanh-GELU GeGLU MLPs, and the
    config's widths and depths; then a zero ``pos_embed`` ``[1, 1, D]`` (a key of the release).

    Example:
        >>> c = MedITokConfig(image_size=32, stem_width=8, stage_dims=[8, 16], stage_depths=[1, 1], embed_dim=32,
        ...                   depth=1, num_heads=2, vocab_width=16)
        >>> vitamin_encoder(c)(torch.zeros(1, 3, 32, 32)).shape
        torch.Size([1, 4, 32])
    """
    from zoo.nn.backbones import vitamin

    t = _timm_parts()
    embed_cfg = t["VitCfg"](embed_dim=(*c.stage_dims, c.embed_dim), depths=(*c.stage_depths, 1), stem_width=c.stem_width,
                            conv_cfg=t["VitConvCfg"](norm_layer="layernorm2d", norm_eps=1e-6), head_type="1d")
    enc = vitamin("vitamin_large_256", embed_cfg=embed_cfg, img_size=c.image_size, embed_dim=c.embed_dim, depth=c.depth,
                  num_heads=c.num_heads, mlp_ratio=c.mlp_ratio, patch_size=1, fc_norm=False, drop_rate=0.0, num_classes=0,
                  global_pool="", pos_embed="none", class_token=False, reg_tokens=0, act_layer="gelu_tanh")
    enc.pos_embed = nn.Parameter(torch.zeros(1, 1, c.embed_dim), requires_grad=False)
    return enc


class _GeGluMlp(nn.Module):
    """The reference's ``GeGluMlp``: LayerNorm (eps 1e-6), ``w2(gelu_tanh(w0 x) * w1 x)``."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.w0, self.w1, self.w2 = nn.Linear(dim, hidden), nn.Linear(dim, hidden), nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm(x)
        return self.w2(F.gelu(self.w0(x), approximate="tanh") * self.w1(x))


class _CausalAttention(nn.Module):
    """Causal attention from ``in_dim`` to ``out_dim`` (UniTok's): ``max(in, out) / heads`` channels a
    head, a shared ``qkv`` with ``q_bias``/``v_bias`` (the key bias is a zero buffer); narrowing
    (``in > out``) averages the heads' outputs, widening concatenates them."""

    def __init__(self, in_dim: int, out_dim: int, num_heads: int):
        super().__init__()
        width = max(in_dim, out_dim)
        self.in_dim, self.out_dim, self.num_heads, self.head_dim = in_dim, out_dim, num_heads, width // num_heads
        self.qkv = nn.Linear(in_dim, width * 3, bias=False)
        self.q_bias = nn.Parameter(torch.zeros(width))
        self.v_bias = nn.Parameter(torch.zeros(width))
        self.register_buffer("zero_k_bias", torch.zeros(width))
        self.proj = nn.Linear(out_dim, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        bias = torch.cat((self.q_bias, self.zero_k_bias, self.v_bias))
        q, k, v = F.linear(x, self.qkv.weight, bias).view(b, n, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4).unbind(0)
        x = attention(q, k, v, mask=CausalMask())
        if self.in_dim > self.out_dim:
            x = x.mean(dim=1)
            if self.head_dim != self.out_dim:
                x = F.adaptive_avg_pool1d(x, self.out_dim)
        else:
            x = x.transpose(1, 2).reshape(b, n, -1)
        return self.proj(x)


class AttnProjection(nn.Module):
    """UniTok's ``AttnProjection`` (``quant_proj`` / ``post_quant_proj``):
    ``x' = proj(norm3 x) + attn(norm1 x)``, then ``x' + mlp(norm2 x')``.

    Example:
        >>> AttnProjection(32, 8, 4)(torch.zeros(2, 5, 32)).shape
        torch.Size([2, 5, 8])
    """

    def __init__(self, in_dim: int, out_dim: int, num_heads: int, mlp_ratio: float = 2.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(in_dim)
        self.attn = _CausalAttention(in_dim, out_dim, num_heads)
        self.proj = nn.Linear(in_dim, out_dim)
        self.norm3 = nn.LayerNorm(in_dim)
        self.norm2 = nn.LayerNorm(out_dim)
        self.mlp = _GeGluMlp(out_dim, int(out_dim * mlp_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.proj(self.norm3(x)) + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


#: For output phase 0 a nearest-2x upsampled input repeats low-resolution rows (i-1, i, i) under the
#: 3 taps, for phase 1 rows (i, i, i+1): the tap ranges each of the 2 low-resolution taps sums.
_PHASE_TAPS = (((0, 1), (1, 3)), ((0, 2), (2, 3)))


def _phase_matrix(a: int, c: int) -> torch.Tensor:
    """``[9, 4]`` 0/1 matrix: which of a 3x3 kernel's taps (row-major) each tap of the 2x2 kernel of
    output phase ``(a, c)`` sums."""
    m = torch.zeros(3, 3, 2, 2)
    for i, (r0, r1) in enumerate(_PHASE_TAPS[a]):
        for j, (q0, q1) in enumerate(_PHASE_TAPS[c]):
            m[r0:r1, q0:q1, i, j] = 1.0
    return m.view(9, 4)


_PHASE_MATRICES = {(a, c): _phase_matrix(a, c) for a in (0, 1) for c in (0, 1)}


def _phase_kernel(w: torch.Tensor, a: int, c: int) -> torch.Tensor:
    """The 2x2 kernel of output phase ``(a, c)`` (row, column) of a 3x3 ``w`` applied after nearest 2x:
    one ``[Co*Ci, 9] @ [9, 4]`` product (no temporary beyond the kernel itself)."""
    m = _PHASE_MATRICES[(a, c)].to(device=w.device, dtype=w.dtype)
    return (w.reshape(-1, 9) @ m).view(w.shape[0], w.shape[1], 2, 2)


def upsample_conv3x3(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """``conv3x3(nearest_upsample_2x(x), padding=1)`` computed at the input resolution: each of the 4
    output phases is a 2x2 conv of ``x`` with summed taps (4 instead of 9 multiply-adds per output
    value and no upsampled copy of ``x``); equal up to float rounding of the summed taps. Inputs of
    fewer than 1024 positions (batch x height x width) take the direct path, where summing the taps
    costs more than it saves. The output keeps the input's memory format (channels-last in and out,
    as the direct form gives after timm's ``LayerNorm2d``).

    Example:
        >>> x, w, b = torch.randn(64, 3, 5, 4), torch.randn(2, 3, 3, 3), torch.randn(2)
        >>> ref = F.conv2d(F.interpolate(x, scale_factor=2.0, mode="nearest"), w, b, padding=1)
        >>> torch.allclose(upsample_conv3x3(x, w, b), ref, atol=1e-5)
        True
    """
    b, _, h, wd = x.shape
    if b * h * wd < 1024:
        return F.conv2d(F.interpolate(x, scale_factor=2.0, mode="nearest"), weight, bias, padding=1)
    co, xp = weight.shape[0], F.pad(x, (1, 1, 1, 1))
    if x.is_contiguous(memory_format=torch.channels_last):  # keep the layout the next convs run fastest in
        out = x.new_empty(b, h, 2, wd, 2, co)
        for a in (0, 1):
            for c in (0, 1):
                phase = F.conv2d(xp[:, :, a:a + h + 1, c:c + wd + 1], _phase_kernel(weight, a, c), bias)
                out[:, :, a, :, c] = phase.permute(0, 2, 3, 1)
        return out.view(b, 2 * h, 2 * wd, co).permute(0, 3, 1, 2)
    out = x.new_empty(b, co, h, 2, wd, 2)
    for a in (0, 1):
        for c in (0, 1):
            out[:, :, :, a, :, c] = F.conv2d(xp[:, :, a:a + h + 1, c:c + wd + 1], _phase_kernel(weight, a, c), bias)
    return out.view(b, co, 2 * h, 2 * wd)


class _Upsample2d(nn.Module):
    """Nearest 2x, then a 3x3 conv (computed by :func:`upsample_conv3x3`)."""

    def __init__(self, dim: int, dim_out: int):
        super().__init__()
        self.conv = nn.Conv2d(dim, dim_out, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return upsample_conv3x3(x, self.conv.weight, self.conv.bias)


class _InvMbConv(nn.Module):
    """The decoder's inverted MBConv block (pre-norm; 1x1 expand x4, GELU, [2x upsample], depthwise
    3x3, GELU, 1x1) with an upsampling / 1x1 / identity shortcut."""

    def __init__(self, in_chs: int, out_chs: int, stride: int, t: dict):
        super().__init__()
        mid = t["make_divisible"](out_chs * 4.0)
        if stride == 2:
            self.shortcut = _Upsample2d(in_chs, out_chs)
        elif in_chs != out_chs:
            self.shortcut = nn.Conv2d(in_chs, out_chs, 1)
        else:
            self.shortcut = nn.Identity()
        self.pre_norm = t["get_norm_act_layer"]("layernorm2d", "gelu")(in_chs, apply_act=False, eps=1e-6)
        self.conv1_1x1 = t["create_conv2d"](in_chs, mid, 1, stride=1, bias=True)
        self.up = _Upsample2d(mid, mid) if stride == 2 else nn.Identity()
        self.conv2_kxk = t["create_conv2d"](mid, mid, 3, stride=1, dilation=1, groups=mid, bias=True)
        self.conv3_1x1 = t["create_conv2d"](mid, out_chs, 1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # one step per statement: each rebinding of x frees the previous activation before the next
        # op allocates (a nested expression would keep it alive through two more ops)
        shortcut = self.shortcut(x)
        x = self.pre_norm(x)
        x = self.conv1_1x1(x)
        x = F.gelu(x)
        x = self.up(x)
        x = self.conv2_kxk(x)
        x = F.gelu(x)
        x = self.conv3_1x1(x)
        return x + shortcut


class _InvStem(nn.Module):
    def __init__(self, in_chs: int, out_chs: int, t: dict):
        super().__init__()
        self.conv1 = _Upsample2d(in_chs, in_chs)
        self.norm1 = t["get_norm_act_layer"]("layernorm2d", "gelu")(in_chs, eps=1e-6)
        self.conv2 = t["create_conv2d"](in_chs, out_chs, 3, stride=1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x)
        x = self.norm1(x)
        return self.conv2(x)


class ViTaminDecoder(nn.Module):
    """The reference's ``ViTaminDecoder``: ``depth`` timm ViT blocks (GeGLU, tanh GELU) + LayerNorm on
    ``[B, L, D]``, the square grid, then ``up_conv1`` (2x, to ``dims[0]``), ``up_conv2`` /
    ``up_conv3`` (inverted MBConv stages, each first block 2x) and ``up_conv4`` (2x, to RGB): 16x."""

    def __init__(self, c: MedITokConfig):
        super().__init__()
        t = _timm_parts()
        act = t["get_act_layer"]("gelu_tanh")
        self.blocks = nn.Sequential(*[t["Block"](c.embed_dim, c.num_heads, mlp_ratio=c.mlp_ratio, qkv_bias=True,
                                                 norm_layer=partial(nn.LayerNorm, eps=1e-6), act_layer=act,
                                                 mlp_layer=t["GeGluMlp"]) for _ in range(c.depth)])
        self.norm = nn.LayerNorm(c.embed_dim, eps=1e-6)
        d1, d2 = c.decoder_dims
        n1, n2 = c.decoder_conv_depths
        self.up_conv1 = _Upsample2d(c.embed_dim, d1)
        self.up_conv2 = nn.Sequential(*[_InvMbConv(d1, d1, 2 if i == 0 else 1, t) for i in range(n1)])
        self.up_conv3 = nn.Sequential(*[_InvMbConv(d1 if i == 0 else d2, d2, 2 if i == 0 else 1, t) for i in range(n2)])
        self.up_conv4 = _InvStem(d2, 3, t)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        side = int(n ** 0.5)
        x = self.blocks(x)
        x = self.norm(x)
        x = x.view(b, side, side, d).permute(0, 3, 1, 2)
        x = self.up_conv1(x)
        x = self.up_conv2(x)
        x = self.up_conv3(x)
        return self.up_conv4(x)


class MedITok(ZooModel, nn.Module):
    """MedITok's tokenizer: ``encode(images) -> Tokens`` (ids ``[B, 8, L]``), ``decode(tokens) -> images``.

    Example:
        >>> c = MedITokConfig(image_size=32, stem_width=8, stage_dims=[8, 16], stage_depths=[1, 1], embed_dim=32,
        ...                   depth=1, num_heads=2, decoder_dims=[16, 8], decoder_conv_depths=[1, 1],
        ...                   codebook_size=16, num_codebooks=2, vocab_width=8, align_dim=8)
        >>> tok = MedITok(c).eval()
        >>> t = tok.encode(torch.rand(2, 3, 32, 32) * 2 - 1)
        >>> t.ids.shape, tuple(tok.decode(t).shape)
        (torch.Size([2, 2, 4]), (2, 3, 32, 32))
    """

    def __init__(self, config: MedITokConfig):
        super().__init__()
        self.config = c = config
        heads = c.embed_dim // c.vocab_width
        self.encoder = vitamin_encoder(c)
        self.quant_proj = AttnProjection(c.embed_dim, c.vocab_width, heads)
        self.quantizer = MultiCodebookVQ(c.num_codebooks, c.codebook_size, c.vocab_width, l2_norm=True, search="cosine")
        self.post_quant_proj = AttnProjection(c.vocab_width, c.embed_dim, heads)
        self.decoder = ViTaminDecoder(c)
        if not c.drop_alignment:  # the CLIP-style alignment head (in the release; used by embed())
            self.fc_norm = nn.LayerNorm(c.embed_dim, eps=1e-6)
            self.projection = nn.Linear(c.embed_dim, c.align_dim)
            self.logit_scale = nn.Parameter(torch.zeros([]))

    # ------------------------------------------------------------------ facts
    @property
    def codebook_size(self) -> int:
        return int(self.config.codebook_size)

    @property
    def image_size(self) -> int:
        return int(self.config.image_size)

    @property
    def num_tokens(self) -> int:
        return self.config.num_tokens

    default_name = "meditok"

    # ------------------------------------------------------------------ stages
    def _check_images(self, images: Any) -> torch.Tensor:
        check_images(images, size=self.image_size, model=self.name)
        p = self.quant_proj.proj.weight
        return images.to(device=p.device, dtype=p.dtype)

    @torch.no_grad()
    def encode_latents(self, images: torch.Tensor) -> torch.Tensor:
        """Images -> ``quant_proj`` output ``[B, L, vocab_width]`` (before quantisation)."""
        return self.quant_proj(self.encoder(self._check_images(images)))

    @torch.no_grad()
    def encode(self, images: torch.Tensor):
        """Images ``[B, 3, 256, 256]`` in [-1, 1] -> :class:`zoo.interfaces.Tokens` ids ``[B, 8, 256]``."""
        ids = self.quantizer.nearest(self.encode_latents(images)).transpose(1, 2).contiguous()
        g = self.config.grid
        return Tokens(ids=ids, codebook_size=self.codebook_size, tokenizer=self.name, meta={"grid": (g, g)})

    def _ids(self, tokens: Any) -> torch.Tensor:
        if not isinstance(tokens, (Tokens, torch.Tensor)):
            raise TokenError(f"{self.name} decodes Tokens from its encode() or ids [B, {self.config.num_codebooks}, "
                             f"{self.num_tokens}]; got {type(tokens).__name__}")
        if isinstance(tokens, Tokens) and tokens.tokenizer and tokens.tokenizer.split(".")[0] != "meditok":
            raise TokenError(f"these tokens were made by {tokens.tokenizer!r}; {self.name} decodes its own tokens")
        tok = as_tokens(tokens, self.codebook_size, self.name)
        if tok.codebook_size != self.codebook_size:
            raise TokenError(f"tokens have codebook_size {tok.codebook_size}, {self.name} uses {self.codebook_size}")
        q, n = self.config.num_codebooks, self.num_tokens
        if tok.ids.dim() != 3 or tok.ids.shape[1:] != (q, n) or bool((tok.lengths != n).any()):
            raise TokenError(f"{self.name} decodes ids [B, {q}, {n}] ({q} sub-codebook ids for each of the "
                             f"{self.config.grid}x{self.config.grid} positions), got shape {tuple(tok.ids.shape)}")
        return tok.ids.to(self.quant_proj.proj.weight.device).long()

    @torch.no_grad()
    def decode(self, tokens: Any, clamp: bool = True) -> torch.Tensor:
        """Tokens (or ids ``[B, 8, 256]``) -> images ``[B, 3, 256, 256]`` in [-1, 1]."""
        ids = self._ids(tokens)
        try:
            codes = self.quantizer(ids.transpose(1, 2))
        except (TypeError, ValueError) as exc:
            raise TokenError(f"{self.name}: {exc}") from exc
        out = self.decoder(self.post_quant_proj(codes.to(self.quant_proj.proj.weight.dtype)))
        return out.clamp(-1.0, 1.0) if clamp else out

    @torch.no_grad()
    def reconstruct(self, images: torch.Tensor) -> torch.Tensor:
        """``decode(encode(images))`` (the reference's ``img_to_reconstructed_img``)."""
        return self.decode(self.encode(images))

    @torch.no_grad()
    def embed(self, images: torch.Tensor, normalize: bool = False) -> torch.Tensor:
        """The alignment features ``[B, align_dim]`` of the quantised tokens (the reference's
        ``encode_image``: ``projection(fc_norm(mean(post_quant_proj(codes))))``, l2-normalised when
        ``normalize``)."""
        if self.config.drop_alignment:
            raise ConfigError(f"{self.name} was built with drop_alignment=True (its checkpoint has no fc_norm/projection): "
                              "it has no alignment head to embed with; use encode() or a checkpoint with the head")
        ids = self.quantizer.nearest(self.encode_latents(images))
        feats = self.projection(self.fc_norm(self.post_quant_proj(self.quantizer(ids)).mean(dim=1)))
        return F.normalize(feats, dim=-1) if normalize else feats
