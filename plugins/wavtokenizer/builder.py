"""The ``wavtokenizer`` builder: official Lightning ``.ckpt`` (+ optional yaml) -> :class:`~.model.WavTokenizer`.

* ``read_checkpoint`` loads the ``.ckpt`` with ``weights_only=True`` (see ``checkpoint.py``),
  checks a paired yaml when the card lists one (values only, ``yaml.safe_load``) and returns
  the widths/sizes read from the weights' shapes. The token-rate pairing (SEANet ratios,
  n_fft, hop) is *not* taken from the weights: it comes from the card (or user overrides).
* ``convert`` checks the merged config against the weights -- a 40-token checkpoint loaded
  through a 75-token card, or a contradicting override, is a ConfigError naming the fix, before
  any shape error -- then maps the keys and folds weight norm.

Example:
    >>> b = WavTokenizerBuilder()
    >>> b.name, b.config_class.__name__
    ('wavtokenizer', 'WavTokenizerConfig')
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Mapping

from zoo.builders import Checkpoint, CheckpointFiles, ModelBuilder, weights_file

from .config import WavTokenizerConfig, check_pairing, config_from_state_dict, config_from_yaml

__all__ = ["WavTokenizerBuilder"]

_WEIGHT_SUFFIXES = (".ckpt", ".safetensors", ".bin", ".pt", ".pth")
_PAIRING = ("ratios", "n_fft", "hop_length")


class WavTokenizerBuilder(ModelBuilder):
    """Builds every WavTokenizer release (small/medium/large, 40 and 75 tokens per second)."""

    name = "wavtokenizer"
    config_class = WavTokenizerConfig

    def read_checkpoint(self, files: CheckpointFiles) -> Checkpoint:
        from .checkpoint import load_ckpt  # noqa: PLC0415

        path, raw = weights_file(files, "WavTokenizer", _WEIGHT_SUFFIXES, read_pickle=load_ckpt, expected="a .ckpt")
        sniffed = config_from_state_dict(raw)
        yamls = [p for n, p in files.paths.items() if Path(n).suffix in (".yaml", ".yml")]
        if len(yamls) > 1:
            from zoo.errors import ConfigError

            raise ConfigError(f"{len(yamls)} yaml files given ({sorted(p.name for p in yamls)}) for {path.name}; "
                              "keep the one the checkpoint was trained with")
        if yamls:
            check_pairing(config_from_yaml(yamls[0]), sniffed, what=path.name)
        # The token-rate pairing (ratios / n_fft / hop) stays with the card or the user; convert()
        # checks it against these shapes. Widths and sizes come from the weights.
        config = {k: v for k, v in sniffed.items() if k not in _PAIRING}
        return Checkpoint(state_dict=raw, config=config, extra={"path": str(path), "sniffed": sniffed})

    def build(self, config: WavTokenizerConfig):
        from .model import WavTokenizer  # noqa: PLC0415

        return WavTokenizer(config)

    def convert(self, state_dict: Mapping[str, Any], config: WavTokenizerConfig) -> Mapping[str, Any]:
        from .checkpoint import convert_state_dict  # noqa: PLC0415

        cfg = dataclasses.asdict(config) if dataclasses.is_dataclass(config) else dict(config)
        check_pairing(cfg, config_from_state_dict(state_dict), what="checkpoint")
        return convert_state_dict(state_dict, n_fft=cfg.get("n_fft"))
