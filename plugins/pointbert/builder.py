"""The ``point_bert`` builder: the released ``dVAE.pth`` -> :class:`~.model.PointBERTdVAE`.

The release is a training checkpoint (``torch.save`` of ``{"base_model", "optimizer", "epoch",
"metrics", "best_metrics"}``), read with ``weights_only=True`` (unknown classes in the training
state become inert placeholders; nothing runs). ``convert`` keeps ``base_model`` (or ``model``),
strips the ``module.`` prefix DistributedDataParallel adds (as the reference's ``load_model``
does) and leaves the optimizer, epoch and metrics behind.

Example:
    >>> b = PointBERTBuilder()
    >>> b.name, b.config_class.__name__
    ('point_bert', 'PointBERTConfig')
    >>> sorted(b.convert({"module.codebook": 1, "module.encoder.first_conv.0.bias": 2}, None))
    ['codebook', 'encoder.first_conv.0.bias']
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from zoo.builders import Checkpoint, CheckpointFiles, ModelBuilder, weights_file

from .config import PointBERTConfig

__all__ = ["PointBERTBuilder", "read_release"]


def read_release(path) -> dict[str, Any]:
    """The model's state dict of a Point-BERT ``.pth`` (``base_model`` / ``model`` entry, or a bare state dict)."""
    from zoo.errors import CheckpointError
    from zoo.weights import load_checkpoint

    ckpt = load_checkpoint(path, what="Point-BERT dVAE", inert_unknown=True)
    for key in ("base_model", "model"):
        if isinstance(ckpt.get(key), Mapping):
            return dict(ckpt[key])
    if any(k.endswith("codebook") for k in ckpt):
        return dict(ckpt)
    raise CheckpointError(f"{path}: no 'base_model' / 'model' state dict in this Point-BERT checkpoint (keys: {sorted(ckpt)[:8]})")


class PointBERTBuilder(ModelBuilder):
    """Builds the Point-BERT dVAE tokenizer."""

    name = "point_bert"
    config_class = PointBERTConfig

    def read_checkpoint(self, files: CheckpointFiles) -> Checkpoint:
        _path, state = weights_file(files, "Point-BERT dVAE", (".pth", ".pt", ".safetensors"), read_pickle=read_release,
                                    expected="dVAE.pth (from the card's weights_url)")
        return Checkpoint(state_dict=state)

    def build(self, config: PointBERTConfig):
        from .model import PointBERTdVAE

        return PointBERTdVAE(config)

    def convert(self, state_dict: Mapping[str, Any], config: PointBERTConfig) -> Mapping[str, Any]:
        return {(k[len("module."):] if k.startswith("module.") else k): v for k, v in state_dict.items()}
