"""The typed config of Instella-T2I's binary autoencoder (the reference's ``bae_config`` names).

Example:
    >>> c = InstellaBAEConfig()
    >>> c.encoder_dim, c.decoder_dim, c.bits, c.rope_scale_tokens
    (768, 1024, 64, 64.0)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from zoo.errors import ConfigError

__all__ = ["InstellaBAEConfig"]


@dataclass
class InstellaBAEConfig:
    """``BAE_Model(config)`` of AMD-AGI/Instella-T2I (``configs/bae_config.py``) plus the pipeline's
    ``bae_scale`` (``scale``: the pixel size RoPE positions are stretched to, 1024 in the released
    pipelines; ``None`` = integer grid positions) and ``image_size`` (what ``zoo reconstruct``
    resizes to and ``decode`` produces by default).

    ``codebook_size`` is the reference's name for the bits per token.
    """

    in_channels: int = 3
    patch_size: int = 16
    encoder_layers: int = 12
    encoder_head_dim: int = 64
    encoder_num_heads: int = 12
    decoder_layers: int = 16
    decoder_head_dim: int = 64
    decoder_num_heads: int = 16
    num_latent_tkns: int = 128
    codebook_size: int = 64
    axes_dims_rope: list[int] = field(default_factory=lambda: [8, 28, 28])
    downsample_idx: list[int] = field(default_factory=lambda: [7])
    upsample_idx: list[int] = field(default_factory=lambda: [7])
    mlp_ratio: float = 4.0
    scale: Optional[float] = 1024.0
    image_size: int = 1024

    def __post_init__(self) -> None:
        for name, dim in (("encoder", self.encoder_head_dim), ("decoder", self.decoder_head_dim)):
            if sum(self.axes_dims_rope) != dim:
                raise ConfigError(f"axes_dims_rope {list(self.axes_dims_rope)} must sum to the {name} head size {dim}")
        if not self.upsample_idx:
            raise ConfigError("the BAE decoder needs at least one upsampling block (upsample_idx), as the reference does")
        if len(set(self.downsample_idx)) != len(self.downsample_idx) or len(set(self.upsample_idx)) != len(self.upsample_idx):
            raise ConfigError("downsample_idx / upsample_idx must not repeat a block")

    @property
    def encoder_dim(self) -> int:
        return self.encoder_head_dim * self.encoder_num_heads

    @property
    def decoder_dim(self) -> int:
        return self.decoder_head_dim * self.decoder_num_heads

    @property
    def bits(self) -> int:
        return int(self.codebook_size)

    @property
    def rope_scale_tokens(self) -> Optional[float]:
        """``set_scale``: the scale in patches (``scale / patch_size``), or None."""
        return None if self.scale is None else float(self.scale) / self.patch_size

    @property
    def multiple(self) -> int:
        """Image sides must be multiples of this: the patch size times 2 per downsampling and upsampling."""
        return self.patch_size * 2 ** max(len(self.downsample_idx), len(self.upsample_idx))
