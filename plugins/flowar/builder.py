"""The ``flowar`` builder: OliverRensu/FlowAR's ``FlowAR-{S,L,H}.pth`` (a weights-only pickle of
the bare state dict that ``eval.py`` loads strictly) -> :class:`~.model.FlowAR`.

:data:`DROPPED` constant buffers of the release are dropped by name (zoo rebuilds them): ``mask``
(the ``[1, 1, L, L]`` block-causal training mask) and every ``*.rope.freqs`` (the RoPE
frequencies). The paired VAE (``mar_vae.kl16``) is loaded when a generation first decodes
(:meth:`FlowARBuilder.needed_dependencies` resolves nothing at load).

Example:
    >>> FlowARBuilder().name, from_reference({"mask": 0, "encoder_blocks.0.attn.rope.freqs": 0, "z_proj.weight": 1})
    ('flowar', {'z_proj.weight': 1})
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from zoo.builders import Checkpoint, CheckpointFiles, ModelBuilder
from zoo.errors import CheckpointError

from .config import FlowARConfig

__all__ = ["DROPPED", "FlowARBuilder", "from_reference"]

DROPPED = ("mask", r".*\.rope\.freqs")


def from_reference(state: Mapping[str, Any]) -> dict[str, Any]:
    """The reference ``FlowAR`` state dict (or manifest) -> zoo's (the constant buffers dropped)."""
    return {k: v for k, v in state.items() if not any(re.fullmatch(p, k) for p in DROPPED)}


class FlowARBuilder(ModelBuilder):
    """Builds FlowAR-S/L/H."""

    name = "flowar"
    config_class = FlowARConfig

    def needed_dependencies(self, files: CheckpointFiles, card: Any) -> set[str]:
        """Nothing at load: the VAE card is loaded when a generation first decodes."""
        return set()

    def read_checkpoint(self, files: CheckpointFiles) -> Checkpoint:
        from zoo.weights import load_weights_file

        path = files.primary
        state, _ = load_weights_file(path)
        if isinstance(state, Mapping) and "flownet.input_proj.weight" not in state:
            for inner in ("model_ema", "model"):  # training checkpoints (util/misc.py save_model)
                if isinstance(state.get(inner), Mapping):
                    state = state[inner]
                    break
        if not isinstance(state, Mapping) or "flownet.input_proj.weight" not in state:
            got = sorted(state)[:6] if isinstance(state, Mapping) else type(state).__name__
            raise CheckpointError(f"{path} is not a FlowAR checkpoint: expected a state dict with flownet.* and "
                                  f"encoder_blocks.* keys, got {got}")
        return Checkpoint(state_dict=dict(state))

    def build(self, config: FlowARConfig):
        from .model import FlowAR

        return FlowAR(config)

    def convert(self, state_dict: Mapping[str, Any], config: FlowARConfig) -> Mapping[str, Any]:
        return from_reference(state_dict)

    def finalize(self, model: Any, files: CheckpointFiles | None, config: Any) -> Any:
        model._pretrained = files is not None  # the VAE is loaded alike (random when this is)
        return model
