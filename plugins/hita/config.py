"""The typed config of Hita's tokenizer (the reference's ``ModelArgs`` + ``configs/hita_vqgan*.yaml``).

Example:
    >>> c = HitaConfig()
    >>> c.grid, c.num_tokens
    (21, 569)
"""

from __future__ import annotations

from dataclasses import dataclass, field

from zoo.errors import ConfigError
from zoo.nn.conv_ae import ConvAEConfig

__all__ = ["HitaConfig"]


@dataclass
class HitaConfig:
    """Hita (``VQ-16``, 336 px): LlamaGen's conv encoder/decoder (ch 128, ``z_channels`` = ``dim``),
    a frozen DINOv2 ViT-L/14-reg4 on the image resized to 224 px, a 3-block transformer that mixes
    ``n_carrier`` learned holistic tokens, the DINOv2 tokens and the conv patches, two l2-normalised
    codebooks of ``codebook_size`` (patches: ``codebook_embed_dim``; holistic tokens:
    ``codebook_slots_embed_dim``) and a causal 3-block decoder transformer (``shift_k``).
    ``enable_vfm_recon`` (Hita-U) adds the DINOv2-feature reconstruction head (kept for a strict
    load; pixels do not use it)."""

    codebook_size: int = 16384
    codebook_embed_dim: int = 8
    codebook_slots_embed_dim: int = 12
    codebook_l2_norm: bool = True
    ch: int = 128
    ch_mult: list[int] = field(default_factory=lambda: [1, 1, 2, 2, 4])
    num_res_blocks: int = 2
    image_size: int = 336
    patch_size: int = 16
    dim: int = 512
    depth: int = 3
    num_head: int = 8
    dim_head: int = 64
    mlp_dim: int = 2048
    n_carrier: int = 128
    shift_k: int = 4
    enable_vfm_recon: bool = False
    vfm_dim: int = 1024
    vfm_grid: int = 16
    backbone_embed_dim: int = 1024
    backbone_depth: int = 24
    backbone_heads: int = 16
    backbone_register_tokens: int = 4
    backbone_size: int = 224

    def __post_init__(self) -> None:
        if self.image_size % self.patch_size:
            raise ConfigError(f"image_size {self.image_size} must be divisible by patch_size {self.patch_size}")
        if 2 ** (len(self.ch_mult) - 1) != self.patch_size:
            raise ConfigError(f"the conv encoder downsamples by {2 ** (len(self.ch_mult) - 1)} (ch_mult {self.ch_mult}), "
                              f"patch_size is {self.patch_size}: they must agree")
        if not 0 <= self.shift_k < self.n_carrier:
            raise ConfigError(f"shift_k must be in [0, n_carrier={self.n_carrier}), got {self.shift_k}")

    @property
    def grid(self) -> int:
        """The side of the patch-token grid (21 at 336 px)."""
        return self.image_size // self.patch_size

    @property
    def num_tokens(self) -> int:
        """Ids per image: the holistic tokens, then the patch grid row-major (128 + 441 = 569)."""
        return self.n_carrier + self.grid ** 2

    def conv_config(self) -> ConvAEConfig:
        return ConvAEConfig(ch=self.ch, ch_mult=tuple(self.ch_mult), num_res_blocks=self.num_res_blocks,
                            z_channels=self.dim, resolution=self.patch_size, attn_resolutions=(1,))
