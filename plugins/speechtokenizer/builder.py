"""The ``speechtokenizer`` builder (SpeechTokenizer and DM-Codec releases).

* ``read_checkpoint`` loads the weights file (``SpeechTokenizer.pt``, AnyGPT's ``ckpt.dev``, a
  DM-Codec ``.pt``) with ``weights_only=True`` (nothing allow-listed) and the ``config.json``
  next to it when the card lists one, parsed as data (training keys ignored by name).
* ``convert``: a trainer package (``{"generator": ..., "discriminators": ..., "optim_g": ...}``)
  keeps its ``generator``; the dropped entries are :data:`DROPPED_ENTRIES`. Weight norm is folded
  and EnCodec's wrapper names are removed (``X.conv.conv.weight`` -> ``X.weight``,
  ``X.convtr.convtr.weight`` -> ``X.weight``, ``quantizer.vq.layers`` -> ``quantizer.layers``); the
  result loads with ``strict=True``, ``transform`` and the codebooks' EMA buffers included.

Example:
    >>> convert_state_dict({"quantizer.vq.layers.0._codebook.embed": 1, "encoder.model.0.conv.conv.bias": 2})
    {'quantizer.layers.0._codebook.embed': 1, 'encoder.model.0.bias': 2}
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

from zoo.builders import Checkpoint, CheckpointFiles, ModelBuilder
from zoo.errors import CheckpointError, ConfigError

from .config import SpeechTokenizerConfig, config_from_json_mapping

__all__ = ["SpeechTokenizerBuilder", "convert_state_dict", "DROPPED_ENTRIES"]

#: Entries of a trainer package that inference does not use.
DROPPED_ENTRIES = ("discriminators", "optim_g", "optim_d", "scheduler_g", "scheduler_d", "best_dev_mel_loss")
_WEIGHT_SUFFIXES = (".pt", ".pth", ".bin", ".dev", ".ckpt", ".safetensors")


def convert_state_dict(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Release key layout -> zoo's (weight norm folded, wrapper names dropped)."""
    from zoo.nn.weight_norm import fold_weight_norms  # noqa: PLC0415

    if "generator" in raw and isinstance(raw["generator"], Mapping):
        raw = raw["generator"]
    out = {}
    for key, value in fold_weight_norms(raw).items():
        key = key.replace(".conv.conv.", ".").replace(".convtr.convtr.", ".").replace("quantizer.vq.layers.", "quantizer.layers.")
        out[key] = value
    return out


class SpeechTokenizerBuilder(ModelBuilder):
    """Builds SpeechTokenizer (hubert_avg, snake) and DM-Codec releases."""

    name = "speechtokenizer"
    config_class = SpeechTokenizerConfig

    def read_checkpoint(self, files: CheckpointFiles) -> Checkpoint:
        from zoo.weights import load_weights_file  # noqa: PLC0415

        weights = [p for n, p in files.paths.items() if Path(n).suffix in _WEIGHT_SUFFIXES]
        if not weights:
            raise CheckpointError(f"no SpeechTokenizer weights among {sorted(files.paths)} ({files.origin}); "
                                  "expected a .pt (or AnyGPT's ckpt.dev)")
        state, _ = load_weights_file(weights[0])
        config: dict[str, Any] = {}
        ignored: list[str] = []
        for name, path in files.paths.items():
            if Path(name).name == "config.json":
                try:
                    data = json.loads(Path(path).read_text())
                except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
                    raise ConfigError(f"SpeechTokenizer config {path} is not readable JSON ({exc}); download it again") from None
                if not isinstance(data, dict):
                    raise ConfigError(f"SpeechTokenizer config {path} must hold a JSON object")
                config, ignored = config_from_json_mapping(data)
        return Checkpoint(state_dict=state, config=config, extra={"path": str(weights[0]), "ignored_config_keys": ignored})

    def build(self, config: SpeechTokenizerConfig):
        from .model import SpeechTokenizer  # noqa: PLC0415

        return SpeechTokenizer(config)

    def convert(self, state_dict: Mapping[str, Any], config: SpeechTokenizerConfig) -> Mapping[str, Any]:
        return convert_state_dict(state_dict)
