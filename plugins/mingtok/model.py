"""MingTok-Vision: a continuous unified visual tokenizer (low-level encoder, causal semantic decoder,
pixel decoder), on zoo's pre-norm blocks (LayerNorm, qkv bias, SwiGLU or GELU MLP, no qk-norm).

* ``low_level_encoder``: 32x32 patches + a class token appended *last*, learned positions (bicubic
  resize with DINO's +0.1 offset at other square sizes), blocks, then
  ``out_proj(gelu(out_norm(x))) + mean over channel groups`` -> ``[B, 257, 32]``.
* ``semantic_decoder``: ``in_proj(z) + z`` repeated per channel, causal blocks, LayerNorm; its
  first 256 outputs are the semantic features (what Ming-UniVision understands).
* ``pixel_decoder``: ``sem_to_pix`` splits each 32-px feature into 2x2 16-px tokens, blocks
  (no position embedding, as released), LayerNorm, ``head`` to pixels, clamped to [-1, 1].

Latents: :class:`zoo.interfaces.Latents` ``[B, 257, 32]`` = ``(z - mean) / scaling_factor``
(the released statistics), 256 patch latents row-major then the class-token latent;
``meta["grid"]`` is not set (a 1-D sequence: the semantic decoder is causal).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from zoo.errors import MediaError, TokenError
from zoo.model import ZooModel
from zoo.nn.prenorm import BlockConfig, PreNormBlock

from .config import MingTokConfig, swiglu_hidden

__all__ = ["MingTok"]


def _block(dim: int, ffn: str) -> PreNormBlock:
    swiglu = ffn != "mlp"
    return PreNormBlock(BlockConfig(dim=dim, heads=dim // 64, mlp_hidden=swiglu_hidden(dim) if swiglu else 4 * dim,
                                    norm="layer", norm_eps=1e-6, mlp="swiglu" if swiglu else "gelu", mlp_bias=True,
                                    qkv_bias=True, proj_bias=True))


class _PatchEmbed(nn.Module):
    def __init__(self, patch: int, dim: int):
        super().__init__()
        self.proj = nn.Conv2d(3, dim, kernel_size=patch, stride=patch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)


class LowLevelEncoder(nn.Module):
    def __init__(self, cfg: MingTokConfig):
        super().__init__()
        d, self.patch, self.out_dim = cfg.encoder_dim, cfg.patch_size, cfg.latent_dim
        n = (cfg.img_size // cfg.patch_size) ** 2
        self.patch_embed = _PatchEmbed(cfg.patch_size, d)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d))
        self.pos_embed = nn.Parameter(torch.zeros(1, n + 1, d))
        self.blocks = nn.ModuleList(_block(d, cfg.encoder_ffn) for _ in range(cfg.encoder_depth))
        self.out_norm = nn.LayerNorm(d, eps=1e-6)
        self.out_proj = nn.Linear(d, cfg.latent_dim)

    def positions(self, side: int) -> torch.Tensor:
        """The position table for a ``side x side`` patch grid (+ the class token last)."""
        n = self.pos_embed.shape[1] - 1
        m = int(math.sqrt(n))
        if side == m:
            return self.pos_embed
        pos = self.pos_embed.float()
        dim = pos.shape[-1]
        grid = F.interpolate(pos[:, :-1].reshape(1, m, m, dim).permute(0, 3, 1, 2), mode="bicubic", antialias=False,
                             scale_factor=((side + 0.1) / m, (side + 0.1) / m))
        grid = grid.permute(0, 2, 3, 1).reshape(1, -1, dim)
        return torch.cat([grid, pos[:, -1:]], dim=1).to(self.pos_embed.dtype)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(images)
        x = torch.cat([x, self.cls_token.expand(x.shape[0], -1, -1)], dim=1)
        x = x + self.positions(images.shape[-1] // self.patch)
        for block in self.blocks:
            x = block(x)
        shortcut = x.unflatten(-1, (self.out_dim, -1)).mean(-1)
        return shortcut + self.out_proj(F.gelu(self.out_norm(x)))


class SemanticDecoder(nn.Module):
    def __init__(self, cfg: MingTokConfig):
        super().__init__()
        d = cfg.semantic_dim
        self.repeat = d // cfg.latent_dim
        self.in_proj = nn.Linear(cfg.latent_dim, d)
        self.blocks = nn.ModuleList(_block(d, cfg.semantic_ffn) for _ in range(cfg.semantic_depth))
        self.norm = nn.LayerNorm(d, eps=1e-6)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Raw latents ``[B, n, latent_dim]`` (patches then the class token) -> normed features ``[B, n, dim]``."""
        x = self.in_proj(z) + z.repeat_interleave(self.repeat, dim=-1)
        for block in self.blocks:
            x = block(x, causal=True)
        return self.norm(x)


class PixelDecoder(nn.Module):
    def __init__(self, cfg: MingTokConfig):
        super().__init__()
        d, p = cfg.pixel_dim, cfg.pixel_patch_size
        self.patch = p
        self.blocks = nn.ModuleList(_block(d, "mlp") for _ in range(cfg.pixel_depth))
        self.norm = nn.LayerNorm(d, eps=1e-6)
        self.head = nn.Linear(d, p * p * 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x))


