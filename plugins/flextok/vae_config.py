"""FlexTok's VAE config: diffusers' ``AutoencoderKL`` ``config.json`` (typed in core) and the
reconstructed ``config.json`` of the published ``EPFL-VILAB/flextok_vae_c{4,8,16}``.

The typed config and its parser live in core (:mod:`zoo.nn.autoencoder_kl`): every family's
KL-VAE shares them. :func:`flextok_vae_config` is FlexTok's own.

Example:
    >>> cfg = parse_vae_config(flextok_vae_config(16))
    >>> cfg.latent_channels, cfg.downsample_factor
    (16, 8)
"""

from __future__ import annotations

from typing import Any

from zoo.errors import ConfigError
from zoo.nn.autoencoder_kl import VAEConfig, parse_vae_config

__all__ = ["ConfigError", "VAEConfig", "flextok_vae_config", "parse_vae_config"]


def flextok_vae_config(latent_channels: int = 16, scaling_factor: float | None = None) -> dict[str, Any]:
    """The ``config.json`` dict of FlexTok's VAEs (``flextok_vae_c{4,8,16}``), reconstructed.

    Architecture fields are ml-flextok's ``VAE_BASE_CFG`` (diffusers 0.18 era): widths
    [128, 256, 512, 512], two resnets per block, 32 groups, SiLU, f8. ``scaling_factor`` is
    set per published model and is not in the reference code; ``None`` leaves diffusers'
    default.

    Example:
        >>> flextok_vae_config(16)["latent_channels"]
        16
    """
    cfg: dict[str, Any] = {
        "_class_name": "AutoencoderKL",
        "_diffusers_version": "0.18.0.dev0",
        "act_fn": "silu",
        "block_out_channels": [128, 256, 512, 512],
        "down_block_types": ["DownEncoderBlock2D"] * 4,
        "in_channels": 3,
        "latent_channels": latent_channels,
        "layers_per_block": 2,
        "norm_num_groups": 32,
        "out_channels": 3,
        "sample_size": 1024,
        "up_block_types": ["UpDecoderBlock2D"] * 4,
    }
    if scaling_factor is not None:
        cfg["scaling_factor"] = scaling_factor
    return cfg
