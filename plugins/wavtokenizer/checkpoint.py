"""Reading the official Lightning ``.ckpt`` files and converting them to zoo's layout.

The release files are PyTorch-Lightning checkpoints: ``state_dict`` holds the generator
(``feature_extractor.`` / ``backbone.`` / ``head.``) next to three discriminators and their
loss modules, and the top level holds trainer state (optimizer states, callbacks, hparams).

* Loading uses ``torch.load(weights_only=True)``. Trainer state may name classes that are not
  on torch's allowlist (Lightning's ``AttributeDict``, ``pathlib`` paths, ...); each of those is
  mapped to an inert placeholder that only stores the data it is given, so nothing from the
  file is ever imported or run and Lightning is not needed.
* Conversion keeps what inference uses and drops the rest: discriminators, the SEANet
  *decoder* (WavTokenizer decodes with the Vocos backbone), the EMA statistics of the codebook
  (``cluster_size``, ``embed_avg``) and ``inited``. The codebook's k-means re-initialisation
  never runs in zoo; a checkpoint whose ``inited`` flag is 0 is refused, because its codebook
  was never trained (the reference would silently re-run k-means on the first batch).
* Weight-norm pairs are folded: ``w = g * v / ||v||`` with the norm over all dims but 0 (the
  old ``weight_g``/``weight_v`` names and the ``parametrizations.weight.original0/1`` names).

Example:
    >>> import torch
    >>> sd = {"feature_extractor.encodec.encoder.model.0.conv.conv.weight_g": torch.ones(2, 1, 1),
    ...       "feature_extractor.encodec.encoder.model.0.conv.conv.weight_v": torch.ones(2, 1, 4),
    ...       "feature_extractor.encodec.encoder.model.0.conv.conv.bias": torch.zeros(2),
    ...       "feature_extractor.encodec.quantizer.vq.layers.0._codebook.embed": torch.zeros(8, 2),
    ...       "feature_extractor.encodec.quantizer.vq.layers.0._codebook.embed_avg": torch.zeros(8, 2),
    ...       "multiperioddisc.w": torch.zeros(1)}
    >>> sorted(convert_state_dict(sd))
    ['encoder.model.0.bias', 'encoder.model.0.weight', 'quantizer.embed']
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Mapping

import torch

from zoo.weights import load_checkpoint

from ._core import CheckpointError

__all__ = ["load_ckpt", "convert_state_dict", "fold_weight_norm", "INFERENCE_PREFIXES"]

INFERENCE_PREFIXES = ("feature_extractor.", "backbone.", "head.")
_CODEBOOK = "feature_extractor.encodec.quantizer.vq.layers.0._codebook."
_ENCODER = "feature_extractor.encodec.encoder."
_DROPPED_CODEBOOK = ("cluster_size", "embed_avg", "inited")


def load_ckpt(path: str | Path) -> dict[str, Any]:
    """``torch.load(path, weights_only=True)`` with inert placeholders for unknown classes
    (:func:`zoo.weights.load_checkpoint`). Returns the whole checkpoint mapping (``state_dict``
    plus trainer state)."""
    return load_checkpoint(path, what="WavTokenizer", inert_unknown=True)


def fold_weight_norm(g: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """``g * v / ||v||``, the norm taken over every dim but 0 (``torch.nn.utils.weight_norm``, dim=0).

    Example:
        >>> fold_weight_norm(torch.full((1, 1, 1), 2.0), torch.tensor([[[3.0, 4.0]]])).tolist()
        [[[1.2000000476837158, 1.600000023841858]]]
    """
    norm = v.flatten(1).norm(dim=1).view(-1, *([1] * (v.dim() - 1)))
    return v * (g / norm)


_WN = re.compile(r"^(.*)\.(weight_g|weight_v|parametrizations\.weight\.original0|parametrizations\.weight\.original1)$")


def _is_zoo_layout(state: Mapping[str, Any]) -> bool:
    return "quantizer.embed" in state and any(k.startswith("encoder.model.") for k in state)


def convert_state_dict(raw: Mapping[str, torch.Tensor], *, n_fft: int | None = None) -> dict[str, torch.Tensor]:
    """Official (Lightning) key layout -> zoo's module layout; zoo-layout input passes through.

    ``raw`` may be the checkpoint's ``state_dict`` or the whole checkpoint mapping.
    """
    if "state_dict" in raw and isinstance(raw["state_dict"], Mapping):
        raw = raw["state_dict"]
    if _is_zoo_layout(raw):
        return dict(raw)
    keep = {k: v for k, v in raw.items() if k.startswith(INFERENCE_PREFIXES) and not k.startswith("feature_extractor.encodec.decoder.")}
    if not keep:
        raise CheckpointError(
            "no WavTokenizer generator weights found (expected keys under feature_extractor./backbone./head.); "
            f"first keys: {list(raw)[:5]}"
        )
    out: dict[str, torch.Tensor] = {}
    pairs: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in keep.items():
        if key.startswith("feature_extractor.encodec.quantizer."):
            if not key.startswith(_CODEBOOK):
                raise CheckpointError(
                    f"unexpected quantizer key {key!r}: zoo supports the released single-codebook models "
                    "(vq.layers.0 only)"
                )
            leaf = key[len(_CODEBOOK):]
            if leaf == "embed":
                out["quantizer.embed"] = value
            elif leaf == "inited":
                if not bool(value.reshape(-1)[0]):
                    raise CheckpointError(
                        f"{key} is 0: this codebook was never initialised (the reference would run k-means "
                        "on the first batch it sees). Use a trained checkpoint."
                    )
            elif leaf not in _DROPPED_CODEBOOK:
                raise CheckpointError(f"unexpected codebook key {key!r}")
            continue
        if key.startswith(_ENCODER):
            name = "encoder." + key[len(_ENCODER):].replace(".conv.conv.", ".")
            m = _WN.match(name)
            if m:
                part = "g" if m.group(2) in ("weight_g", "parametrizations.weight.original0") else "v"
                pairs.setdefault(m.group(1), {})[part] = value
            else:
                out[name] = value
            continue
        if key.startswith("feature_extractor."):
            raise CheckpointError(f"unexpected feature_extractor key {key!r}")
        if key == "head.istft.window":
            want = torch.hann_window(value.shape[0], dtype=value.dtype)
            if n_fft is not None and value.shape[0] != n_fft:
                raise CheckpointError(f"head.istft.window has {value.shape[0]} samples but the config says n_fft={n_fft}")
            if not torch.allclose(value, want, atol=1e-6):
                raise CheckpointError("head.istft.window is not a periodic Hann window; zoo's ISTFT head assumes it")
            continue
        out[key] = value
    for base, gv in pairs.items():
        if set(gv) != {"g", "v"}:
            raise CheckpointError(f"weight-norm pair for {base} is incomplete: has {sorted(gv)}, needs g and v")
        out[base + ".weight"] = fold_weight_norm(gv["g"].float(), gv["v"].float()).to(gv["v"].dtype)
    if "quantizer.embed" not in out:
        raise CheckpointError(f"missing codebook: no {_CODEBOOK}embed in the checkpoint")
    return out
