"""The typed config of TokenFlow (the reference's ``ModelArgs`` fields plus the teacher's shape).

Example:
    >>> c = TokenFlowConfig()
    >>> c.scales[-1], c.image_size, c.semantic_dim + c.codebook_embed_dim
    (16, 256, 40)
"""

from __future__ import annotations

from dataclasses import dataclass, field

from zoo.errors import ConfigError
from zoo.nn.conv_ae import ConvAEConfig

__all__ = ["TEACHERS", "TokenFlowConfig"]

#: Teachers zoo builds: ``clipb_224`` (OpenAI CLIP ViT-B/16) and ``siglip_384`` (SigLIP so400m/14).
TEACHERS = ("clipb_224", "siglip_384")


@dataclass
class TokenFlowConfig:
    """TokenFlow: a semantic teacher + LlamaGen's conv encoder, one id over two codebooks, VAR-style
    multi-scale residual quantisation, LlamaGen's conv decoder (``enhanced_decoder``: ch 256, 4
    blocks) and a small BEiT ViT that reconstructs the teacher's features.

    ``scales`` is the reference's ``scale_rq_layers`` (clipb_224 with ``infer_interpolate``: up to
    16 at 256 px; siglip_384: up to 27 at 384 px). The ``teacher_*`` fields shape the teacher
    (defaults: CLIP ViT-B/16); ``vqkd_decoder_*`` shape the feature decoder (BEiT ViT, patch 1,
    3 blocks of the teacher's width, a learned position grid of ``vqkd_decoder_grid``: the
    reference's ``img_size // 16``, 14 for CLIP (224) and 27 for SigLIP (its ``img_size`` is 432)); ``vqkd_out_dim`` is what it reconstructs (512 for CLIP,
    1152 for SigLIP).
    """

    teacher: str = "clipb_224"
    codebook_size: int = 32768
    codebook_embed_dim: int = 8
    semantic_code_dim: int = 32
    codebook_l2_norm: bool = True
    encoder_ch_mult: list[int] = field(default_factory=lambda: [1, 1, 2, 2, 4])
    decoder_ch_mult: list[int] = field(default_factory=lambda: [1, 1, 2, 2, 4])
    z_channels: int = 256
    ch: int = 128
    num_res_blocks: int = 2
    enhanced_decoder: bool = True
    decoder_ch: int = 256
    decoder_num_res_blocks: int = 4
    scales: list[int] = field(default_factory=lambda: [1, 2, 4, 6, 8, 10, 12, 14, 16])
    image_size: int = 256
    teacher_width: int = 768
    teacher_layers: int = 12
    teacher_heads: int = 12
    teacher_patch_size: int = 16
    teacher_image_size: int = 224
    teacher_intermediate_size: int = 4304
    vqkd_decoder_grid: int = 14
    vqkd_decoder_depth: int = 3
    vqkd_decoder_heads: int = 12
    vqkd_out_dim: int = 512

    def __post_init__(self) -> None:
        if self.teacher not in TEACHERS:
            raise ConfigError(f"TokenFlow teacher {self.teacher!r} is not supported; zoo builds {list(TEACHERS)} "
                              "(vitamin_xlarge_256 has no published checkpoint)")
        if list(self.encoder_ch_mult) != list(self.decoder_ch_mult):
            raise ConfigError("TokenFlow uses one ch_mult for its conv encoder and decoder")
        if list(self.scales) != sorted(self.scales) or not self.scales:
            raise ConfigError(f"scales must be increasing, got {self.scales}")

    @property
    def downsample_factor(self) -> int:
        return 2 ** (len(self.encoder_ch_mult) - 1)

    @property
    def semantic_dim(self) -> int:
        return self.semantic_code_dim

    @property
    def grid(self) -> int:
        """The last scale: the side of the full token map."""
        return int(self.scales[-1])

    def conv_config(self, part: str) -> ConvAEConfig:
        """The conv core's config of the ``"encoder"`` or the ``"decoder"`` (the enhanced decoder is wider)."""
        ch, nrb = (self.decoder_ch, self.decoder_num_res_blocks) if part == "decoder" and self.enhanced_decoder \
            else (self.ch, self.num_res_blocks)
        return ConvAEConfig(ch=ch, ch_mult=tuple(self.encoder_ch_mult), num_res_blocks=nrb,
                            z_channels=self.z_channels, resolution=self.downsample_factor, attn_resolutions=(1,))
