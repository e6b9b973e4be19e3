"""The typed config of DiGIT's tokenizer (the reference's ``pretrained_enc_config`` + ``kmeans_path``).

Example:
    >>> c = DiGITConfig()
    >>> c.block, c.grid
    (9, 16)
"""

from __future__ import annotations

from dataclasses import dataclass

from zoo.errors import ConfigError

__all__ = ["DiGITConfig"]


@dataclass
class DiGITConfig:
    """DiGIT base (``digit.base_8k``): DINOv2 ViT-B/14 with 4 registers, features of the third block
    from the end (``layer: 3``; the reference's ``get_intermediate_layers(x, 3)[0]`` stops at block
    ``depth - 3``), final LayerNorm applied, 8192 centroids. The images the model takes are
    ``image_size`` (256, as the reference trains; 224 is accepted too) and reach DINOv2 at
    ``backbone_size`` (224: a 16x16 grid of patch 14)."""

    embed_dim: int = 768
    depth: int = 12
    heads: int = 12
    num_register_tokens: int = 4
    patch_size: int = 14
    pos_grid: int = 37
    layer: int = 3
    num_centroids: int = 8192
    image_size: int = 256
    backbone_size: int = 224

    def __post_init__(self) -> None:
        if not 1 <= self.layer <= self.depth:
            raise ConfigError(f"layer counts blocks from the end: 1..{self.depth}, got {self.layer}")
        if self.backbone_size % self.patch_size:
            raise ConfigError(f"backbone_size {self.backbone_size} must be a multiple of patch_size {self.patch_size}")
        if self.image_size not in (self.backbone_size, 256):
            raise ConfigError(f"image_size must be {self.backbone_size} or 256 (the reference's two input sizes), got {self.image_size}")
        if self.num_centroids < 1:
            raise ConfigError(f"num_centroids must be >= 1, got {self.num_centroids}")

    @property
    def block(self) -> int:
        """The 0-based index of the DINOv2 block whose output is clustered."""
        return self.depth - self.layer

    @property
    def grid(self) -> int:
        """The side of the token grid (16 at 224 px, patch 14)."""
        return self.backbone_size // self.patch_size
