"""The KL-VAE tokenizer module (MAR KL-16, VA-VAE): zoo's AutoencoderKL behind the tokenizer interface.

Keys: ``vae.*`` = :class:`zoo.nn.autoencoder_kl.AutoencoderKL` (zoo's conv-core names; the
builders convert the LDM layout), plus ``latent_mean`` / ``latent_std`` when the release ships
latent statistics (VA-VAE's ``latents_stats.pt``).

Latents: :class:`zoo.interfaces.Latents` with values ``[B, h*w, C]`` (row-major over the latent
grid) and ``meta["grid"] = (h, w)``; they are the VAE's *raw* latents (the posterior mode, or a
sample). :meth:`KLVAE.normalize_latents` gives what the generators were trained on.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from zoo.errors import TokenError
from zoo.model import ZooModel
from zoo.nn.autoencoder_kl import AutoencoderKL
from zoo.nn.posterior import DiagonalGaussian, GeneratorArg

from .config import KLVAEConfig

__all__ = ["KLVAE"]


class KLVAE(ZooModel, nn.Module):
    """A KL autoencoder as a continuous tokenizer: ``encode(images) -> Latents``, ``decode(latents) -> images``.

    Example:
        >>> cfg = KLVAEConfig(embed_dim=4, z_channels=4, ch=32, ch_mult=[1, 2], num_res_blocks=1, resolution=16,
        ...                   attn_resolutions=[8], latent_multiplier=0.5)
        >>> vae = KLVAE(cfg).eval()
        >>> z = vae.encode(torch.zeros(2, 3, 16, 24))
        >>> tuple(z.values.shape), z.meta["grid"]
        ((2, 96, 4), (8, 12))
        >>> tuple(vae.decode(z).shape)
        (2, 3, 16, 24)
        >>> bool(torch.equal(vae.denormalize_latents(vae.normalize_latents(z)).values, z.values))
        True
    """

    def __init__(self, config: KLVAEConfig):
        super().__init__()
        self.config = config
        self.vae = AutoencoderKL(config.kl_config())
        c = config.embed_dim
        persistent = bool(config.latent_stats)
        self.register_buffer("latent_mean", torch.zeros(1, c, 1, 1), persistent=persistent)
        self.register_buffer("latent_std", torch.ones(1, c, 1, 1), persistent=persistent)

    # ------------------------------------------------------------------ facts
    @property
    def downsample_factor(self) -> int:
        return self.config.downsample_factor

    @property
    def latent_channels(self) -> int:
        return int(self.config.embed_dim)

    @property
    def image_size(self) -> int:
        """The training resolution (the default size ``zoo reconstruct`` resizes to)."""
        return int(self.config.image_size)

    default_name = "kl_vae"

    # ------------------------------------------------------------------ stages
    def posterior(self, images: torch.Tensor) -> DiagonalGaussian:
        """Images ``[B, 3, H, W]`` in [-1, 1] (H, W multiples of the downsampling factor) -> the posterior."""
        from zoo.media.image import check_images

        check_images(images, multiple_of=self.downsample_factor, model=self.name)
        p = self.vae.quant_conv.weight if self.vae.quant_conv is not None else next(self.parameters())
        return self.vae.posterior(images.to(device=p.device, dtype=p.dtype))

    def encode_latents(self, images: torch.Tensor, sample: bool = False, generator: GeneratorArg = None) -> torch.Tensor:
        """Images -> raw latents ``[B, C, H/f, W/f]``: the posterior mode, or a sample drawn from ``generator``."""
        post = self.posterior(images)
        return (post.sample(generator) if sample else post.mode()).contiguous()

    # ------------------------------------------------------------------ interface
    @torch.no_grad()
    def encode(self, images: torch.Tensor, sample: bool = False, generator: GeneratorArg = None):
        """Images ``[B, 3, H, W]`` in [-1, 1] -> :class:`zoo.interfaces.Latents` ``[B, h*w, C]`` with
        ``meta["grid"]``. The posterior mode by default; ``sample=True`` draws
        ``mean + std * noise`` with noise from ``generator`` (a ``torch.Generator`` or one per image)."""
        from zoo.interfaces import Latents

        z = self.encode_latents(images, sample=sample, generator=generator)
        b, c, h, w = z.shape
        return Latents(values=z.flatten(2).transpose(1, 2).contiguous(), tokenizer=self.name, meta={"grid": (h, w)})

    def _grid_tensor(self, latents: Any) -> torch.Tensor:
        """Latents | [B, C, h, w] | [B, h*w, C] (square) -> [B, C, h, w]."""
        from zoo.interfaces import Latents, as_latents

        c = self.latent_channels
        if isinstance(latents, torch.Tensor) and latents.dim() == 4:
            if not latents.is_floating_point():
                from zoo.errors import InputTypeError

                raise InputTypeError(f"latents must be a float tensor, got {latents.dtype}")
            if latents.shape[1] != c:
                raise TokenError(f"{self.name} decodes latents [B, {c}, h, w], got {tuple(latents.shape)}")
            if 0 in latents.shape or not bool(torch.isfinite(latents).all()):
                raise TokenError(f"latents must be non-empty and finite, got shape {tuple(latents.shape)}")
            return latents
        if not isinstance(latents, (Latents, torch.Tensor)):
            raise TokenError(f"{self.name} decodes Latents from its encode(), [B, {c}, h, w] or [B, h*w, {c}] "
                             f"tensors; got {type(latents).__name__}")
        lat = as_latents(latents, dim=c, tokenizer=self.name)
        grid = lat.meta.get("grid") if isinstance(latents, Latents) else None
        n = lat.max_length
        if bool((lat.lengths != n).any()):
            raise TokenError(f"{self.name} decodes whole latent grids, got lengths {lat.lengths.tolist()}")
        if grid is None:
            side = int(round(n ** 0.5))
            if side * side != n:
                raise TokenError(f"{n} latents are not a square grid; pass the Latents from encode() (they carry "
                                 "meta['grid']) or a [B, C, h, w] tensor")
            grid = (side, side)
        h, w = int(grid[0]), int(grid[1])
        if h * w > n:
            raise TokenError(f"{self.name} decodes whole latent grids: a {h}x{w} grid needs {h * w} latents, got {n}")
        if h * w != n:
            raise TokenError(f"grid {(h, w)} does not hold {n} latents")
        return lat.values.transpose(1, 2).reshape(lat.batch_size, c, h, w)

    @torch.no_grad()
    def decode(self, latents: Any, clamp: bool = True) -> torch.Tensor:
        """Raw latents (``Latents``, ``[B, C, h, w]`` or square ``[B, h*w, C]``) -> images
        ``[B, 3, h*f, w*f]`` in [-1, 1] (clamped unless ``clamp=False``)."""
        z = self._grid_tensor(latents)
        out = self.vae.decode(z.to(device=self.latent_std.device))
        return out.clamp(-1.0, 1.0) if clamp else out

    # ------------------------------------------------------------------ normalisation
    def _map_latents(self, latents: Any, fn: Any) -> Any:
        from dataclasses import replace

        from zoo.interfaces import Latents

        if isinstance(latents, Latents):
            z = self._grid_tensor(latents)
            out = fn(z)
            return replace(latents, values=out.flatten(2).transpose(1, 2).contiguous())
        return fn(self._grid_tensor(latents))

    def normalize_latents(self, latents: Any) -> Any:
        """Raw latents -> what the generators train on: ``(z - latent_mean) / latent_std * latent_multiplier``.

        MAR (``mar_vae.kl16``): ``z * 0.2325`` (its ``engine_mar.py``); VA-VAE (``va_vae.f16d32``):
        ``(z - mean) / std`` with the channel statistics of ``latents_stats.pt`` and LightningDiT's
        ``latent_multiplier`` 1.0. Takes and returns ``Latents`` or ``[B, C, h, w]`` tensors.
        """
        m = float(self.config.latent_multiplier)
        return self._map_latents(latents, lambda z: (z - self.latent_mean.to(z)) / self.latent_std.to(z) * m)

    def denormalize_latents(self, latents: Any) -> Any:
        """The inverse of :meth:`normalize_latents`: generator samples -> raw latents for :meth:`decode`."""
        m = float(self.config.latent_multiplier)
        return self._map_latents(latents, lambda z: z / m * self.latent_std.to(z) + self.latent_mean.to(z))