class MingTok(ZooModel, nn.Module):
    """``encode(images) -> Latents``, ``decode(latents) -> images`` (see the module doc).

    Example:
        >>> cfg = MingTokConfig(img_size=64, patch_size=16, encoder_depth=1, encoder_dim=64, latent_dim=8,
        ...                     semantic_patch_size=16, semantic_dim=64, semantic_depth=1, pixel_patch_size=8,
        ...                     pixel_depth=1, pixel_dim=64, image_size=64)
        >>> tok = MingTok(cfg).eval()
        >>> z = tok.encode(torch.zeros(2, 3, 64, 64))
        >>> tuple(z.values.shape), tuple(tok.decode(z).shape)
        ((2, 17, 8), (2, 3, 64, 64))
    """

    def __init__(self, config: MingTokConfig):
        super().__init__()
        self.config = config
        self.low_level_encoder = LowLevelEncoder(config)
        self.semantic_decoder = SemanticDecoder(config)
        self.pixel_decoder = PixelDecoder(config)
        self.split = config.semantic_patch_size // config.pixel_patch_size
        self.sem_to_pix = nn.Linear(config.semantic_dim, config.pixel_dim * self.split ** 2)

    # ------------------------------------------------------------------ facts
    @property
    def image_size(self) -> int:
        return int(self.config.image_size)

    @property
    def latent_channels(self) -> int:
        return int(self.config.latent_dim)

    def num_latents(self, side: int | None = None) -> int:
        """Latents per image at ``side`` pixels (default ``image_size``): patches + the class token."""
        return ((side or self.image_size) // self.config.patch_size) ** 2 + 1

    def describe_facts(self) -> dict[str, Any]:
        return {"latents": f"{self.num_latents()}x{self.latent_channels}"}

    default_name = "mingtok"

    # ------------------------------------------------------------------ stages
    def encode_raw(self, images: torch.Tensor) -> torch.Tensor:
        """Square images ``[B, 3, S, S]`` in [-1, 1] (S a multiple of the patch size) -> raw latents ``[B, n+1, C]``."""
        from zoo.media.image import check_images

        check_images(images, multiple_of=self.config.patch_size, model=self.name)
        if images.shape[-1] != images.shape[-2]:
            raise MediaError(f"{self.name} takes square images (its decoders assume a square grid), got "
                             f"{images.shape[-2]}x{images.shape[-1]}; center-crop them first")
        p = self.sem_to_pix.weight
        return self.low_level_encoder(images.to(device=p.device, dtype=p.dtype))

    def semantic_features(self, latents: Any) -> torch.Tensor:
        """Latents (normalised, as :meth:`encode` gives them) -> the semantic decoder's patch features
        ``[B, n, semantic_dim]`` (the class token's output dropped)."""
        z = self._raw(latents)
        return self.semantic_decoder(z)[:, :-1]

    def pixels(self, features: torch.Tensor) -> torch.Tensor:
        """Semantic patch features ``[B, n, semantic_dim]`` (a square grid) -> images ``[B, 3, S, S]`` (not clamped)."""
        b, n, _ = features.shape
        side = math.isqrt(n)
        s, p = self.split, self.config.pixel_patch_size
        x = self.sem_to_pix(features).view(b, side, side, s, s, -1).permute(0, 1, 3, 2, 4, 5).reshape(b, n * s * s, -1)
        x = self.pixel_decoder(x)
        g = side * s
        return x.view(b, g, g, p, p, 3).permute(0, 5, 1, 3, 2, 4).reshape(b, 3, g * p, g * p)

    def _raw(self, latents: Any) -> torch.Tensor:
        from zoo.interfaces import Latents, as_latents

        c = self.latent_channels
        if not isinstance(latents, (Latents, torch.Tensor)):
            raise TokenError(f"{self.name} decodes the Latents of its encode() or [B, n+1, {c}] tensors; got "
                             f"{type(latents).__name__}")
        lat = as_latents(latents, dim=c, tokenizer=self.name)
        n = lat.max_length
        side_made = lat.meta.get("grid_side")
        if side_made is not None and (n != int(side_made) ** 2 + 1 or bool((lat.lengths != n).any())):
            raise TokenError(f"{self.name} decodes whole latent sequences ({int(side_made) ** 2 + 1} for the "
                             f"{side_made}x{side_made} grid encoded), got lengths {lat.lengths.tolist()}")
        side = math.isqrt(max(n - 1, 0))
        if n < 2 or side * side != n - 1:
            raise TokenError(f"{self.name} decodes a square grid of patch latents plus the class-token latent "
                             f"(e.g. {self.num_latents()}), got {n}")
        if bool((lat.lengths != n).any()):
            raise TokenError(f"{self.name} decodes whole latent sequences ({n}), got lengths {lat.lengths.tolist()}")
        if not bool(torch.isfinite(lat.values).all()):
            raise TokenError("latents must be finite (NaN or Inf found)")
        p = self.sem_to_pix.weight
        return lat.values.to(device=p.device, dtype=p.dtype) * self.config.scaling_factor + self.config.mean

    # ------------------------------------------------------------------ interface
    @torch.no_grad()
    def encode(self, images: torch.Tensor):
        """Square images ``[B, 3, S, S]`` in [-1, 1] -> :class:`zoo.interfaces.Latents` ``[B, (S/32)^2 + 1, 32]``,
        normalised ``(z - mean) / scaling_factor``."""
        from zoo.interfaces import Latents

        z = (self.encode_raw(images) - self.config.mean) / self.config.scaling_factor
        side = images.shape[-1] // self.config.patch_size
        return Latents(values=z.contiguous(), tokenizer=self.name, meta={"class_token": "last", "grid_side": side})

    @torch.no_grad()
    def decode(self, latents: Any, clamp: bool = True) -> torch.Tensor:
        """Latents from :meth:`encode` (or a ``[B, n+1, 32]`` tensor) -> images ``[B, 3, S, S]`` in [-1, 1]."""
        out = self.pixels(self.semantic_features(latents))
        return out.clamp(-1.0, 1.0) if clamp else out
