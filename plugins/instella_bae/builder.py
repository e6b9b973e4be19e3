"""The ``instella_bae`` builder: ``bae/model.safetensors`` of ``amd/Instella-T2I`` -> :class:`~.model.InstellaBAE`.

The release's keys load strictly after a rename onto zoo's block layout (:func:`from_reference`):
per block, ``attn.q_proj``/``k_proj``/``v_proj`` are concatenated into ``attn.qkv``,
``mlp.up_proj``/``gate_proj`` into ``mlp.fc1`` (value then gate), and ``o_proj``, ``down_proj``,
``input_layernorm``, ``post_attention_layernorm``, ``norm_q``/``norm_k`` renamed; the quantizer's
``proj.0`` becomes ``proj``. Dropped by name (training only): ``decoder.repa_proj.*`` (the REPA
alignment head, used only when training with ``use_repa``). Any other unknown key is an error.

Example:
    >>> import torch
    >>> ref = {f"encoder.transformer_blocks.0.attn.{n}_proj.weight": torch.full((2, 2), float(i)) for i, n in enumerate("qkv")}
    >>> from_reference(ref)["encoder.transformer_blocks.0.attn.qkv.weight"][:, 0].tolist()
    [0.0, 0.0, 1.0, 1.0, 2.0, 2.0]
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from zoo.builders import Checkpoint, CheckpointFiles, ModelBuilder
from zoo.errors import CheckpointError

from .config import InstellaBAEConfig

__all__ = ["InstellaBAEBuilder", "DROPPED_PREFIXES", "from_reference", "to_reference"]

#: training-only parts of a BAE checkpoint, dropped by name before the strict load
DROPPED_PREFIXES = ("decoder.repa_proj.",)
_BLOCK = re.compile(r"^((?:encoder|decoder)\.transformer_blocks\.\d+\.)(.*)$")
_RENAME = {"input_layernorm.": "norm1.", "post_attention_layernorm.": "norm2.", "attn.o_proj.": "attn.proj.",
           "attn.norm_q.": "attn.q_norm.", "attn.norm_k.": "attn.k_norm.", "mlp.down_proj.": "mlp.fc2."}
_FUSED = {"attn.qkv.weight": ("attn.q_proj.weight", "attn.k_proj.weight", "attn.v_proj.weight"),
          "mlp.fc1.weight": ("mlp.up_proj.weight", "mlp.gate_proj.weight")}
_TOP = {"quantizer.proj.0.": "quantizer.proj."}


def _cat(parts: list[Any]) -> Any:
    """Concatenate tensors along dim 0, or manifest entries ``(shape, dtype)`` by their first dim."""
    if isinstance(parts[0], tuple):
        shape = (sum(p[0][0] for p in parts), *parts[0][0][1:])
        return (shape, parts[0][1])
    import torch

    return torch.cat(parts, dim=0)


def _split(value: Any, n: int) -> list[Any]:
    if isinstance(value, tuple):
        return [((value[0][0] // n, *value[0][1:]), value[1])] * n
    return list(value.chunk(n, dim=0))


def from_reference(state: Mapping[str, Any]) -> dict[str, Any]:
    """The reference ``BAE_Model`` state dict (or manifest) -> zoo's keys (training-only prefixes dropped)."""
    out: dict[str, Any] = {}
    blocks: dict[str, dict[str, Any]] = {}
    for key, value in state.items():
        if key.startswith(DROPPED_PREFIXES):
            continue
        m = _BLOCK.match(key)
        if m:
            blocks.setdefault(m[1], {})[m[2]] = value
            continue
        for old, new in _TOP.items():
            if key.startswith(old):
                key = new + key[len(old):]
        out[key] = value
    for prefix, parts in blocks.items():
        for fused, names in _FUSED.items():
            if all(n in parts for n in names):
                out[prefix + fused] = _cat([parts.pop(n) for n in names])
        for rest, value in parts.items():
            for old, new in _RENAME.items():
                if rest.startswith(old):
                    rest = new + rest[len(old):]
                    break
            out[prefix + rest] = value
    return out


def to_reference(state: Mapping[str, Any]) -> dict[str, Any]:
    """zoo's keys (or manifest) -> the reference's (the inverse of :func:`from_reference`)."""
    out: dict[str, Any] = {}
    back = {v: k for k, v in _RENAME.items()}
    for key, value in state.items():
        m = _BLOCK.match(key)
        if not m:
            for old, new in _TOP.items():
                if key.startswith(new):
                    key = old + key[len(new):]
            out[key] = value
            continue
        prefix, rest = m[1], m[2]
        if rest in _FUSED:
            names = _FUSED[rest]
            for name, part in zip(names, _split(value, len(names))):
                out[prefix + name] = part
            continue
        for new, old in back.items():
            if rest.startswith(new):
                rest = old + rest[len(new):]
                break
        out[prefix + rest] = value
    return out


class InstellaBAEBuilder(ModelBuilder):
    """Instella-T2I's binary autoencoder (``amd/Instella-T2I``, ``bae/model.safetensors``)."""

    name = "instella_bae"
    config_class = InstellaBAEConfig

    def read_checkpoint(self, files: CheckpointFiles) -> Checkpoint:
        from zoo.weights import load_weights_file

        path = files.primary
        state, _ = load_weights_file(path)
        if not any(str(k).startswith("encoder.transformer_blocks.") for k in state):
            raise CheckpointError(f"{path} is not an Instella-T2I BAE checkpoint: no encoder.transformer_blocks.* keys "
                                  f"(got {sorted(state)[:4]})")
        return Checkpoint(state_dict=dict(state), extra={"path": str(path)})

    def build(self, config: InstellaBAEConfig):
        from .model import InstellaBAE

        return InstellaBAE(config)

    def convert(self, state_dict: Mapping[str, Any], config: InstellaBAEConfig) -> Mapping[str, Any]:
        return from_reference(state_dict)
