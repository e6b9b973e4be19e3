"""The ``snac`` builder: the release's ``config.json`` + ``pytorch_model.bin`` -> :class:`~.model.SNAC`.

* ``read_checkpoint`` loads ``pytorch_model.bin`` with ``weights_only=True`` (a plain state
  dict; nothing is allow-listed) and parses ``config.json`` as data onto :class:`SNACConfig`
  (unknown keys are an error); a card's ``config`` must agree with the file.
* ``convert`` folds weight norm (``weight_g/weight_v`` or ``parametrizations.weight.original0/1``,
  both spellings of the reference's ``WNConv1d``) into plain weights. Nothing is dropped: the
  release holds the inference model only (``rel_pos.inv_freq`` buffers included), and the
  result loads with ``strict=True``.

Example:
    >>> b = SNACBuilder()
    >>> b.name, b.config_class.__name__
    ('snac', 'SNACConfig')
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

from zoo.builders import Checkpoint, CheckpointFiles, ModelBuilder
from zoo.errors import CheckpointError, ConfigError

from .config import SNACConfig

__all__ = ["SNACBuilder", "read_config"]


def read_config(path: Path) -> dict[str, Any]:
    """``config.json`` -> a dict of :class:`SNACConfig` fields (checked)."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"SNAC config {path} is not readable JSON ({exc}); download it again") from None
    if not isinstance(data, dict):
        raise ConfigError(f"SNAC config {path} must hold a JSON object, got {type(data).__name__}")
    SNACConfig.from_mapping(data)
    return data


class SNACBuilder(ModelBuilder):
    """Builds every SNAC release (24, 32 and 44 kHz)."""

    name = "snac"
    config_class = SNACConfig

    def read_checkpoint(self, files: CheckpointFiles) -> Checkpoint:
        from zoo.weights import load_weights_file  # noqa: PLC0415

        weights = [p for n, p in files.paths.items() if Path(n).suffix in (".bin", ".pt", ".pth", ".safetensors")]
        if not weights:
            raise CheckpointError(f"no SNAC weights among {sorted(files.paths)} ({files.origin}); expected pytorch_model.bin")
        state, _ = load_weights_file(weights[0])
        configs = [p for n, p in files.paths.items() if Path(n).name == "config.json"]
        config = read_config(configs[0]) if configs else {}
        return Checkpoint(state_dict=state, config=config, extra={"path": str(weights[0])})

    def build(self, config: SNACConfig):
        from .model import SNAC  # noqa: PLC0415

        return SNAC(config)

    def convert(self, state_dict: Mapping[str, Any], config: SNACConfig) -> Mapping[str, Any]:
        from zoo.nn.weight_norm import fold_weight_norms  # noqa: PLC0415

        return fold_weight_norms(state_dict)
