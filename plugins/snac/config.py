"""SNAC's configuration: the fields of the release's ``config.json``, parsed as data.

Example:
    >>> cfg = SNACConfig.from_mapping({"sampling_rate": 24000, "encoder_dim": 48, "encoder_rates": [2, 4, 8, 8],
    ...     "decoder_dim": 1024, "decoder_rates": [8, 8, 4, 2], "attn_window_size": None, "vq_strides": [4, 2, 1]})
    >>> cfg.hop_length, cfg.latent, cfg.pad_multiple
    (512, 768, 2048)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any, Mapping

from zoo.errors import ConfigError

__all__ = ["SNACConfig"]


@dataclass
class SNACConfig:
    """``SNAC(**config.json)``'s arguments (defaults are the reference's, i.e. the 44 kHz model)
    plus zoo's ``chunk_seconds`` (long-audio chunk length; ``None`` or 0: one pass)."""

    sampling_rate: int = 44100
    encoder_dim: int = 64
    encoder_rates: list[int] = field(default_factory=lambda: [3, 3, 7, 7])
    latent_dim: int | None = None
    decoder_dim: int = 1536
    decoder_rates: list[int] = field(default_factory=lambda: [7, 7, 3, 3])
    attn_window_size: int | None = 32
    codebook_size: int = 4096
    codebook_dim: int = 8
    vq_strides: list[int] = field(default_factory=lambda: [8, 4, 2, 1])
    noise: bool = True
    depthwise: bool = True
    chunk_seconds: float | None = 30.0

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> "SNACConfig":
        """A ``config.json`` mapping -> config; unknown keys are a :class:`~zoo.errors.ConfigError`."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"SNAC config has unknown keys {unknown}; known: {sorted(known)}")
        return cls(**dict(data)).validate()

    def validate(self) -> "SNACConfig":
        """Check types and the rate/stride constraints; returns ``self``."""
        for name in ("encoder_rates", "decoder_rates", "vq_strides"):
            value = getattr(self, name)
            if not value or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in value):
                raise ConfigError(f"SNAC config {name} must be a non-empty list of positive ints, got {value!r}")
        if math.prod(self.encoder_rates) != math.prod(self.decoder_rates):
            raise ConfigError(f"SNAC encoder_rates {self.encoder_rates} and decoder_rates {self.decoder_rates} must have "
                              "the same product (the hop)")
        if any(self.vq_strides[0] % s for s in self.vq_strides):
            raise ConfigError(f"SNAC vq_strides {self.vq_strides} must divide the first one")
        if self.attn_window_size is not None and self.attn_window_size < 1:
            raise ConfigError(f"SNAC attn_window_size must be a positive int or null, got {self.attn_window_size!r}")
        if self.decoder_dim % (2 ** len(self.decoder_rates)):
            raise ConfigError(f"SNAC decoder_dim {self.decoder_dim} must be divisible by 2**{len(self.decoder_rates)}")
        return self

    @property
    def hop_length(self) -> int:
        """Samples per finest frame."""
        return math.prod(self.encoder_rates)

    @property
    def latent(self) -> int:
        """Latent width (``encoder_dim * 2**len(encoder_rates)`` unless given)."""
        return self.latent_dim or self.encoder_dim * 2 ** len(self.encoder_rates)

    @property
    def frame_multiple(self) -> int:
        """Latent frames are padded to a multiple of this: ``lcm(vq_strides[0], attn_window_size)``."""
        return math.lcm(self.vq_strides[0], self.attn_window_size or 1)

    @property
    def pad_multiple(self) -> int:
        """Audio is right-padded with zeros to a multiple of this many samples (the reference's ``preprocess``)."""
        return self.hop_length * self.frame_multiple
