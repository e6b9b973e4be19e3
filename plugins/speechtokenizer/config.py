"""SpeechTokenizer's architecture fields, parsed as data from the release's ``config.json``
(training-only keys such as loss weights and learning rates are ignored, by name).

Example:
    >>> cfg, ignored = config_from_json_mapping({"n_filters": 64, "strides": [8, 5, 4, 2], "dimension": 1024,
    ...     "batch_size": 6})
    >>> cfg["dimension"], ignored
    (1024, ['batch_size'])
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any, Mapping

from zoo.errors import ConfigError

__all__ = ["SpeechTokenizerConfig", "config_from_json_mapping", "TRAINING_KEYS"]

#: Keys of the released config.json files that configure training only (ignored when loading).
TRAINING_KEYS = frozenset({
    "num_mels", "num_freq", "n_fft", "hop_size", "win_size", "fmin", "fmax", "fmax_for_loss", "mel_loss_lambdas",
    "recon_loss_lambda", "commitment_loss_lambda", "distill_loss_lambda", "distill_type", "semantic_model_path",
    "semantic_model_layer", "train_files", "valid_files", "results_folder", "batch_size", "epochs", "learning_rate",
    "intial_learning_rate", "num_warmup_steps", "betas", "adam_b2", "lr_decay", "seed", "segment_size", "wd",
    "num_workers", "log_steps", "stdout_steps", "save_model_steps", "num_ckpt_keep", "showpiece_num", "project_name",
})


@dataclass
class SpeechTokenizerConfig:
    """The model fields of ``config.json`` (defaults: ``speechtokenizer_hubert_avg``), plus zoo's
    ``chunk_seconds`` (tile length of the convolutions on long audio; ``None`` or 0: one pass)."""

    n_filters: int = 64
    strides: list[int] = field(default_factory=lambda: [8, 5, 4, 2])
    dimension: int = 1024
    semantic_dimension: int = 768
    bidirectional: bool = True
    dilation_base: int = 2
    residual_kernel_size: int = 3
    n_residual_layers: int = 1
    lstm_layers: int = 2
    activation: str = "ELU"
    codebook_size: int = 1024
    n_q: int = 8
    sample_rate: int = 16000
    chunk_seconds: float | None = 10.0

    def validate(self) -> "SpeechTokenizerConfig":
        if self.activation not in ("ELU", "Snake"):
            raise ConfigError(f"SpeechTokenizer activation must be 'ELU' or 'Snake', got {self.activation!r}")
        if not self.strides or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in self.strides):
            raise ConfigError(f"SpeechTokenizer strides must be positive ints, got {self.strides!r}")
        for name in ("n_filters", "dimension", "codebook_size", "n_q", "sample_rate", "lstm_layers"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"SpeechTokenizer {name} must be a positive int, got {value!r}")
        return self

    @property
    def hop(self) -> int:
        return math.prod(self.strides)


def config_from_json_mapping(data: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """``config.json`` -> (model fields, ignored training keys); any other key is a ConfigError."""
    known = {f.name for f in fields(SpeechTokenizerConfig)} - {"chunk_seconds"}
    unknown = sorted(set(data) - known - TRAINING_KEYS)
    if unknown:
        raise ConfigError(f"SpeechTokenizer config has unknown keys {unknown}; model keys: {sorted(known)}")
    return {k: v for k, v in data.items() if k in known}, sorted(set(data) & TRAINING_KEYS)
