"""The builders of the transformers codecs (one per family): repo files -> :class:`~.model.HFCodec`.

``config.json`` and ``preprocessor_config.json`` are read as data (``json.load``); their
``model_type`` must be the family's, and nothing they name is imported (no ``auto_map``, never
``trust_remote_code``). The weights load through the family's public transformers class
(``from_pretrained`` on the local files, ``local_files_only=True``), which applies transformers'
own key renames for older files (e.g. ``weight_g``/``weight_v``); every missing, unexpected or
mismatched key is a :class:`~zoo.errors.CheckpointError` (strict). The loaded module is then
handed to ``zoo.load``, which checks it strictly once more.

zoo config (``zoo.load(name, **overrides)``):

* ``hf``: the transformers config (``config.json``'s values; for ``pretrained=False`` the card's
  values on top of the transformers class defaults);
* ``preprocessor``: the feature extractor's settings (``preprocessor_config.json``);
* ``chunk_seconds`` (default 30) and ``context_seconds``: long-audio windows (``model.py``).

Example:
    >>> b = HFCodecBuilder("dac")
    >>> b.name, b.config_class.__name__
    ('dac', 'dict')
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

from zoo.builders import Checkpoint, CheckpointFiles, ModelBuilder
from zoo.errors import CheckpointError, ConfigError

from .specs import SPECS

__all__ = ["HFCodecBuilder", "read_json"]

_DATA_ONLY = ("auto_map", "custom_pipelines")


def read_json(path: Path, what: str) -> dict[str, Any]:
    """A json file as a plain dict (an unreadable one is a CheckpointError naming it)."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"cannot read {what} {path}: {exc}; re-download it or pass weights=DIR with a valid copy") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{what} {path} is not a json object")
    return data


class HFCodecBuilder(ModelBuilder):
    """Builds one transformers codec family (``encodec``, ``dac``, ``mimi``, ``xcodec``, ``xcodec2``)."""

    config_class = dict

    def __init__(self, family: str):
        if family not in SPECS:
            raise ConfigError(f"no transformers codec family {family!r}; known: {sorted(SPECS)}")
        self.name = family
        self.spec = SPECS[family]
        self._loaded: tuple[int, Any] | None = None  # (id of the hf config dict, module) from read_checkpoint

    def read_checkpoint(self, files: CheckpointFiles) -> Checkpoint:
        paths = files.paths
        if "config.json" not in paths:
            raise CheckpointError(f"{self.name}: no config.json among {sorted(paths)} ({files.origin}); a transformers-format "
                                  "repo holds config.json, model.safetensors and preprocessor_config.json")
        hf = read_json(paths["config.json"], "config")
        model_type = hf.get("model_type")
        if model_type != self.name:
            raise CheckpointError(f"{paths['config.json']} has model_type {model_type!r}, not {self.name!r}: these files belong to "
                                  "another model (a remote-code repo is not a transformers-format one; zoo never runs remote code)")
        hf = {k: v for k, v in hf.items() if k not in _DATA_ONLY}
        pre = read_json(paths["preprocessor_config.json"], "preprocessor config") if "preprocessor_config.json" in paths else {}
        weights = [p for n, p in paths.items() if n.endswith((".safetensors", ".bin"))]
        if not weights:
            raise CheckpointError(f"{self.name}: no model.safetensors among {sorted(paths)} ({files.origin})")
        folder = paths["config.json"].parent
        if weights[0].parent != folder:
            raise CheckpointError(f"{self.name}: config.json and {weights[0].name} must sit in one folder ({files.origin})")
        module = self._from_pretrained(folder, hf)
        self._loaded = (id(hf), module)
        return Checkpoint(state_dict=module.state_dict(), config={"hf": hf, "preprocessor": pre},
                          extra={"folder": str(folder)})

    def _from_pretrained(self, folder: Path, hf: dict[str, Any]):
        from .specs import transformers_module

        tf = transformers_module()
        config = getattr(tf, self.spec.config_class).from_dict(dict(hf))
        model_class = getattr(tf, self.spec.model_class)
        try:
            module, info = model_class.from_pretrained(str(folder), config=config, local_files_only=True, trust_remote_code=False,
                                                       output_loading_info=True)
        except (OSError, ValueError, RuntimeError) as exc:
            raise CheckpointError(f"{self.name}: transformers could not load {folder}: {exc}") from None
        problems = {k: v for k, v in info.items() if k in ("missing_keys", "unexpected_keys", "mismatched_keys") and v}
        if problems:
            listed = "; ".join(f"{k} ({len(v)}): {sorted(map(str, v))[:6]}" for k, v in problems.items())
            raise CheckpointError(f"{self.name}: the weights in {folder} do not fit {self.spec.model_class}: {listed}")
        return module

    def build(self, config: Mapping[str, Any]):
        from .model import HFCodec

        hf = config.get("hf") or {}
        if self._loaded is not None and self._loaded[0] == id(hf):
            module, self._loaded = self._loaded[1], None  # the module from_pretrained just filled
        else:
            from .specs import transformers_module

            tf = transformers_module()
            try:
                cfg = getattr(tf, self.spec.config_class).from_dict(dict(hf))
            except (TypeError, ValueError) as exc:
                raise ConfigError(f"{self.name}: bad transformers config {hf!r}: {exc}") from None
            module = getattr(tf, self.spec.model_class)(cfg)
        return HFCodec(self.spec, module, preprocessor=dict(config.get("preprocessor") or {}),
                       chunk_seconds=config.get("chunk_seconds", 30.0), context_seconds=config.get("context_seconds"))

    def convert(self, state_dict: Mapping[str, Any], config: Any) -> Mapping[str, Any]:
        # from_pretrained already mapped the keys; HFCodec holds the transformers module as `codec`
        return {f"codec.{k}": v for k, v in state_dict.items()}
