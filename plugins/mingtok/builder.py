"""The ``mingtok`` builder: ``inclusionAI/MingTok-Vision`` (``config.json`` + ``model.safetensors``,
the transformers layout of ``MingTok(PreTrainedModel)``) -> :class:`~.model.MingTok`, without
``trust_remote_code``: ``config.json`` is read as data (:func:`~.config.from_hf_config`) and the
weights load strictly after a rename onto zoo's block layout (:func:`from_reference`):

* the one block chunk level goes (``blocks.0.{i}.`` -> ``blocks.{i}.``);
* DINOv2's fused SwiGLU ``mlp.w12`` (``[gate | value]``) becomes ``mlp.fc1`` (``[value | gate]``,
  halves swapped) and ``mlp.w3`` becomes ``mlp.fc2``; the pixel decoder's GELU ``mlp.fc1``/``fc2``
  keep their names;
* ``low_level_encoder.patch_embed.proj``, ``cls_token``, ``pos_embed``, ``out_norm``, ``out_proj``,
  ``semantic_decoder.in_proj``/``norm``, ``pixel_decoder.norm``/``head`` and ``sem_to_pix`` keep theirs.

Dropped by name: ``target_backbone.*`` (the training-time teacher the reference filters out too).

Example:
    >>> import torch
    >>> w12 = torch.cat([torch.zeros(2, 3), torch.ones(2, 3)])          # gate rows 0, value rows 1
    >>> out = from_reference({"semantic_decoder.blocks.0.5.mlp.w12.weight": w12})
    >>> out["semantic_decoder.blocks.5.mlp.fc1.weight"][:, 0].tolist()
    [1.0, 1.0, 0.0, 0.0]
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from zoo.builders import Checkpoint, CheckpointFiles, ModelBuilder
from zoo.errors import CheckpointError, ConfigError

from .config import MingTokConfig, from_hf_config

__all__ = ["MingTokBuilder", "DROPPED_PREFIXES", "from_reference", "to_reference"]

DROPPED_PREFIXES = ("target_backbone.",)
_REF_BLOCK = re.compile(r"^((?:low_level_encoder|semantic_decoder|pixel_decoder)\.blocks\.)0\.(\d+)\.(.*)$")
_ZOO_BLOCK = re.compile(r"^((?:low_level_encoder|semantic_decoder|pixel_decoder)\.blocks\.)(\d+)\.(.*)$")


def _swap(value: Any) -> Any:
    """Swap the two halves along dim 0 (tensors), or keep a manifest entry's shape."""
    if isinstance(value, tuple):
        return value
    import torch

    a, b = value.chunk(2, dim=0)
    return torch.cat([b, a], dim=0)


def from_reference(state: Mapping[str, Any]) -> dict[str, Any]:
    """The reference ``MingTok`` state dict (or manifest) -> zoo's keys."""
    out = {}
    for key, value in state.items():
        if key.startswith(DROPPED_PREFIXES):
            continue
        m = _REF_BLOCK.match(key)
        if m:
            rest = m[3]
            if rest.startswith("mlp.w12."):
                rest, value = "mlp.fc1." + rest[len("mlp.w12."):], _swap(value)
            elif rest.startswith("mlp.w3."):
                rest = "mlp.fc2." + rest[len("mlp.w3."):]
            key = f"{m[1]}{m[2]}.{rest}"
        out[key] = value
    return out


def to_reference(state: Mapping[str, Any], config: MingTokConfig) -> dict[str, Any]:
    """zoo's keys (or manifest) -> the reference's."""
    swiglu = {"low_level_encoder": config.encoder_ffn != "mlp", "semantic_decoder": config.semantic_ffn != "mlp",
              "pixel_decoder": False}
    out = {}
    for key, value in state.items():
        m = _ZOO_BLOCK.match(key)
        if m:
            rest = m[3]
            if swiglu[m[1].split(".")[0]] and rest.startswith("mlp.fc1."):
                rest, value = "mlp.w12." + rest[len("mlp.fc1."):], _swap(value)
            elif swiglu[m[1].split(".")[0]] and rest.startswith("mlp.fc2."):
                rest = "mlp.w3." + rest[len("mlp.fc2."):]
            key = f"{m[1]}0.{m[2]}.{rest}"
        out[key] = value
    return out


class MingTokBuilder(ModelBuilder):
    """MingTok-Vision (``inclusionAI/MingTok-Vision``)."""

    name = "mingtok"
    config_class = MingTokConfig

    def read_checkpoint(self, files: CheckpointFiles) -> Checkpoint:
        from zoo.weights import load_weights_file

        paths = {Path(n).name: Path(p) for n, p in files.paths.items()}
        weights = [p for n, p in paths.items() if n.endswith((".safetensors", ".bin", ".pt", ".pth"))]
        if not weights:
            raise CheckpointError(f"no MingTok weights file among {sorted(paths)} ({files.origin})")
        config_path = paths.get("config.json") or weights[0].parent / "config.json"
        config: dict[str, Any] = {}
        if config_path.exists():
            try:
                raw = json.loads(config_path.read_text())
            except json.JSONDecodeError as exc:
                raise ConfigError(f"{config_path} is not valid JSON: {exc}") from None
            config = from_hf_config(raw)
        state, _ = load_weights_file(weights[0])
        if not any(str(k).startswith("low_level_encoder.") for k in state):
            raise CheckpointError(f"{weights[0]} is not a MingTok checkpoint: no low_level_encoder.* keys "
                                  f"(got {sorted(state)[:4]})")
        return Checkpoint(state_dict=dict(state), config=config, extra={"path": str(weights[0])})

    def build(self, config: MingTokConfig):
        from .model import MingTok

        return MingTok(config)

    def convert(self, state_dict: Mapping[str, Any], config: MingTokConfig) -> Mapping[str, Any]:
        return from_reference(state_dict)
