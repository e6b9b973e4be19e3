"""Language-Codec's release checkpoint: a Lightning ``.ckpt`` read weights-only, mapped to zoo's layout.

Kept (the reference's ``from_pretrained0802`` keeps ``feature_extractor.`` / ``backbone.`` /
``head.``): the SEANet encoder (weight norm folded, ``model.N.conv.conv.`` -> ``model.N.``), the 8
codebooks with their EMA buffers, the Vocos backbone and the ISTFT head's linear layer.
Dropped by name (not used by the inference path): ``feature_extractor.encodec.decoder.*`` (the
EnCodec SEANet decoder, unused by ``encode_infer`` / ``decode``) and ``head.istft.window``
(zoo computes the same Hann window; it is checked). Everything else in the Lightning file
(discriminators, optimizer state, loss modules) is outside the kept prefixes.

Example:
    >>> import torch
    >>> sd = convert_state_dict({"head.out.weight": torch.zeros(2, 2), "head.out.bias": torch.zeros(2),
    ...                          "feature_extractor.encodec.encoder.model.0.conv.conv.weight_g": torch.ones(1, 1, 1),
    ...                          "feature_extractor.encodec.encoder.model.0.conv.conv.weight_v": torch.ones(1, 1, 2)})
    >>> sorted(sd)
    ['encoder.model.0.weight', 'head.out.bias', 'head.out.weight']
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import torch

from zoo.errors import CheckpointError
from zoo.nn.weight_norm import fold_weight_norms
from zoo.weights import load_checkpoint

__all__ = ["load_ckpt", "convert_state_dict", "KEPT_PREFIXES", "DROPPED"]

KEPT_PREFIXES = ("feature_extractor.", "backbone.", "head.")
DROPPED = ("feature_extractor.encodec.decoder.", "head.istft.window")
_ENCODER = "feature_extractor.encodec.encoder."
_QUANTIZER = "feature_extractor.encodec.quantizer.vq."


def load_ckpt(path: str | Path) -> dict[str, Any]:
    """``torch.load(path, weights_only=True)`` with inert placeholders for classes the Lightning
    file names (hyper-parameters, callbacks; :func:`zoo.weights.load_checkpoint`); returns the
    whole checkpoint mapping."""
    return load_checkpoint(path, what="Language-Codec", inert_unknown=True, mmap=False)


def _is_zoo_layout(state: Mapping[str, Any]) -> bool:
    return any(k.startswith("quantizer.layers.") for k in state) and not any(k.startswith("feature_extractor.") for k in state)


def convert_state_dict(raw: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Official (Lightning) key layout -> zoo's; zoo-layout input passes through."""
    if "state_dict" in raw and isinstance(raw["state_dict"], Mapping):
        raw = raw["state_dict"]
    if _is_zoo_layout(raw):
        return dict(raw)
    keep = {k: v for k, v in raw.items() if k.startswith(KEPT_PREFIXES) and not k.startswith(DROPPED)}
    if not keep:
        raise CheckpointError("no Language-Codec weights found (expected keys under feature_extractor./backbone./head.); "
                              f"first keys: {list(raw)[:5]}")
    window = raw.get("head.istft.window")
    if window is not None and not torch.allclose(window.float(), torch.hann_window(window.shape[0]), atol=1e-6):
        raise CheckpointError("head.istft.window is not a Hann window: this checkpoint is not a Language-Codec release")
    out: dict[str, torch.Tensor] = {}
    encoder: dict[str, torch.Tensor] = {}
    for key, value in keep.items():
        if key.startswith(_ENCODER):
            encoder["encoder." + key[len(_ENCODER):].replace(".conv.conv.", ".")] = value
        elif key.startswith(_QUANTIZER):
            name = "quantizer." + key[len(_QUANTIZER):]
            if name.endswith("._codebook.inited") and not bool(value.reshape(-1)[0]):
                raise CheckpointError(f"{key} is 0: this codebook was never initialised (the reference would run k-means on "
                                      "the first batch it sees). Use a trained checkpoint.")
            out[name] = value
        elif key.startswith("feature_extractor."):
            raise CheckpointError(f"unexpected key {key!r}: not a Language-Codec release layout")
        else:
            out[key] = value
    out.update(fold_weight_norms(encoder))
    return out
