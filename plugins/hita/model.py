"""Hita (CVMI-Lab/Hita ``VQModel``): images <-> 128 holistic + 441 patch ids.

Encode (the reference's ``VQModel.encode`` in eval mode):

1. ``h``: LlamaGen's conv encoder on the 336 px image -> ``[B, dim, 21, 21]``;
2. DINOv2 ViT-L/14-reg4 on the image resized to 224 px the way the reference does it (kornia
   ``resize``: Gaussian anti-alias blur, sigma ``(336/224 - 1)/2``, 3 taps, reflect padding, then
   bicubic with ``align_corners=True``), clamped, mapped to [0, 1], ImageNet-normalised; its
   final-normed class + patch tokens go through a 2-layer MLP (``proj``);
3. ``[carriers | DINOv2 | patches + pos]`` -> LayerNorm -> 3 full-attention blocks; then
   ``[carriers | patches]`` -> LayerNorm -> 3 causal blocks;
4. patches -> ``quant_conv`` -> l2 VQ (16384 x 8); carriers -> ``pre_slots_quant`` -> l2 VQ (16384 x 12).

Tokens: ids ``[B, 128 + 441]`` (the holistic ids first, then the patch ids row-major), one codebook
size (16384, two codebooks: ``meta["split"]`` says where the patch ids start). Decode: codes ->
``post_quant_conv`` / ``post_slots_quant`` -> ``[slots + pos | patches + pos]`` -> LayerNorm ->
3 causal blocks -> the rows ``n_carrier - shift_k ..`` as the patch map -> conv decoder -> 336 px.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from zoo.errors import TokenError
from zoo.model import ZooModel
from zoo.nn.attention import attention
from zoo.nn.backbones import DINOv2, interpolate_position_embedding
from zoo.nn.conv_ae import Decoder, Encoder
from zoo.nn.masks import CausalMask
from zoo.nn.quantize import VectorQuantizer

from .config import HitaConfig

__all__ = ["Hita", "kornia_antialias_resize"]

_MEAN, _STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def kornia_antialias_resize(x: torch.Tensor, size: int) -> torch.Tensor:
    """``kornia.geometry.resize(x, (size, size), interpolation="bicubic", align_corners=True,
    antialias=True)`` for a square downscale: a separable Gaussian blur (sigma ``(factor - 1)/2``,
    at least 0.001; ``int(max(4 sigma, 3))`` taps made odd; reflect padding), then bicubic.

    Example:
        >>> kornia_antialias_resize(torch.zeros(1, 3, 48, 48), 32).shape
        torch.Size([1, 3, 32, 32])
    """
    h, w = x.shape[-2:]
    out = []
    for factor, side in ((h / size, h), (w / size, w)):
        sigma = max((factor - 1.0) / 2.0, 0.001)
        ks = int(max(2.0 * 2 * sigma, 3))
        ks = ks if ks % 2 else ks + 1
        out.append((1 if side == 1 else ks, sigma))
    (kh, sh), (kw, sw) = out

    def kernel(k: int, s: float) -> torch.Tensor:
        t = torch.arange(k, dtype=x.dtype, device=x.device) - k // 2
        g = torch.exp(-t.pow(2.0) / (2 * s ** 2))
        return g / g.sum()

    c = x.shape[1]
    y = F.pad(x, (kw // 2, kw // 2, kh // 2, kh // 2), mode="reflect")
    y = F.conv2d(y, kernel(kh, sh).view(1, 1, kh, 1).expand(c, 1, kh, 1), groups=c)
    y = F.conv2d(y, kernel(kw, sw).view(1, 1, 1, kw).expand(c, 1, 1, kw), groups=c)
    return F.interpolate(y, size=(size, size), mode="bicubic", align_corners=True)


class _CrossAttention(nn.Module):
    """The reference's ``CrossAttention`` used as self-attention (``to_q``/``to_k``/``to_v`` without bias)."""

    def __init__(self, dim: int, heads: int, dim_head: int):
        super().__init__()
        inner = heads * dim_head
        self.heads = heads
        self.to_q, self.to_k, self.to_v = (nn.Linear(dim, inner, bias=False) for _ in range(3))
        self.to_out = nn.Sequential(nn.Linear(inner, dim))

    def forward(self, x: torch.Tensor, causal: bool = False) -> torch.Tensor:
        b, n, _ = x.shape
        q, k, v = (t(x).view(b, n, self.heads, -1).transpose(1, 2) for t in (self.to_q, self.to_k, self.to_v))
        out = attention(q, k, v, mask=CausalMask() if causal else None)
        return self.to_out(out.transpose(1, 2).reshape(b, n, -1))


