"""The ``lightningdit`` builder: the official ``lightningdit-xl-imagenet256-{800ep,64ep}.pt``
(read with ``weights_only=True``) or a safetensors state dict -> :class:`~.model.LightningDiT`.

A training checkpoint ``{"model", "ema", "opt", "config"}`` loads its ``ema`` weights (what the
reference's ``inference.py`` loads: ``if "ema" in checkpoint``); the other entries are dropped
by name (:data:`DROPPED_ENTRIES`). A bare state dict loads as is. The VA-VAE card (the decoder
and the latent statistics) is loaded on demand by :meth:`~.model.LightningDiT.decode`, so
:meth:`LightningDiTBuilder.needed_dependencies` asks for nothing at load.

Example:
    >>> LightningDiTBuilder().name
    'lightningdit'
"""

from __future__ import annotations

from typing import Any

from zoo.builders import Checkpoint, CheckpointFiles, ModelBuilder

from .config import LightningDiTConfig

__all__ = ["LightningDiTBuilder", "DROPPED_ENTRIES"]

#: Entries of a training checkpoint not loaded when it holds ``ema``.
DROPPED_ENTRIES = ("model", "opt", "config")


class LightningDiTBuilder(ModelBuilder):
    name = "lightningdit"
    config_class = LightningDiTConfig

    def needed_dependencies(self, files: CheckpointFiles, card: Any) -> set[str]:
        """Nothing at load time: the VA-VAE is loaded when images are decoded."""
        return set()

    def read_checkpoint(self, files: CheckpointFiles) -> Checkpoint:
        from zoo.weights import load_checkpoint, load_safetensors

        path = files.primary
        if path.suffix == ".safetensors":
            state, _meta = load_safetensors(path)
            return Checkpoint(state_dict=state)
        ckpt = load_checkpoint(path, what="LightningDiT", inert_unknown=True)
        if isinstance(ckpt.get("ema"), dict):
            return Checkpoint(state_dict=dict(ckpt["ema"]))
        return Checkpoint(state_dict=dict(ckpt))

    def build(self, config: LightningDiTConfig):
        from .model import LightningDiT

        return LightningDiT(config)

    def finalize(self, model, files, config):
        """A model built with ``pretrained=False`` decodes with a random VAE too (no download)."""
        model.vae_pretrained = files is not None
        return model
