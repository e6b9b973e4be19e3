"""The ``titok`` builder: official release files -> typed config -> :class:`~.model.TiTok`.

TiTok's hub repos hold ``model.safetensors`` + ``config.json`` (the nested training config);
One-D-Piece's hold ``pytorch_model.bin`` only (read with ``weights_only=True``) and the card
carries the config. Key names are the official ones: ``convert`` is the identity.

Example:
    >>> b = TiTokBuilder()
    >>> b.name, b.config_class.__name__
    ('titok', 'TiTokConfig')
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from zoo.builders import Checkpoint, CheckpointFiles, ModelBuilder

from .config import TiTokConfig, from_reference_config

__all__ = ["TiTokBuilder"]

_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")


def _weights_path(files: CheckpointFiles) -> Path:
    candidates = [p for n, p in files.paths.items() if Path(n).suffix in _WEIGHT_SUFFIXES]
    if not candidates:
        from ._core import CheckpointError

        raise CheckpointError(
            f"no weights file among {sorted(files.paths)} ({files.origin}); TiTok releases ship "
            "model.safetensors (TiTok) or pytorch_model.bin (One-D-Piece)"
        )
    return candidates[0]


def read_config_json(path: Path) -> dict[str, Any]:
    """The official ``config.json`` mapped onto :class:`TiTokConfig` field names."""
    from ._core import ConfigError

    try:
        tree = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path} is not a readable JSON config ({exc})") from None
    return from_reference_config(tree)


class TiTokBuilder(ModelBuilder):
    """Builds TiTok and One-D-Piece tokenizers (one architecture, two card sets)."""

    name = "titok"
    config_class = TiTokConfig

    def read_checkpoint(self, files: CheckpointFiles) -> Checkpoint:
        from zoo.weights import load_weights_file

        state, _meta = load_weights_file(_weights_path(files))
        config = read_config_json(files.paths["config.json"]) if "config.json" in files.paths else {}
        return Checkpoint(state_dict=state, config=config)

    def build(self, config: TiTokConfig):
        from .model import TiTok

        return TiTok(config)

    def convert(self, state_dict: Mapping[str, Any], config: TiTokConfig) -> Mapping[str, Any]:
        return state_dict
