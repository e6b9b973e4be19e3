"""The ``wetok`` builder: official Lightning ``.ckpt`` -> :class:`~.model.WeTok`.

* ``read_checkpoint`` loads the file with ``weights_only=True`` (no allowlist additions: the
  release pickles name only ``OrderedDict`` and torch storages) and returns its state dict.
* ``convert`` selects the EMA weights as the reference's ``ema_scope`` does (``use_ema``, on by
  default), drops :data:`~.checkpoint.DROPPED_PREFIXES` (``model_ema.``: EMA shadows and
  counters; ``loss.``: discriminator and LPIPS), and checks the card's widths/depths against the
  weights' shapes before the strict load.

Example:
    >>> b = WeTokBuilder()
    >>> b.name, b.config_class.__name__
    ('wetok', 'WeTokConfig')
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

from zoo.builders import Checkpoint, CheckpointFiles, ModelBuilder, weights_file

from .config import WeTokConfig

__all__ = ["WeTokBuilder"]

_WEIGHT_SUFFIXES = (".ckpt", ".pt", ".pth", ".bin", ".safetensors")


class WeTokBuilder(ModelBuilder):
    """Builds every WeTok release (ImageNet f8/f16, GeneralDomain compression ratios 24-768)."""

    name = "wetok"
    config_class = WeTokConfig

    def read_checkpoint(self, files: CheckpointFiles) -> Checkpoint:
        from .checkpoint import load_ckpt  # noqa: PLC0415

        path, state = weights_file(files, "WeTok", _WEIGHT_SUFFIXES, read_pickle=load_ckpt, expected="WeTok.ckpt")
        return Checkpoint(state_dict=state, extra={"path": str(path)})

    def build(self, config: WeTokConfig):
        from .model import WeTok  # noqa: PLC0415

        return WeTok(config)

    def convert(self, state_dict: Mapping[str, Any], config: WeTokConfig) -> Mapping[str, Any]:
        from .checkpoint import check_config, select_weights, sniff_config  # noqa: PLC0415

        cfg = dataclasses.asdict(config) if dataclasses.is_dataclass(config) else dict(config)
        selected = select_weights(state_dict, use_ema=bool(cfg.get("use_ema", True)))
        check_config(cfg, sniff_config(selected))
        return selected
