"""The typed config of LlamaGen's VQ tokenizer (the reference's ``ModelArgs`` field names).

Example:
    >>> c = LlamaGenVQConfig(encoder_ch_mult=[1, 2, 2, 4], decoder_ch_mult=[1, 2, 2, 4])
    >>> c.downsample_factor, c.conv_config().encoder_attn_levels
    (8, (3,))
"""

from __future__ import annotations

from dataclasses import dataclass, field

from zoo.errors import ConfigError
from zoo.nn.conv_ae import ConvAEConfig

__all__ = ["LlamaGenVQConfig"]


@dataclass
class LlamaGenVQConfig:
    """LlamaGen ``VQModel``: ``ModelArgs`` fields plus the widths its Encoder/Decoder hard-code.

    ``ch`` (128) and ``num_res_blocks`` (2) are the reference's constructor defaults (not in
    ``ModelArgs``); attention follows every ResNet block of the lowest-resolution level, in the
    encoder and the decoder, as the reference hard-codes it. ``image_size`` is the training
    resolution (any size divisible by the downsampling factor encodes). ``commit_loss_beta``,
    ``entropy_loss_ratio``, ``dropout_p`` and ``codebook_show_usage`` are training settings and do
    nothing at inference (the ``quantize.codebook_used`` buffer of ``codebook_show_usage`` is dropped
    at load).
    """

    codebook_size: int = 16384
    codebook_embed_dim: int = 8
    codebook_l2_norm: bool = True
    codebook_show_usage: bool = True
    commit_loss_beta: float = 0.25
    entropy_loss_ratio: float = 0.0
    encoder_ch_mult: list[int] = field(default_factory=lambda: [1, 1, 2, 2, 4])
    decoder_ch_mult: list[int] = field(default_factory=lambda: [1, 1, 2, 2, 4])
    z_channels: int = 256
    dropout_p: float = 0.0
    ch: int = 128
    num_res_blocks: int = 2
    image_size: int = 256

    @property
    def downsample_factor(self) -> int:
        return 2 ** (len(self.encoder_ch_mult) - 1)

    def conv_config(self) -> ConvAEConfig:
        """The shared conv core's config for this model (validated)."""
        if list(self.encoder_ch_mult) != list(self.decoder_ch_mult):
            raise ConfigError(f"encoder_ch_mult {list(self.encoder_ch_mult)} != decoder_ch_mult {list(self.decoder_ch_mult)}: "
                              "every LlamaGen release uses one; zoo supports equal ones only")
        lowest = self.downsample_factor  # attention at the lowest level: resolution 1 in these units
        return ConvAEConfig(ch=self.ch, ch_mult=tuple(self.encoder_ch_mult), num_res_blocks=self.num_res_blocks,
                            z_channels=self.z_channels, resolution=lowest, attn_resolutions=(1,))
