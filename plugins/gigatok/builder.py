"""The ``gigatok`` builder: official ``.pt`` release -> :class:`~.model.GigaTok`.

* ``read_checkpoint`` loads the file with ``weights_only=True`` (``argparse.Namespace`` allowed,
  nothing else added) and picks ``ema`` / ``model`` / ``state_dict`` as the reference does.
* ``convert`` checks the card's sizes against the weights' shapes, drops
  :data:`~.checkpoint.DROPPED_PREFIXES` (decoder distillation MLP, codebook-usage buffer) and
  renames the CNN stages onto zoo's conv core (:data:`~.conv.KEY_RULES`) before the strict load.

Example:
    >>> b = GigaTokBuilder()
    >>> b.name, b.config_class.__name__
    ('gigatok', 'GigaTokConfig')
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

from zoo.builders import Checkpoint, CheckpointFiles, ModelBuilder, weights_file

from .config import GigaTokConfig

__all__ = ["GigaTokBuilder"]

_WEIGHT_SUFFIXES = (".pt", ".pth", ".ckpt", ".bin", ".safetensors")


class GigaTokBuilder(ModelBuilder):
    """Builds every GigaTok release (S-S, S-B, B-L, B-L dino-disc, XL-XXL)."""

    name = "gigatok"
    config_class = GigaTokConfig

    def read_checkpoint(self, files: CheckpointFiles) -> Checkpoint:
        from .checkpoint import load_release  # noqa: PLC0415

        path, state = weights_file(files, "GigaTok", _WEIGHT_SUFFIXES, read_pickle=load_release, expected="a .pt file")
        return Checkpoint(state_dict=state, extra={"path": str(path)})

    def build(self, config: GigaTokConfig):
        from .model import GigaTok  # noqa: PLC0415

        return GigaTok(config)

    def convert(self, state_dict: Mapping[str, Any], config: GigaTokConfig) -> Mapping[str, Any]:
        from .checkpoint import check_config, convert_state_dict, sniff_config  # noqa: PLC0415

        cfg = dataclasses.asdict(config) if dataclasses.is_dataclass(config) else dict(config)
        if not cfg.get("vit_sizes"):
            check_config(cfg, sniff_config(state_dict))
        return convert_state_dict(state_dict)
