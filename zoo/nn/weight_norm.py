"""Weight normalisation folded at load time: ``w = g * v / ||v||`` (norm over every dim but 0,
as ``torch.nn.utils.weight_norm`` and ``torch.nn.utils.parametrizations.weight_norm`` with their
default ``dim=0``), so audio codecs run plain ``Conv1d`` / ``ConvTranspose1d`` layers.

Both key spellings of a release are folded: ``<m>.weight_g`` / ``<m>.weight_v`` (the old
hook) and ``<m>.parametrizations.weight.original0`` / ``original1`` (parametrizations).

Example:
    >>> import torch
    >>> state = {"conv.weight_g": torch.full((1, 1, 1), 2.0), "conv.weight_v": torch.tensor([[[3.0, 4.0]]]),
    ...          "conv.bias": torch.zeros(1)}
    >>> folded = fold_weight_norms(state)
    >>> sorted(folded), folded["conv.weight"].tolist()
    (['conv.bias', 'conv.weight'], [[[1.2000000476837158, 1.600000023841858]]])
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import torch

from zoo.errors import CheckpointError

__all__ = ["fold_weight_norm", "fold_weight_norms"]

_WN = re.compile(r"^(.*)\.(weight_g|weight_v|parametrizations\.weight\.original0|parametrizations\.weight\.original1)$")
_ROLE = {"weight_g": "g", "parametrizations.weight.original0": "g", "weight_v": "v", "parametrizations.weight.original1": "v"}


def fold_weight_norm(g: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """``g * v / ||v||``, the norm taken over every dim but 0."""
    norm = v.flatten(1).norm(dim=1).view(-1, *([1] * (v.dim() - 1)))
    return v * (g / norm)


def fold_weight_norms(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Every ``(g, v)`` pair of ``state`` folded into ``<module>.weight``; other keys pass through.
    A pair with one half missing is a :class:`~zoo.errors.CheckpointError` naming the module."""
    out: dict[str, torch.Tensor] = {}
    pairs: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in state.items():
        m = _WN.match(key)
        if m:
            pairs.setdefault(m.group(1), {})[_ROLE[m.group(2)]] = value
        else:
            out[key] = value
    for module, pair in pairs.items():
        if set(pair) != {"g", "v"}:
            raise CheckpointError(f"weight norm of {module!r} has only its {''.join(pair)} half; the checkpoint is incomplete "
                                  "(download it again)")
        out[f"{module}.weight"] = fold_weight_norm(pair["g"].float(), pair["v"].float()).to(pair["v"].dtype)
    return out
