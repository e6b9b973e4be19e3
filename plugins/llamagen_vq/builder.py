"""The ``llamagen_vq`` builder: LlamaGen's ``vq_ds*.pt`` -> :class:`~.model.LlamaGenVQ`.

* ``read_checkpoint`` loads the ``.pt`` with ``weights_only=True`` (the releases are pickles of
  ``{"model": state_dict}``: dicts, ``OrderedDict`` and tensors only; nothing is allow-listed) and
  takes its ``"model"`` entry (a bare state dict and safetensors files are accepted too).
* ``convert`` drops :data:`DROPPED_KEYS` (``quantize.codebook_used``: the training-time usage
  ring buffer of ``codebook_show_usage``) and renames the LlamaGen layout
  (``conv_blocks.i.res.j``, ``mid.0``, ``nin_shortcut``, ``q``/``k``/``v``/``proj_out`` 1x1 convs)
  onto zoo's conv core with :func:`zoo.nn.conv_layouts.convert_state_dict`; the load is strict.

Example:
    >>> b = LlamaGenVQBuilder()
    >>> b.name, b.config_class.__name__
    ('llamagen_vq', 'LlamaGenVQConfig')
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from zoo.builders import Checkpoint, CheckpointFiles, ModelBuilder
from zoo.errors import CheckpointError

from .config import LlamaGenVQConfig

__all__ = ["DROPPED_KEYS", "LlamaGenVQBuilder", "from_reference", "to_reference"]

#: Keys of the release that inference does not use, dropped by name before the strict load.
DROPPED_KEYS = ("quantize.codebook_used",)


def from_reference(state: Mapping[str, Any], config: LlamaGenVQConfig) -> dict[str, Any]:
    """The reference ``VQModel`` state dict (or manifest) -> zoo's keys (dropped keys removed)."""
    from zoo.nn.conv_layouts import convert_state_dict

    kept = {k: v for k, v in state.items() if k not in DROPPED_KEYS}
    return convert_state_dict(kept, "llamagen", "diffusers", num_levels=len(config.encoder_ch_mult))


def to_reference(state: Mapping[str, Any], config: LlamaGenVQConfig) -> dict[str, Any]:
    """zoo's state dict (or manifest) -> the reference ``VQModel`` keys (without ``codebook_used``)."""
    from zoo.nn.conv_layouts import convert_state_dict

    return convert_state_dict(state, "diffusers", "llamagen", num_levels=len(config.encoder_ch_mult))


class LlamaGenVQBuilder(ModelBuilder):
    """Builds every LlamaGen VQ release (``vq_ds16_c2i``, ``vq_ds8_c2i``, ``vq_ds16_t2i``)."""

    name = "llamagen_vq"
    config_class = LlamaGenVQConfig

    def read_checkpoint(self, files: CheckpointFiles) -> Checkpoint:
        from zoo.weights import load_weights_file

        path = Path(files.primary)
        state, _ = load_weights_file(path)
        if isinstance(state, Mapping) and "model" in state and isinstance(state["model"], Mapping):
            state = state["model"]
        if not isinstance(state, Mapping) or not any(str(k).startswith("encoder.") for k in state):
            got = sorted(state)[:6] if isinstance(state, Mapping) else type(state).__name__
            raise CheckpointError(f"{path} is not a LlamaGen VQ checkpoint: expected {{'model': state_dict}} with "
                                  f"encoder.* / decoder.* / quantize.* keys, got {got}")
        return Checkpoint(state_dict=dict(state), extra={"path": str(path)})

    def build(self, config: LlamaGenVQConfig):
        from .model import LlamaGenVQ

        return LlamaGenVQ(config)

    def convert(self, state_dict: Mapping[str, Any], config: LlamaGenVQConfig) -> Mapping[str, Any]:
        return from_reference(state_dict, config)
