"""GigaTok's typed config: the ``VQVitModelPlus`` values of the repo's ``configs/vq/VQ_*256.yaml``.

Every release shares one architecture family and differs only in the Q-Former sizes
(``encoder_size`` / ``decoder_size``: tiny, small, base, large, xl, xxl); the CNN stages are
fixed (``ch`` 128, ``ch_mult`` [1, 1, 2, 2, 4], 2 ResNet blocks, no attention, AdaptiveGroupNorm
and depth-to-space in the decoder), the quantizer is an L2-normalised 16384 x 8 codebook.
Training-only switches of the reference (``rot``, the entropy loss, ``distill_depth``) change
nothing at inference and are not fields here.

Example:
    >>> cfg = GigaTokConfig(encoder_size="small", decoder_size="base")
    >>> cfg.encoder_width, cfg.decoder_layers, cfg.grid_size
    (512, 12, 16)
"""

from __future__ import annotations

from dataclasses import dataclass, field

from zoo.errors import ConfigError

__all__ = ["GigaTokConfig", "VIT_SIZES"]

# width, layers, heads (the reference's ViTEncoder / ViTDecoder tables)
VIT_SIZES: dict[str, tuple[int, int, int]] = {
    "tiny": (256, 4, 4), "small": (512, 6, 8), "base": (768, 12, 12), "large": (1024, 24, 16),
    "xl": (1280, 36, 20), "xxl": (1536, 48, 24),
}


@dataclass
class GigaTokConfig:
    """Architecture of one GigaTok checkpoint (reference field names where they exist).

    ``vit_sizes`` may add custom ``name: [width, layers, heads]`` entries (small test models).
    ``yaml``: the official config file, for provenance only.
    """

    encoder_size: str = "small"
    decoder_size: str = "small"
    codebook_size: int = 16384
    codebook_embed_dim: int = 8
    codebook_l2_norm: bool = True
    num_latent_tokens: int = 256
    z_channels: int = 256
    ch: int = 128
    encoder_ch_mult: list[int] = field(default_factory=lambda: [1, 1, 2, 2, 4])
    decoder_ch_mult: list[int] = field(default_factory=lambda: [1, 1, 2, 2, 4])
    num_res_blocks: int = 2
    image_size: int = 256
    vit_sizes: dict = field(default_factory=dict)
    yaml: str = ""

    def _size(self, name: str) -> tuple[int, int, int]:
        table = {**VIT_SIZES, **{k: tuple(v) for k, v in self.vit_sizes.items()}}
        if name not in table:
            raise ConfigError(f"GigaTok config: unknown Q-Former size {name!r}; choose from {sorted(table)}")
        return table[name]

    @property
    def encoder_width(self) -> int:
        return self._size(self.encoder_size)[0]

    @property
    def encoder_layers(self) -> int:
        return self._size(self.encoder_size)[1]

    @property
    def encoder_heads(self) -> int:
        return self._size(self.encoder_size)[2]

    @property
    def decoder_width(self) -> int:
        return self._size(self.decoder_size)[0]

    @property
    def decoder_layers(self) -> int:
        return self._size(self.decoder_size)[1]

    @property
    def decoder_heads(self) -> int:
        return self._size(self.decoder_size)[2]

    @property
    def downsample_factor(self) -> int:
        return 2 ** (len(self.encoder_ch_mult) - 1)

    @property
    def grid_size(self) -> int:
        return self.image_size // self.downsample_factor

    def validate(self) -> "GigaTokConfig":
        """Raise :class:`~zoo.errors.ConfigError` for values no GigaTok model can have."""
        for name in (self.encoder_size, self.decoder_size):
            w, _, h = self._size(name)
            if w % h:
                raise ConfigError(f"GigaTok config: width {w} of size {name!r} is not divisible by its {h} heads")
        n = self.num_latent_tokens
        if n < 2 or n & (n - 1):
            raise ConfigError(f"GigaTok config: num_latent_tokens must be a power of two >= 2 (multi-level queries), got {n}")
        levels = n.bit_length() - 1
        g = self.grid_size
        if self.image_size % self.downsample_factor or g % (2 ** (levels // 2)) or g % (2 ** ((levels - 1) // 2)):
            raise ConfigError(f"GigaTok config: a {g}x{g} grid cannot be pooled into {n} multi-level queries")
        if len(self.encoder_ch_mult) != len(self.decoder_ch_mult):
            raise ConfigError("GigaTok config: encoder_ch_mult and decoder_ch_mult must have the same length")
        return self
