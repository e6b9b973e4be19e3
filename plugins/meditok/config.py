"""The typed config of MedITok (the reference's ``get_meditok_args`` + timm's ``vitamin_large``).

Example:
    >>> c = MedITokConfig()
    >>> c.grid, c.codebook_size, c.num_codebooks
    (16, 4096, 8)
"""

from __future__ import annotations

from dataclasses import dataclass, field

from zoo.errors import ConfigError

__all__ = ["MedITokConfig"]


@dataclass
class MedITokConfig:
    """MedITok ``simple_v1``: a ViTamin-L encoder (conv stem + two MBConv stages of ``stage_dims``,
    a strided conv to ``embed_dim``, ``depth`` ViT blocks with GeGLU MLPs; 16x downsampling, no
    position embedding), an attention projection to ``vocab_width`` channels quantised by
    ``num_codebooks`` l2-normalised sub-codebooks of ``codebook_size`` (cosine argmax), an attention
    projection back, and a ViTamin decoder (``depth`` ViT blocks, then upsampling convs of
    ``decoder_dims`` with ``decoder_conv_depths`` inverted MBConv blocks). ``drop_alignment=False``
    keeps the CLIP-style alignment head (``fc_norm``, ``projection`` to ``align_dim``,
    ``logit_scale``) that the release holds."""

    image_size: int = 256
    stem_width: int = 160
    stage_dims: list[int] = field(default_factory=lambda: [160, 320])
    stage_depths: list[int] = field(default_factory=lambda: [2, 4])
    embed_dim: int = 1024
    depth: int = 31
    num_heads: int = 16
    mlp_ratio: float = 2.0
    decoder_dims: list[int] = field(default_factory=lambda: [320, 160])
    decoder_conv_depths: list[int] = field(default_factory=lambda: [4, 2])
    codebook_size: int = 4096
    num_codebooks: int = 8
    vocab_width: int = 64
    align_dim: int = 768
    drop_alignment: bool = False

    def __post_init__(self) -> None:
        if self.image_size % 16:
            raise ConfigError(f"MedITok downsamples by 16: image_size must be a multiple of 16, got {self.image_size}")
        if len(self.stage_dims) != 2 or len(self.stage_depths) != 2 or min(self.stage_depths) < 1:
            raise ConfigError(f"stage_dims and stage_depths must hold two entries (depths >= 1), got "
                              f"{self.stage_dims} / {self.stage_depths}")
        if len(self.decoder_dims) != 2 or len(self.decoder_conv_depths) != 2 or min(self.decoder_conv_depths) < 1:
            raise ConfigError(f"decoder_dims and decoder_conv_depths must hold two entries (depths >= 1), got "
                              f"{self.decoder_dims} / {self.decoder_conv_depths}")
        if self.embed_dim % self.num_heads:
            raise ConfigError(f"embed_dim {self.embed_dim} must be divisible by num_heads {self.num_heads}")
        if self.vocab_width % self.num_codebooks:
            raise ConfigError(f"vocab_width {self.vocab_width} must be divisible by num_codebooks {self.num_codebooks}")
        if self.embed_dim % self.vocab_width:
            raise ConfigError(f"embed_dim {self.embed_dim} must be a multiple of vocab_width {self.vocab_width} "
                              "(the attention projections use embed_dim / vocab_width heads)")

    @property
    def grid(self) -> int:
        """The side of the token grid (16 at 256 px)."""
        return self.image_size // 16

    @property
    def num_tokens(self) -> int:
        """Positions per image (256 at 256 px); each carries ``num_codebooks`` ids."""
        return self.grid ** 2
