"""Language-Codec's typed config (the values of the official ``configs/languagecodec_mm.yaml``).

Example:
    >>> cfg = LanguageCodecConfig()
    >>> cfg.hop, cfg.frame_rate, cfg.num_quantizers
    (320, 75.0, 8)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

__all__ = ["LanguageCodecConfig"]


@dataclass
class LanguageCodecConfig:
    """Architecture and inference settings.

    Encoder: EnCodec's SEANet (``ratios`` in decoder order, ``n_filters``, ``dimension``, a
    2-layer LSTM); quantizer: ``num_quantizers`` masked-channel RVQ levels of
    ``codebook_size`` codes; decoder: a Vocos backbone (ConvNeXt with AdaLayerNorm, no
    attention) and an ISTFT head ("same" padding). ``bandwidth_id`` picks the AdaLayerNorm row
    (the reference's inference uses 0). ``chunk_seconds`` bounds memory on long audio.
    """

    sample_rate: int = 24000
    ratios: list[int] = field(default_factory=lambda: [8, 5, 4, 2])
    n_filters: int = 32
    dimension: int = 128
    lstm_layers: int = 2
    num_quantizers: int = 8
    codebook_size: int = 1024
    backbone_dim: int = 384
    intermediate_dim: int = 1152
    num_layers: int = 12
    adanorm_num_embeddings: int = 4
    n_fft: int = 1280
    hop_length: int = 320
    bandwidth_id: int = 0
    chunk_seconds: float = 30.0
    yaml: str = ""  # the official yaml these values come from (provenance only, never read)

    @property
    def hop(self) -> int:
        return int(math.prod(self.ratios))

    @property
    def frame_rate(self) -> float:
        return self.sample_rate / self.hop

    def validate(self) -> "LanguageCodecConfig":
        """Raise ConfigError when fields contradict each other."""
        from zoo.errors import ConfigError

        if self.hop != self.hop_length:
            raise ConfigError(f"Language-Codec config: SEANet ratios {list(self.ratios)} give a hop of {self.hop} samples but the "
                              f"ISTFT head has hop_length={self.hop_length}; the release uses ratios [8, 5, 4, 2] with hop 320")
        if not 0 <= self.bandwidth_id < self.adanorm_num_embeddings:
            raise ConfigError(f"Language-Codec config: bandwidth_id {self.bandwidth_id} is outside [0, {self.adanorm_num_embeddings})")
        if self.num_quantizers < 1 or self.dimension < 3:
            raise ConfigError("Language-Codec config: needs at least one quantizer and a latent of at least 3 channels")
        return self
