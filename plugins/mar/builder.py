"""The ``mar`` builder: the official ``checkpoint-last.pth`` (a training checkpoint read with
``weights_only=True``; ``argparse.Namespace`` allow-listed for its ``args``) or a safetensors
state dict (the community copy / ``zoo convert``) -> :class:`~.model.MAR`.

From the official file the EMA weights (``model_ema``, what the authors evaluate with
``use_ema=True``) are loaded; the other entries are dropped by name (:data:`DROPPED_ENTRIES`).
The KL-16 VAE card is a dependency used only to decode images, loaded on demand by
:meth:`~.model.MAR.decode`, so :meth:`MARBuilder.needed_dependencies` asks for nothing at load.

Example:
    >>> MARBuilder().name
    'mar'
"""

from __future__ import annotations

from typing import Any

from zoo.builders import Checkpoint, CheckpointFiles, ModelBuilder
from zoo.errors import CheckpointError

from .config import MARConfig

__all__ = ["MARBuilder", "DROPPED_ENTRIES", "EMA_ENTRY"]

#: The state dict evaluated by the authors (``main_mar.py --evaluate`` uses the EMA parameters).
EMA_ENTRY = "model_ema"
#: Entries of ``checkpoint-last.pth`` not loaded: the raw (non-EMA) weights and training state.
DROPPED_ENTRIES = ("model", "optimizer", "epoch", "scaler", "args")


class MARBuilder(ModelBuilder):
    name = "mar"
    config_class = MARConfig

    def needed_dependencies(self, files: CheckpointFiles, card: Any) -> set[str]:
        """Nothing at load time: the VAE is loaded when images are decoded."""
        return set()

    def read_checkpoint(self, files: CheckpointFiles) -> Checkpoint:
        import argparse

        from zoo.weights import load_checkpoint, load_safetensors

        path = files.primary
        if path.suffix == ".safetensors":
            state, _meta = load_safetensors(path)
            return Checkpoint(state_dict=state)
        ckpt = load_checkpoint(path, what="MAR", allow=[argparse.Namespace], inert_unknown=True)
        if EMA_ENTRY in ckpt and ckpt[EMA_ENTRY] is not None:
            return Checkpoint(state_dict=dict(ckpt[EMA_ENTRY]))
        if "model" in ckpt or "optimizer" in ckpt:
            raise CheckpointError(f"{path} has no '{EMA_ENTRY}' entry (entries: {sorted(ckpt)}); the released MAR "
                                  "checkpoints hold the EMA weights the authors evaluate: download checkpoint-last.pth "
                                  "from the card's weights_url")
        return Checkpoint(state_dict=dict(ckpt))

    def build(self, config: MARConfig):
        from .model import MAR

        return MAR(config)

    def finalize(self, model, files, config):
        """A model built with ``pretrained=False`` decodes with a random VAE too (no download)."""
        model.vae_pretrained = files is not None
        return model