class _Attention3(nn.Module):
    """The reference's ``Attention3`` (``q_proj``/``k_proj``/``v_proj``/``out_proj`` with biases)."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.q_proj, self.k_proj, self.v_proj, self.out_proj = (nn.Linear(dim, dim) for _ in range(4))

    def forward(self, x: torch.Tensor, causal: bool = True) -> torch.Tensor:
        b, n, _ = x.shape
        q, k, v = (p(x).view(b, n, self.heads, -1).transpose(1, 2) for p in (self.q_proj, self.k_proj, self.v_proj))
        out = attention(q, k, v, mask=CausalMask() if causal else None)
        return self.out_proj(out.transpose(1, 2).reshape(b, n, -1))


class _SwiGLU(nn.Module):
    """``SwiGLUFFNFused``: hidden ``(int(2/3 * mlp_dim) + 7) // 8 * 8``, packed ``w12``, ``w3``."""

    def __init__(self, dim: int, mlp_dim: int):
        super().__init__()
        hidden = (int(mlp_dim * 2 / 3) + 7) // 8 * 8
        self.w12 = nn.Linear(dim, 2 * hidden)
        self.w3 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1, x2 = self.w12(x).chunk(2, dim=-1)
        return self.w3(F.silu(x1) * x2)


class _Layer(nn.Module):
    def __init__(self, c: HitaConfig, full: bool):
        super().__init__()
        self.full = full
        self.norm1 = nn.LayerNorm(c.dim)
        self.attn1 = _CrossAttention(c.dim, c.num_head, c.dim_head) if full else _Attention3(c.dim, c.num_head)
        self.norm2 = nn.LayerNorm(c.dim)
        self.ffnet = _SwiGLU(c.dim, c.mlp_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.attn1(self.norm1(x), causal=not self.full) + x
        return self.ffnet(self.norm2(x)) + x


class _Transformer(nn.Module):
    def __init__(self, c: HitaConfig, full: bool):
        super().__init__()
        self.layers = nn.ModuleList(_Layer(c, full) for _ in range(c.depth))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return x


class _MLP(nn.Module):
    """``build_mlp(in, dim, dim, 2)``: Linear, LayerNorm, ReLU, Linear, LayerNorm (no biases in the Linears)."""

    def __init__(self, d_in: int, d: int):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(d_in, d, bias=False), nn.LayerNorm(d), nn.ReLU(),
                                 nn.Linear(d, d, bias=False), nn.LayerNorm(d))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(x)


def _grid_pos(pos: torch.Tensor, side: int) -> torch.Tensor:
    """``[1, N, D]`` square-grid position table for a ``side x side`` grid (the reference's
    +0.1 bicubic resize when it differs)."""
    n = pos.shape[1]
    if side * side == n:
        return pos
    fake = torch.cat([pos[:, :1], pos], dim=1)[0]  # interpolate_position_embedding skips a class row
    return interpolate_position_embedding(fake, side, side, 1)[1:][None]


