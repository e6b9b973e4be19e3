"""The ``meditok`` builder: ``meditok_simple_v1.pth`` -> :class:`~.model.MedITok`.

* ``read_checkpoint`` loads the ``.pth`` with ``weights_only=True`` (the release is the bare state
  dict ``build_meditok`` passes to ``load_state_dict``; a ``"model"`` / ``"state_dict"`` wrapper is
  unwrapped too) and reads ``drop_alignment`` from whether the alignment head is present.
* ``convert`` (:func:`from_reference`) is the key map: ``quantizer.codebooks.{g}.codebook.weight``
  -> ``quantizer.codebooks.{g}.weight`` (zoo's :class:`~zoo.nn.multi_codebook.MultiCodebookVQ`), and
  drops :data:`DROPPED_SUFFIXES` by name (``quantizer.codebooks.{g}.vocab_usage``: training-time usage
  statistics). Every other key loads unchanged; the load is strict.

Example:
    >>> sorted(from_reference({"quantizer.codebooks.0.codebook.weight": 1, "quantizer.codebooks.0.vocab_usage": 2,
    ...                        "encoder.norm.weight": 3}, None))
    ['encoder.norm.weight', 'quantizer.codebooks.0.weight']
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from zoo.builders import Checkpoint, CheckpointFiles, ModelBuilder
from zoo.errors import CheckpointError

from .config import MedITokConfig

__all__ = ["DROPPED_SUFFIXES", "MedITokBuilder", "from_reference"]

#: Training-only buffers of the release, dropped by name: each sub-codebook's usage statistics.
DROPPED_SUFFIXES = (".vocab_usage",)
_CODEBOOK = re.compile(r"^quantizer\.codebooks\.(\d+)\.codebook\.weight$")


def from_reference(state: Mapping[str, Any], config: MedITokConfig | None) -> dict[str, Any]:
    """The reference ``MedITok`` state dict (or manifest ``{key: (shape, dtype)}``) -> zoo's keys."""
    out: dict[str, Any] = {}
    for k, v in state.items():
        if k.startswith("quantizer.") and k.endswith(DROPPED_SUFFIXES):
            continue
        m = _CODEBOOK.match(k)
        out[f"quantizer.codebooks.{m.group(1)}.weight" if m else k] = v
    return out


class MedITokBuilder(ModelBuilder):
    """Builds ``meditok.simple_v1``."""

    name = "meditok"
    config_class = MedITokConfig

    def read_checkpoint(self, files: CheckpointFiles) -> Checkpoint:
        from zoo.weights import load_weights_file

        path = Path(files.primary)
        state, _ = load_weights_file(path)
        for entry in ("model", "state_dict"):
            if isinstance(state, Mapping) and isinstance(state.get(entry), Mapping):
                state = state[entry]
                break
        if not isinstance(state, Mapping) or "quantizer.codebooks.0.codebook.weight" not in state:
            got = sorted(state)[:6] if isinstance(state, Mapping) else type(state).__name__
            raise CheckpointError(f"{path} is not a MedITok checkpoint: expected encoder.* / quant_proj.* / "
                                  f"quantizer.codebooks.{{g}}.codebook.weight / decoder.* keys, got {got}")
        config: dict[str, Any] = {"drop_alignment": "projection.weight" not in state}
        return Checkpoint(state_dict=dict(state), config=config, extra={"path": str(path)})

    def build(self, config: MedITokConfig):
        from .model import MedITok

        return MedITok(config)

    def convert(self, state_dict: Mapping[str, Any], config: MedITokConfig) -> Mapping[str, Any]:
        return from_reference(state_dict, config)
