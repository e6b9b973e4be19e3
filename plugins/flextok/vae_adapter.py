"""The one adapter between FlexTok and its VAE (:mod:`zoo_plugins.flextok.vae`).

It mirrors the reference's ``StableDiffusionVAE`` wrapper: the diffusers-layout autoencoder
lives under the attribute ``vae`` (so the FlexTok state dict's ``vae.vae.*`` keys load
unchanged), latents are the posterior mean (or a sample when the checkpoint's config says
``sample_posterior``) multiplied by ``scaling_factor``, and decoding divides by it.

Example:
    >>> from zoo_plugins.flextok.config import VAEConfig
    >>> w = VAEWrapper(VAEConfig(latent_channels=16, scaling_factor=0.5, block_out_channels=[32, 32],
    ...                          norm_num_groups=8))
    >>> w.downsample_factor
    2
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .config import VAEConfig

__all__ = ["VAEWrapper", "diffusers_config"]


def diffusers_config(cfg: VAEConfig) -> dict[str, Any]:
    """The diffusers ``config.json`` dict of the VAE described by ``cfg`` (ml-flextok's base config)."""
    n = len(cfg.block_out_channels)
    out: dict[str, Any] = {
        "_class_name": "AutoencoderKL",
        "act_fn": "silu",
        "block_out_channels": list(cfg.block_out_channels),
        "down_block_types": ["DownEncoderBlock2D"] * n,
        "up_block_types": ["UpDecoderBlock2D"] * n,
        "in_channels": cfg.in_channels,
        "out_channels": cfg.out_channels,
        "latent_channels": cfg.latent_channels,
        "layers_per_block": cfg.layers_per_block,
        "norm_num_groups": cfg.norm_num_groups,
        "sample_size": 1024,
    }
    out.update({k: v for k, v in dict(cfg.extra).items() if not k.startswith("_")})
    if cfg.scaling_factor is not None:
        out["scaling_factor"] = cfg.scaling_factor
    return out


class VAEWrapper(nn.Module):
    """FlexTok's view of the VAE: ``encode(images) -> scaled latents``, ``decode(latents) -> images``."""

    def __init__(self, cfg: VAEConfig, vae_config: dict[str, Any] | None = None):
        super().__init__()
        from .vae import AutoencoderKL  # the plugin's own diffusers-compatible VAE

        self.cfg = cfg
        self.vae = AutoencoderKL.from_config(vae_config or diffusers_config(cfg))
        if cfg.learnable_logvar:
            self.logvar = nn.Parameter(torch.zeros(()))

    @property
    def scaling_factor(self) -> float:
        """The checkpoint's ``scaling_factor``, else the VAE config.json's (diffusers default 0.18215)."""
        return float(self.cfg.scaling_factor if self.cfg.scaling_factor is not None else self.vae.scaling_factor)

    @property
    def downsample_factor(self) -> int:
        return int(self.vae.downsample_factor)

    def encode(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        z = self.vae.encode(images, sample=self.cfg.sample_posterior, generator=generator)
        return z * self.scaling_factor

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        return self.vae.decode(latents / self.scaling_factor)
