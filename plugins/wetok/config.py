"""WeTok's typed config: the ``ddconfig`` and quantizer values of the official inference yaml.

Every release is one of the repo's ``configs/WeToK/Inference/*.yaml`` (Lightning-CLI files; zoo
reads none of them at load time: the values live on the cards). ``z_channels`` equals
``num_codebooks * log2(n_embed)`` in every release (no projection before the quantizer).

Example:
    >>> cfg = WeTokConfig(ch_mult=[1, 1, 2, 2, 4], num_codebooks=4, n_embed=256, z_channels=32)
    >>> cfg.downsample_factor, cfg.bits_per_group
    (16, 8)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from zoo.errors import ConfigError

__all__ = ["WeTokConfig"]


@dataclass
class WeTokConfig:
    """Architecture of one WeTok checkpoint (names as in the reference yaml).

    ``gan_decoder``: the "generative decoder" (noise concatenated to the latent; GeneralDomain
    compratio768). ``use_ema``: load the EMA weights (what the reference evaluates, inside
    ``ema_scope``); ``False`` loads the training weights. ``image_size``: the side ``zoo reconstruct`` resizes
    inputs to (the model itself takes any multiple of the downsampling factor). ``yaml``: the official config file,
    for provenance only.
    """

    ch: int = 256
    ch_mult: list[int] = field(default_factory=lambda: [1, 1, 2, 2, 4])
    num_res_blocks: int = 4
    z_channels: int = 32
    in_channels: int = 3
    out_ch: int = 3
    n_embed: int = 256
    num_codebooks: int = 4
    gan_decoder: bool = False
    use_ema: bool = True
    image_size: int = 256
    yaml: str = ""

    @property
    def downsample_factor(self) -> int:
        return 2 ** (len(self.ch_mult) - 1)

    @property
    def bits_per_group(self) -> int:
        return int(math.log2(self.n_embed))

    def validate(self) -> "WeTokConfig":
        """Raise :class:`~zoo.errors.ConfigError` when the values cannot describe a WeTok model."""
        if self.n_embed < 2 or 2 ** self.bits_per_group != self.n_embed:
            raise ConfigError(f"WeTok config: n_embed must be a power of two (LFQ), got {self.n_embed}")
        if self.z_channels != self.num_codebooks * self.bits_per_group:
            raise ConfigError(
                f"WeTok config: z_channels ({self.z_channels}) must equal num_codebooks x log2(n_embed) "
                f"= {self.num_codebooks} x {self.bits_per_group}; every release has no quantizer projection")
        if not self.ch_mult or min(self.ch_mult) < 1 or self.num_res_blocks < 1:
            raise ConfigError(f"WeTok config: ch_mult {self.ch_mult} / num_res_blocks {self.num_res_blocks} must be positive")
        if (self.ch * min(self.ch_mult)) % 32:
            raise ConfigError(f"WeTok config: widths must be multiples of 32 (GroupNorm(32)), got ch={self.ch}")
        return self
