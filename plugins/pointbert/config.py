"""Point-BERT dVAE typed config (field names of ``cfgs/ShapeNet55_models/dvae.yaml`` ``model``).

This module does not import torch.

Example:
    >>> cfg = from_reference_config({"NAME": "DiscreteVAE", "group_size": 32, "num_group": 64, "encoder_dims": 256,
    ...                              "num_tokens": 8192, "tokens_dims": 256, "decoder_dims": 256})
    >>> cfg["num_tokens"], cfg["num_group"]
    (8192, 64)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

__all__ = ["PointBERTConfig", "from_reference_config"]


@dataclass
class PointBERTConfig:
    """Architecture of a Point-BERT dVAE.

    * ``num_points``: points per cloud the model was trained on (``npoints`` of the dataset config);
      ``num_group`` centres are picked by farthest point sampling, each with its ``group_size``
      nearest points (a patch, centred on its centre);
    * ``encoder_dims``: the mini-PointNet patch embedding; ``num_tokens`` codes of ``tokens_dims``
      (the DGCNN ``dgcnn_1`` predicts the code logits); ``decoder_dims``: ``dgcnn_2``'s output, read
      by a FoldingNet-style decoder that rebuilds ``group_size`` points per patch.
    """

    num_points: int = 1024
    group_size: int = 32
    num_group: int = 64
    encoder_dims: int = 256
    num_tokens: int = 8192
    tokens_dims: int = 256
    decoder_dims: int = 256


def from_reference_config(model: Mapping[str, Any]) -> dict[str, Any]:
    """The yaml's ``model`` section (``NAME: DiscreteVAE`` + sizes) -> :class:`PointBERTConfig` fields."""
    from zoo.errors import ConfigError

    if model.get("NAME", "DiscreteVAE") != "DiscreteVAE":
        raise ConfigError(f"Point-BERT model {model.get('NAME')!r} is not the dVAE tokenizer (NAME: DiscreteVAE)")
    known = {f.name for f in fields(PointBERTConfig)}
    unknown = sorted(set(model) - known - {"NAME"})
    if unknown:
        raise ConfigError(f"unknown Point-BERT dVAE field(s) {unknown}; known: {sorted(known)}")
    out = {k: int(v) for k, v in model.items() if k in known}
    if out.get("group_size", 32) % 4:
        raise ConfigError("group_size must be a multiple of 4 (the decoder folds a 2x2 grid per coarse point)")
    return out
