"""The ``larp`` builder: ``config.json`` + ``model.safetensors`` (``PyTorchModelHubMixin``) -> :class:`~.model.LARP`.

``read_checkpoint`` maps ``config.json`` (the ``LARPTokenizer`` kwargs) onto :class:`~.config.LARPConfig`
as data; ``convert`` drops :data:`~.model.DROPPED_PREFIXES` (the training-only AR prior) by
name and keeps every other key unchanged for the strict load.

Example:
    >>> b = LARPBuilder()
    >>> b.name, b.config_class.__name__
    ('larp', 'LARPConfig')
    >>> sorted(b.convert({"prior_model.pos_emb": 0, "final_layer.linear.bias": 1}, None))
    ['final_layer.linear.bias']
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from zoo.builders import Checkpoint, CheckpointFiles, ModelBuilder, weights_file

from .config import LARPConfig, from_reference_config

__all__ = ["LARPBuilder", "read_config_json"]


def read_config_json(path: Path) -> dict[str, Any]:
    """The release's ``config.json`` mapped onto :class:`LARPConfig` field names."""
    from zoo.errors import ConfigError

    try:
        tree = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path} is not a readable JSON config ({exc})") from None
    return from_reference_config(tree)


class LARPBuilder(ModelBuilder):
    """Builds LARP video tokenizers."""

    name = "larp"
    config_class = LARPConfig

    def read_checkpoint(self, files: CheckpointFiles) -> Checkpoint:
        from zoo.weights import load_checkpoint

        _path, state = weights_file(files, "LARP", (".safetensors",), read_pickle=lambda p: load_checkpoint(p, what="LARP"),
                                    expected="model.safetensors (the hub release)")
        config = read_config_json(files.paths["config.json"]) if "config.json" in files.paths else {}
        return Checkpoint(state_dict=state, config=config)

    def build(self, config: LARPConfig):
        from .model import LARP

        return LARP(config)

    def convert(self, state_dict: Mapping[str, Any], config: LARPConfig) -> Mapping[str, Any]:
        from .model import DROPPED_PREFIXES

        return {k: v for k, v in state_dict.items() if not k.startswith(DROPPED_PREFIXES)}