class _EncodeTransformer(nn.Module):
    def __init__(self, c: HitaConfig):
        super().__init__()
        self.backbone = nn.Module()
        self.backbone.pretrained_encoder = DINOv2(embed_dim=c.backbone_embed_dim, depth=c.backbone_depth,
                                                  heads=c.backbone_heads, num_register_tokens=c.backbone_register_tokens)
        self.proj = _MLP(c.backbone_embed_dim, c.dim)
        self.carrier_tokens = nn.Parameter(torch.zeros(1, c.n_carrier, c.dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, c.grid ** 2, c.dim))
        self.norm_pre1 = nn.LayerNorm(c.dim)
        self.transformer1 = _Transformer(c, full=True)
        self.transformer2 = _Transformer(c, full=False)
        self.norm_pre2 = nn.LayerNorm(c.dim)
        self.backbone_size = c.backbone_size
        self.register_buffer("mean", torch.tensor(_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_STD).view(1, 3, 1, 1), persistent=False)

    def backbone_features(self, images: torch.Tensor) -> torch.Tensor:
        """Images in [-1, 1] -> DINOv2's final-normed ``[cls | patches]`` at 224 px."""
        x = kornia_antialias_resize(images, self.backbone_size).clamp(-1, 1)
        x = ((x + 1.0) / 2.0 - self.mean.to(x.dtype)) / self.std.to(x.dtype)
        enc = self.backbone.pretrained_encoder
        t = enc.prepare_tokens(x)
        for blk in enc.blocks:
            t = blk(t)
        t = enc.norm(t)
        return torch.cat([t[:, :1], t[:, 1 + enc.num_register_tokens:]], dim=1)

    def forward(self, images: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        dino = self.proj(self.backbone_features(images))
        b, _, gh, gw = h.shape
        x = h.flatten(2).transpose(1, 2) + _grid_pos(self.pos_embed, gh).to(h.dtype)
        nc, m = self.carrier_tokens.shape[1], dino.shape[1]
        x = torch.cat([self.carrier_tokens.expand(b, -1, -1).to(x.dtype), dino, x], dim=1)
        x = self.transformer1(self.norm_pre1(x))
        carrier, _, z = x.split([nc, m, gh * gw], dim=1)
        x = self.transformer2(self.norm_pre2(torch.cat([carrier, z], dim=1)))
        carrier, z = x.split([nc, gh * gw], dim=1)
        return z.transpose(1, 2).reshape(b, -1, gh, gw), carrier


class _DecodeTransformer(nn.Module):
    def __init__(self, c: HitaConfig):
        super().__init__()
        self.shift_k = c.shift_k
        self.position_embedding = nn.Parameter(torch.zeros(1, c.grid ** 2, c.dim))
        self.slot_position_embedding = nn.Parameter(torch.zeros(1, c.n_carrier, c.dim))
        self.transformer = _Transformer(c, full=False)
        self.norm = nn.LayerNorm(c.dim)
        if c.enable_vfm_recon:  # Hita-U's DINOv2-feature head: in the release, unused for pixels
            self.mask_embedding = nn.Parameter(torch.zeros(1, 1, c.dim))
            self.norm_vfm = nn.LayerNorm(c.dim)
            self.proj = nn.Linear(c.dim, c.vfm_dim)

    def forward(self, h: torch.Tensor, slots: torch.Tensor) -> torch.Tensor:
        nc = slots.shape[1]
        b, _, gh, gw = h.shape
        memory = slots + self.slot_position_embedding.to(slots.dtype)
        x = h.flatten(2).transpose(1, 2) + _grid_pos(self.position_embedding, gh).to(h.dtype)
        x = self.transformer(self.norm(torch.cat([memory, x], dim=1)))
        z = x[:, nc - self.shift_k: nc - self.shift_k + gh * gw]
        return z.transpose(1, 2).reshape(b, -1, gh, gw)


class Hita(ZooModel, nn.Module):
    """Hita's tokenizer: ``encode(images) -> Tokens`` (128 holistic + 441 patch ids), ``decode(tokens) -> images``.

    Example:
        >>> c = HitaConfig(codebook_size=32, ch=32, ch_mult=[1, 1], num_res_blocks=1, image_size=8, patch_size=2,
        ...                dim=32, depth=1, num_head=2, dim_head=16, mlp_dim=48, n_carrier=6, shift_k=2,
        ...                backbone_embed_dim=32, backbone_depth=1, backbone_heads=2, backbone_size=14)
        >>> tok = Hita(c).eval()
        >>> t = tok.encode(torch.rand(2, 3, 8, 8) * 2 - 1)
        >>> t.ids.shape, tuple(tok.decode(t).shape)
        (torch.Size([2, 22]), (2, 3, 8, 8))
    """

    def __init__(self, config: HitaConfig):
        super().__init__()
        self.config = c = config
        self.encoder = Encoder(c.conv_config())
        self.decoder = Decoder(c.conv_config())
        self.encode_transformer = _EncodeTransformer(c)
        self.decode_transformer = _DecodeTransformer(c)
        self.quantize = VectorQuantizer(c.codebook_size, c.codebook_embed_dim, l2_norm=c.codebook_l2_norm)
        self.slot_quantize = VectorQuantizer(c.codebook_size, c.codebook_slots_embed_dim, l2_norm=c.codebook_l2_norm)
        self.quant_conv = nn.Conv2d(c.dim, c.codebook_embed_dim, 1)
        self.post_quant_conv = nn.Conv2d(c.codebook_embed_dim, c.dim, 1)
        self.pre_slots_quant = nn.Linear(c.dim, c.codebook_slots_embed_dim)
        self.post_slots_quant = nn.Linear(c.codebook_slots_embed_dim, c.dim)

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

    default_name = "hita"

    # ------------------------------------------------------------------ stages
    def _check_images(self, images: Any) -> torch.Tensor:
        from zoo.media.image import check_images

        check_images(images, size=self.image_size, model=self.name)
        p = self.quant_conv.weight
        return images.to(device=p.device, dtype=p.dtype)

    @torch.no_grad()
    def encode_latents(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Images -> ``(patch latents [B, codebook_embed_dim, g, g], holistic latents [B, n_carrier, slots_dim])``
        before quantisation."""
        x = self._check_images(images)
        z, carrier = self.encode_transformer(x, self.encoder(x))
        return self.quant_conv(z), self.pre_slots_quant(carrier)

    @torch.no_grad()
    def encode(self, images: torch.Tensor):
        """Images ``[B, 3, 336, 336]`` in [-1, 1] -> :class:`zoo.interfaces.Tokens` ids ``[B, 569]``
        (holistic first, ``meta["split"] = 128``)."""
        from zoo.interfaces import Tokens

        z, q = self.encode_latents(images)
        _, z_ids = self.quantize(z)
        _, q_ids = self.slot_quantize(q.transpose(1, 2)[..., None])
        ids = torch.cat([q_ids.flatten(1), z_ids.flatten(1)], dim=1)
        return Tokens(ids=ids, codebook_size=self.codebook_size, tokenizer=self.name,
                      meta={"split": self.config.n_carrier, "grid": (self.config.grid, self.config.grid)})

    def _ids(self, tokens: Any) -> torch.Tensor:
        from zoo.interfaces import Tokens, as_tokens

        if not isinstance(tokens, (Tokens, torch.Tensor)):
            raise TokenError(f"{self.name} decodes Tokens from its encode() or ids [B, {self.num_tokens}]; "
                             f"got {type(tokens).__name__}")
        if isinstance(tokens, Tokens) and tokens.tokenizer and tokens.tokenizer.split(".")[0] != "hita":
            raise TokenError(f"these tokens were made by {tokens.tokenizer!r}; {self.name} decodes its own tokens")
        tok = as_tokens(tokens, self.codebook_size, self.name)
        if tok.codebook_size != self.codebook_size:
            raise TokenError(f"tokens have codebook_size {tok.codebook_size}, {self.name} uses {self.codebook_size}")
        if tok.ids.dim() != 2 or tok.ids.shape[1] != self.num_tokens or bool((tok.lengths != self.num_tokens).any()):
            raise TokenError(f"{self.name} decodes all {self.num_tokens} ids per image ({self.config.n_carrier} holistic + "
                             f"{self.config.grid ** 2} patches), got shape {tuple(tok.ids.shape)}")
        return tok.ids.to(self.quant_conv.weight.device).long()

    @torch.no_grad()
    def decode(self, tokens: Any, clamp: bool = True) -> torch.Tensor:
        """Tokens (or ids ``[B, 569]``) -> images ``[B, 3, 336, 336]`` in [-1, 1]."""
        ids = self._ids(tokens)
        c = self.config
        b, g = ids.shape[0], c.grid
        try:
            slots = self.slot_quantize.get_codebook_entry(ids[:, :c.n_carrier].reshape(-1), (b, c.n_carrier, -1),
                                                          channel_first=False)
            z = self.quantize.get_codebook_entry(ids[:, c.n_carrier:].reshape(-1), (b, c.codebook_embed_dim, g, g))
        except (TypeError, ValueError) as exc:
            raise TokenError(f"{self.name}: {exc}") from exc
        h = self.post_quant_conv(z)
        out = self.decoder(self.decode_transformer(h, self.post_slots_quant(slots)))
        return out.clamp(-1.0, 1.0) if clamp else out
