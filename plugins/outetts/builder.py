"""The ``outetts`` builder: ``model.safetensors`` + ``config.json`` (transformers' Llama) +
``tokenizer.json`` -> :class:`~.model.OuteTTS`.

Example:
    >>> OuteTTSBuilder().name
    'outetts'
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

from zoo.builders import Checkpoint, CheckpointFiles, ModelBuilder
from zoo.errors import CheckpointError, ConfigError

from .config import OuteTTSConfig, from_hf_config

__all__ = ["OuteTTSBuilder"]


class OuteTTSBuilder(ModelBuilder):
    name = "outetts"
    config_class = OuteTTSConfig

    def read_checkpoint(self, files: CheckpointFiles) -> Checkpoint:
        from zoo.weights import load_weights_file

        weights = [p for n, p in files.paths.items() if n.endswith((".safetensors", ".bin"))]
        if not weights:
            raise CheckpointError(f"no weights among {sorted(files.paths)} ({files.origin}); OuteTTS ships model.safetensors")
        state, _ = load_weights_file(weights[0])
        config: dict[str, Any] = {}
        if "config.json" in files.paths:
            try:
                config = from_hf_config(json.loads(Path(files.paths["config.json"]).read_text()))
            except (OSError, json.JSONDecodeError) as exc:
                raise ConfigError(f"{files.paths['config.json']} is not readable JSON ({exc})") from None
        return Checkpoint(state_dict=state, config=config)

    def build(self, config: OuteTTSConfig):
        from .model import OuteTTS

        return OuteTTS(config)

    def convert(self, state_dict: Mapping[str, Any], config: OuteTTSConfig) -> Mapping[str, Any]:
        # older transformers saved the rotary inv_freq buffers; zoo recomputes them
        return {k: v for k, v in state_dict.items() if not k.endswith("rotary_emb.inv_freq")}

    def finalize(self, model, files: CheckpointFiles | None, config: OuteTTSConfig):
        if files is not None and "tokenizer.json" in files.paths:
            from .prompt import TextTokenizer

            model.text_tokenizer = TextTokenizer(files.paths["tokenizer.json"])
        return model
