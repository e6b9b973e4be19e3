"""The ``xar`` builder: OliverRensu/xAR's ``xAR-{B,L,H}.pth`` (a weights-only pickle of the bare
state dict that ``eval.py`` loads strictly) -> :class:`~.model.XAR`.

:data:`DROPPED` constant buffers of the release are dropped by name (zoo rebuilds them): ``mask``
(the block-causal training mask) and every ``*.rope.freqs`` / ``freqs_cos`` / ``freqs_sin`` (the
RoPE tables). The paired VAE (``mar_vae.kl16``) is loaded when a generation first decodes.

Example:
    >>> XARBuilder().name, from_reference({"mask": 0, "encoder_blocks.0.attn.rope.freqs_cos": 0, "pred.weight": 1})
    ('xar', {'pred.weight': 1})
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from zoo.builders import Checkpoint, CheckpointFiles, ModelBuilder
from zoo.errors import CheckpointError

from .config import XARConfig

__all__ = ["DROPPED", "XARBuilder", "from_reference"]

DROPPED = ("mask", r".*\.rope\.(freqs|freqs_cos|freqs_sin)")


def from_reference(state: Mapping[str, Any]) -> dict[str, Any]:
    """The reference ``xAR`` state dict (or manifest) -> zoo's (the constant buffers dropped)."""
    return {k: v for k, v in state.items() if not any(re.fullmatch(p, k) for p in DROPPED)}


class XARBuilder(ModelBuilder):
    """Builds xAR-B/L/H."""

    name = "xar"
    config_class = XARConfig

    def needed_dependencies(self, files: CheckpointFiles, card: Any) -> set[str]:
        """Nothing at load: the VAE card is loaded when a generation first decodes."""
        return set()

    def read_checkpoint(self, files: CheckpointFiles) -> Checkpoint:
        from zoo.weights import load_weights_file

        path = files.primary
        state, _ = load_weights_file(path)
        if isinstance(state, Mapping) and "pred.weight" not in state:
            for inner in ("model_ema", "model"):  # training checkpoints
                if isinstance(state.get(inner), Mapping):
                    state = state[inner]
                    break
        if not isinstance(state, Mapping) or "pred.weight" not in state or "time_embed.mlp.0.weight" not in state:
            got = sorted(state)[:6] if isinstance(state, Mapping) else type(state).__name__
            raise CheckpointError(f"{path} is not an xAR checkpoint: expected a state dict with pred.*, time_embed.* and "
                                  f"encoder_blocks.* keys, got {got}")
        return Checkpoint(state_dict=dict(state))

    def build(self, config: XARConfig):
        from .model import XAR

        return XAR(config)

    def convert(self, state_dict: Mapping[str, Any], config: XARConfig) -> Mapping[str, Any]:
        return from_reference(state_dict)

    def finalize(self, model: Any, files: CheckpointFiles | None, config: Any) -> Any:
        model._pretrained = files is not None  # the VAE is loaded alike (random when this is)
        return model
