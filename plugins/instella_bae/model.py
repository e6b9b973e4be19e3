"""Instella-T2I's binary autoencoder (BAE): an image -> 128 tokens of 64 bits -> an image of any size.

Encoder: 16x16 patch conv -> ``[latent tokens | patches]`` -> Llama-style blocks (RMSNorm,
qk RMS norm, SwiGLU, no biases; Flux 3-axis RoPE: latent tokens on axis 0, patch rows/columns on
axes 1-2, rotated with Llama's ``rotate_half`` on Flux's interleaved tables, as the reference
does) with a DC-style 2x downsampling of the patch grid after the configured blocks -> RMSNorm +
linear on the latent tokens -> bit logits (``quantizer.proj``) -> bits ``sigmoid > 0.5``.
Decoder: ``bits @ quantizer.embed`` -> RMSNorm + linear -> ``[latents | mask tokens]`` on a half
grid -> blocks with 2x upsampling -> RMSNorm -> ``to_pixel`` per patch.

With ``scale`` (the released pipelines' ``bae_scale`` 1024) patch positions are stretched to the
same range at every resolution: ``arange(H) / (H - 1) * (scale / patch - 1)``.

Tokens: :class:`zoo.interfaces.Tokens` with ``ids`` ``[B, 64, 128]`` of 0/1 (one bit plane per
"codebook", ``codebook_size=2``) and ``meta["size"]`` = the (H, W) encoded;
:func:`zoo.nn.binary.bits_to_ids` packs them into integers when wanted.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from zoo.errors import TokenError
from zoo.model import ZooModel
from zoo.nn.binary import BinaryQuantizer, binarize
from zoo.nn.blocks import ScaleRMSNorm
from zoo.nn.prenorm import BlockConfig, PreNormBlock
from zoo.nn.rope import rope_tables

from .config import InstellaBAEConfig

__all__ = ["InstellaBAE", "DCDown", "DCUp"]


def _block(dim: int, heads: int, ratio: float) -> PreNormBlock:
    return PreNormBlock(BlockConfig(dim=dim, heads=heads, mlp_hidden=int(dim * ratio), norm="rms", norm_eps=1e-6,
                                    mlp="swiglu", mlp_bias=False, qkv_bias=False, proj_bias=False, qk_norm="rms",
                                    qk_norm_eps=1e-6, rope_rotation="half"))


class DCDown(nn.Module):
    """``conv3x3/2(x) + mean over 2x2`` (the reference's ``DCDownBlock2d`` with shortcut): ``[B, H, W, C] -> [B, HW/4, C]``."""

    def __init__(self, dim: int):
        super().__init__()
        self.conv = nn.Conv2d(dim, dim, kernel_size=3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 3, 1, 2)
        y = F.pixel_unshuffle(x, 2).unflatten(1, (-1, 4)).mean(dim=2)
        return (self.conv(x) + y).flatten(2).transpose(1, 2)


class DCUp(nn.Module):
    """``pixel_shuffle(conv3x3(x)) + nearest 2x`` (the reference's ``DCUpBlock2d``): ``[B, H, W, C] -> [B, 4HW, C]``."""

    def __init__(self, dim: int):
        super().__init__()
        self.conv = nn.Conv2d(dim, dim * 4, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 3, 1, 2)
        y = F.pixel_shuffle(x.repeat_interleave(4, dim=1), 2)
        return (F.pixel_shuffle(self.conv(x), 2) + y).flatten(2).transpose(1, 2)


def _positions(n_latent: int, h: int, w: int, scale: Optional[float], device: torch.device) -> torch.Tensor:
    """``[n_latent + h*w, 3]`` float32 ids: latent index on axis 0, patch row/column on axes 1-2
    (stretched to ``scale - 1`` when set), computed in float32 like the reference."""
    ids = torch.zeros(n_latent + h * w, 3)
    ids[:n_latent, 0] = torch.arange(n_latent).float()
    hi, wi = torch.arange(h), torch.arange(w)
    if scale is not None:
        hi = hi / (h - 1) * (scale - 1)
        wi = wi / (w - 1) * (scale - 1)
    grid = torch.zeros(h, w, 3)
    grid[..., 1] = grid[..., 1] + hi[:, None]
    grid[..., 2] = grid[..., 2] + wi[None, :]
    ids[n_latent:] = grid.reshape(h * w, 3)
    return ids.to(device)


class _Tower(nn.Module):
    """Blocks with grid resampling after the listed ones; latent tokens first in the sequence."""

    def _tables(self, n_latent: int, h: int, w: int, scale: Optional[float], device: torch.device):
        return rope_tables(_positions(n_latent, h, w, scale, device), self.axes, 10000.0, dtype=torch.float64)

    def _run(self, x: torch.Tensor, n_latent: int, h: int, w: int, scale: Optional[float], resample: nn.ModuleList,
             where: Sequence[int], factor: float) -> tuple[torch.Tensor, int, int]:
        rope = self._tables(n_latent, h, w, scale, x.device)
        k = 0
        for i, block in enumerate(self.transformer_blocks):
            x = block(x, rope=rope)
            if i in where:
                grid = x[:, n_latent:].unflatten(1, (h, w))
                x = torch.cat([x[:, :n_latent], resample[k](grid)], dim=1)
                k += 1
                h, w = int(h * factor), int(w * factor)
                if scale is not None:
                    scale = scale // 2 if factor < 1 else scale * 2
                rope = self._tables(n_latent, h, w, scale, x.device)
        return x, h, w


class BAEEncoder(_Tower):
    def __init__(self, cfg: InstellaBAEConfig):
        super().__init__()
        d = cfg.encoder_dim
        self.axes = list(cfg.axes_dims_rope)
        self.where = list(cfg.downsample_idx)
        self.patch_embedder = nn.Conv2d(cfg.in_channels, d, kernel_size=cfg.patch_size, stride=cfg.patch_size)
        self.transformer_blocks = nn.ModuleList(_block(d, cfg.encoder_num_heads, cfg.mlp_ratio) for _ in range(cfg.encoder_layers))
        if self.where:
            self.down_layers = nn.ModuleList(DCDown(d) for _ in self.where)
        self.norm_out = ScaleRMSNorm(d, weight=True, eps=1e-6)
        self.proj_out = nn.Linear(d, d)
        self.latent_tokens = nn.Parameter(torch.zeros(1, cfg.num_latent_tkns, d))

    def forward(self, images: torch.Tensor, scale: Optional[float]) -> torch.Tensor:
        x = self.patch_embedder(images)
        b, _, h, w = x.shape
        x = torch.cat([self.latent_tokens.expand(b, -1, -1), x.flatten(2).transpose(1, 2)], dim=1)
        n = self.latent_tokens.shape[1]
        x, _, _ = self._run(x, n, h, w, scale, getattr(self, "down_layers", nn.ModuleList()), self.where, 0.5)
        return self.proj_out(self.norm_out(x[:, :n]))


class BAEDecoder(_Tower):
    def __init__(self, cfg: InstellaBAEConfig):
        super().__init__()
        d = cfg.decoder_dim
        self.axes = list(cfg.axes_dims_rope)
        self.where = list(cfg.upsample_idx)
        self.input_layer = nn.Sequential(ScaleRMSNorm(cfg.encoder_dim, weight=True, eps=1e-6), nn.Linear(cfg.encoder_dim, d))
        self.transformer_blocks = nn.ModuleList(_block(d, cfg.decoder_num_heads, cfg.mlp_ratio) for _ in range(cfg.decoder_layers))
        self.up_layers = nn.ModuleList(DCUp(d) for _ in self.where)
        self.norm_out = ScaleRMSNorm(d, weight=True, eps=1e-6)
        self.mask_tokens = nn.Parameter(torch.zeros(1, 1, d))

    def forward(self, latents: torch.Tensor, h: int, w: int, scale: Optional[float]) -> torch.Tensor:
        """``latents`` ``[B, n, enc_dim]`` -> patch features ``[B, h*w, dec_dim]`` for an ``h x w`` patch grid."""
        x = self.input_layer(latents)
        n = x.shape[1]
        f = 2 ** len(self.where)
        h0, w0 = h // f, w // f
        s0 = None if scale is None else scale // f
        x = torch.cat([x, self.mask_tokens.expand(x.shape[0], h0 * w0, -1)], dim=1)
        x, _, _ = self._run(x, n, h0, w0, s0, self.up_layers, self.where, 2.0)
        return self.norm_out(x[:, n:])


class InstellaBAE(ZooModel, nn.Module):
    """``encode(images) -> Tokens`` (bits), ``decode(tokens, size=None) -> images`` (see the module doc).

    Example:
        >>> cfg = InstellaBAEConfig(patch_size=4, encoder_layers=1, encoder_head_dim=16, encoder_num_heads=2,
        ...                         decoder_layers=2, decoder_head_dim=16, decoder_num_heads=2, num_latent_tkns=8,
        ...                         codebook_size=12, axes_dims_rope=[4, 6, 6], downsample_idx=[0], upsample_idx=[0],
        ...                         scale=32, image_size=32)
        >>> bae = InstellaBAE(cfg).eval()
        >>> tokens = bae.encode(torch.zeros(2, 3, 32, 32))
        >>> tuple(tokens.ids.shape), tokens.codebook_size
        ((2, 12, 8), 2)
        >>> tuple(bae.decode(tokens).shape), tuple(bae.decode(tokens, size=(16, 48)).shape)
        ((2, 3, 32, 32), (2, 3, 16, 48))
    """

    def __init__(self, config: InstellaBAEConfig):
        super().__init__()
        self.config = config
        self.encoder = BAEEncoder(config)
        self.decoder = BAEDecoder(config)
        self.to_pixel = nn.Linear(config.decoder_dim, config.patch_size ** 2 * config.in_channels)
        self.quantizer = BinaryQuantizer(config.bits, config.encoder_dim)

    # ------------------------------------------------------------------ facts
    @property
    def image_size(self) -> int:
        return int(self.config.image_size)

    @property
    def num_tokens(self) -> int:
        return int(self.config.num_latent_tkns)

    @property
    def bits(self) -> int:
        return self.config.bits

    def describe_facts(self) -> dict[str, Any]:
        return {"bits": self.bits, "any_size": f"multiples of {self.config.multiple}"}

    default_name = "instella_bae"

    # ------------------------------------------------------------------ stages
    def _check_size(self, h: int, w: int, what: str) -> None:
        from zoo.errors import MediaError

        m = self.config.multiple
        if h % m or w % m or h < 2 * m or w < 2 * m:
            raise MediaError(f"{self.name} {what} images whose sides are multiples of {m} (at least {2 * m}), got {h}x{w}")

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        """Images ``[B, 3, H, W]`` in [-1, 1] -> bit logits ``[B, 128, 64]`` (bits are ``logits > 0``)."""
        from zoo.media.image import check_images

        check_images(images, model=self.name)
        self._check_size(*images.shape[-2:], "encodes")
        p = self.to_pixel.weight
        return self.quantizer.logits(self.encoder(images.to(device=p.device, dtype=p.dtype), self.config.rope_scale_tokens))

    def decode_bits(self, bits: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
        """Bits ``[B, 128, 64]`` (0/1) -> images ``[B, 3, H, W]`` (raw decoder output, not clamped)."""
        h, w = (int(v) for v in size)
        self._check_size(h, w, "decodes to")
        p, c = self.config.patch_size, self.config.in_channels
        gh, gw = h // p, w // p
        z = self.quantizer.embed_bits(bits.to(self.quantizer.embed.device))
        x = self.to_pixel(self.decoder(z, gh, gw, self.config.rope_scale_tokens))
        return x.view(x.shape[0], gh, gw, p, p, c).permute(0, 5, 1, 3, 2, 4).reshape(x.shape[0], c, h, w)

    # ------------------------------------------------------------------ interface
    @torch.no_grad()
    def encode(self, images: torch.Tensor):
        """Images ``[B, 3, H, W]`` in [-1, 1] (sides multiples of 32, up to 1024 trained) -> Tokens
        ``ids [B, 64, 128]`` of bits."""
        from zoo.interfaces import Tokens

        bits = binarize(self.logits(images))
        return Tokens(ids=bits.to(torch.uint8).transpose(1, 2).contiguous(), codebook_size=2, tokenizer=self.name,
                      meta={"size": tuple(int(v) for v in images.shape[-2:]), "bits": self.bits})

    def _bits(self, tokens: Any) -> torch.Tensor:
        from zoo.interfaces import Tokens, as_tokens

        n, q = self.num_tokens, self.bits
        if isinstance(tokens, torch.Tensor) and tokens.dim() == 3 and tokens.shape[1:] == (n, q):
            if tokens.is_floating_point() and not bool(((tokens == 0) | (tokens == 1)).all()):
                raise TokenError(f"{self.name} decodes bits (0 or 1); got other values")
            return tokens.float()
        if not isinstance(tokens, (Tokens, torch.Tensor)):
            raise TokenError(f"{self.name} decodes the Tokens of its encode() or bits [B, {n}, {q}]; got "
                             f"{type(tokens).__name__}")
        tok = as_tokens(tokens, codebook_size=2, tokenizer=self.name)
        if tok.ids.dim() != 3 or tok.ids.shape[1] != q:
            raise TokenError(f"{self.name} tokens are {q} bit planes of {n} tokens ([B, {q}, {n}]), got "
                             f"{tuple(tok.ids.shape)}")
        if tok.ids.shape[2] != n or bool((tok.lengths != n).any()):
            raise TokenError(f"{self.name} decodes all {n} tokens of an image, got lengths {tok.lengths.tolist()}")
        return tok.ids.transpose(1, 2).float()

    @torch.no_grad()
    def decode(self, tokens: Any, size: Sequence[int] | int | None = None, clamp: bool = True) -> torch.Tensor:
        """Tokens (or bits ``[B, 128, 64]``) -> images ``[B, 3, H, W]`` in [-1, 1]; ``size`` defaults to
        the size encoded (``meta["size"]``) or the card's ``image_size``. The decoder makes any size
        (multiples of 32) from the same tokens."""
        bits = self._bits(tokens)
        if size is None:
            size = getattr(tokens, "meta", {}).get("size") or (self.image_size, self.image_size)
        if isinstance(size, int):
            size = (size, size)
        out = self.decode_bits(bits, size)
        return out.clamp(-1.0, 1.0) if clamp else out
