"""The ``rar`` builder: ``rar_{b,l,xl,xxl}.bin`` (a weights-only pickle of the state dict) or
its ``zoo convert`` safetensors copy -> :class:`~.model.RAR`.

Example:
    >>> RARBuilder().name
    'rar'
"""

from __future__ import annotations

from typing import Any, Mapping

from zoo.builders import Checkpoint, CheckpointFiles, ModelBuilder

from .config import RARConfig

__all__ = ["RARBuilder"]


class RARBuilder(ModelBuilder):
    name = "rar"
    config_class = RARConfig

    def read_checkpoint(self, files: CheckpointFiles) -> Checkpoint:
        from zoo.weights import load_weights_file

        state, _meta = load_weights_file(files.primary)  # pickles: weights_only=True
        return Checkpoint(state_dict=state)

    def build(self, config: RARConfig):
        from .model import RAR

        return RAR(config)

    def convert(self, state_dict: Mapping[str, Any], config: RARConfig) -> Mapping[str, Any]:
        return {k: v for k, v in state_dict.items() if k != "attn_mask"}
