"""FlexTok's VAE: diffusers' ``AutoencoderKL``, now zoo's shared one (:mod:`zoo.nn.autoencoder_kl`).

State-dict keys, shapes and outputs equal diffusers' ``AutoencoderKL`` (``DownEncoderBlock2D``
/ ``UpDecoderBlock2D`` blocks, one mid-block self-attention), so the published
``EPFL-VILAB/flextok_vae_c{4,8,16}`` files (``config.json`` +
``diffusion_pytorch_model.safetensors``) load unchanged with ``strict=True``. The
implementation is the conv autoencoder core every family shares (:mod:`zoo.nn.conv_ae`,
kernels in :mod:`zoo.nn.conv_ops`); this module adds FlexTok's published configs
(:func:`flextok_vae_config`) and keeps the names importable from their old place.

Semantics, as ml-flextok uses them: ``encode`` returns the posterior mean (``.mode()``) or,
with ``sample=True``, ``mean + std * randn`` drawn exactly as diffusers draws it; the
*unscaled* latents are returned, like diffusers' ``AutoencoderKL`` (FlexTok's wrapper then
multiplies by ``scaling_factor`` and divides by it before ``decode``).

Example:
    >>> vae = AutoencoderKL.from_config(flextok_vae_config(16))
    >>> vae.vae_config.latent_channels, vae.downsample_factor
    (16, 8)
"""

from __future__ import annotations

from zoo.nn.autoencoder_kl import (
    AutoencoderKL,
    VAEConfig,
    convert_diffusers_state_dict,
    load_state_dict_strict,
    load_vae,
    parse_vae_config,
)

from .vae_config import ConfigError, flextok_vae_config

__all__ = [
    "AutoencoderKL",
    "ConfigError",
    "VAEConfig",
    "convert_diffusers_state_dict",
    "flextok_vae_config",
    "load_state_dict_strict",
    "load_vae",
    "parse_vae_config",
]
