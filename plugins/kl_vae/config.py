"""The typed config of an LDM KL-VAE release (the reference's ``ddconfig`` names plus ``embed_dim``).

Example:
    >>> c = KLVAEConfig()
    >>> c.kl_config().downsample_factor, c.kl_config().conv.encoder_attn_levels
    (16, (4,))
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from zoo.nn.autoencoder_kl import KLConfig
from zoo.nn.conv_ae import ConvAEConfig

__all__ = ["KLVAEConfig"]


@dataclass
class KLVAEConfig:
    """LDM ``AutoencoderKL(embed_dim, ddconfig)`` as MAR and LightningDiT build it.

    ``decoder_attn_resolutions`` is ``None`` when the decoder attends where the encoder does
    (VA-VAE, LDM) and ``[]`` for MAR's decoder (no attention inside levels). Latent
    normalisation (what the generators train on): ``(z - latent_mean) / latent_std *
    latent_multiplier`` with per-channel statistics (VA-VAE's ``latents_stats.pt``; MAR has
    none: mean 0, std 1) and ``latent_multiplier`` (MAR 0.2325, LightningDiT 1.0).
    """

    embed_dim: int = 16
    z_channels: int = 16
    ch: int = 128
    ch_mult: list[int] = field(default_factory=lambda: [1, 1, 2, 2, 4])
    num_res_blocks: int = 2
    resolution: int = 256
    attn_resolutions: list[int] = field(default_factory=lambda: [16])
    decoder_attn_resolutions: Optional[list[int]] = None
    in_channels: int = 3
    out_ch: int = 3
    double_z: bool = True
    dropout: float = 0.0
    latent_multiplier: float = 1.0
    latent_stats: bool = False
    image_size: int = 256

    @property
    def downsample_factor(self) -> int:
        return 2 ** (len(self.ch_mult) - 1)

    def kl_config(self) -> KLConfig:
        """The shared core's :class:`~zoo.nn.autoencoder_kl.KLConfig` (validated)."""
        dec = None if self.decoder_attn_resolutions is None else tuple(self.decoder_attn_resolutions)
        conv = ConvAEConfig(in_channels=self.in_channels, out_channels=self.out_ch, ch=self.ch,
                            ch_mult=tuple(self.ch_mult), num_res_blocks=self.num_res_blocks,
                            z_channels=self.z_channels, double_z=self.double_z, resolution=self.resolution,
                            attn_resolutions=tuple(self.attn_resolutions), decoder_attn_resolutions=dec)
        return KLConfig(conv=conv, embed_dim=self.embed_dim)
