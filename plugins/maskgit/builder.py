"""The ``maskgit`` builder: official generator files -> config -> ImageBert / UViTBert.

TiTok's generator repos hold ``model.safetensors`` + ``config.json`` (the nested training
config); One-D-Piece's hold ``pytorch_model.bin`` (read with ``weights_only=True``) and the
card carries the config. Key names are the official ones; ``convert`` only drops the
deterministic ``position_ids``/``token_type_ids`` buffers older ``transformers`` versions saved.

Example:
    >>> MaskGITBuilder().name
    'maskgit'
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

from zoo.builders import Checkpoint, CheckpointFiles, ModelBuilder
from zoo.errors import CheckpointError, ConfigError

from .config import MaskGITConfig, from_reference_config

__all__ = ["MaskGITBuilder"]

_WEIGHTS = (".safetensors", ".bin", ".pt", ".pth")
_BUFFERS = ("model.embeddings.position_ids", "model.embeddings.token_type_ids")


class MaskGITBuilder(ModelBuilder):
    name = "maskgit"
    config_class = MaskGITConfig

    def read_checkpoint(self, files: CheckpointFiles) -> Checkpoint:
        from zoo.weights import load_weights_file

        weights = [p for n, p in files.paths.items() if Path(n).suffix in _WEIGHTS]
        if not weights:
            raise CheckpointError(f"no weights file among {sorted(files.paths)} ({files.origin}); expected "
                                  "model.safetensors (TiTok generators) or pytorch_model.bin (One-D-Piece)")
        state, _ = load_weights_file(weights[0])
        config: dict[str, Any] = {}
        if "config.json" in files.paths:
            try:
                tree = json.loads(Path(files.paths["config.json"]).read_text())
            except (OSError, json.JSONDecodeError) as exc:
                raise ConfigError(f"{files.paths['config.json']} is not readable JSON ({exc})") from None
            config = from_reference_config(tree)
        return Checkpoint(state_dict=state, config=config)

    def build(self, config: MaskGITConfig):
        from .model import build_generator

        return build_generator(config)

    def convert(self, state_dict: Mapping[str, Any], config: MaskGITConfig) -> Mapping[str, Any]:
        return {k: v for k, v in state_dict.items() if k not in _BUFFERS}
