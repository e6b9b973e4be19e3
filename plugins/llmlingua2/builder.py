"""The ``llmlingua2`` builder: the hub repo's files -> :class:`~zoo_plugins.llmlingua2.compressor.LLMLingua2`.

``config.json`` is read as data (``json``); its ``model_type`` picks one of two transformers classes
(``xlm-roberta`` -> ``XLMRobertaForTokenClassification``, ``bert`` -> ``BertForTokenClassification``)
and nothing it names is imported (no ``auto_map``, never ``trust_remote_code``). The weights load
strictly (``model.safetensors``, or ``pytorch_model.bin`` read weights-only); the tokenizer is the
model type's own transformers class reading ``tokenizer.json`` + ``tokenizer_config.json``.

Example:
    >>> LLMLingua2Builder().name
    'llmlingua2'
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zoo.builders import Checkpoint, CheckpointFiles, ModelBuilder
from zoo.errors import CheckpointError, ConfigError

__all__ = ["CLASSES", "LLMLingua2Builder", "LLMLingua2Config"]

#: model_type -> (config class, token-classifier class, tokenizer class) in transformers
CLASSES = {
    "xlm-roberta": ("XLMRobertaConfig", "XLMRobertaForTokenClassification", "XLMRobertaTokenizer"),
    "bert": ("BertConfig", "BertForTokenClassification", "BertTokenizer"),
}
_DATA_ONLY = ("auto_map", "custom_pipelines", "transformers_version", "_name_or_path")


@dataclass
class LLMLingua2Config:
    """``hf``: the classifier's transformers config (``config.json``; the card's values for pretrained=False)."""

    hf: dict[str, Any] = field(default_factory=dict)


def transformers_module() -> Any:
    """``import transformers`` (torchvision made importable first) or a ZooError naming the extra."""
    from zoo.compat.torchvision import ensure_torchvision
    from zoo.errors import ZooError

    ensure_torchvision()
    try:
        import transformers
    except ModuleNotFoundError:
        raise ZooError("LLMLingua-2 runs its classifier on transformers, which is not installed: `pip install 'zoo[llm]'`") from None
    return transformers


def _read_json(path: Path, what: str) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"cannot read {what} {path}: {exc}; re-download it or pass weights=DIR with a valid copy") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{what} {path} is not a json object")
    return data


class LLMLingua2Builder(ModelBuilder):
    """Builds the LLMLingua-2 compressors (XLM-RoBERTa-large or mBERT token classifiers)."""

    name = "llmlingua2"
    config_class = LLMLingua2Config

    def read_checkpoint(self, files: CheckpointFiles) -> Checkpoint:
        from zoo.weights import load_weights_file

        paths = files.paths
        if "config.json" not in paths:
            raise CheckpointError(f"llmlingua2: no config.json among {sorted(paths)} ({files.origin}); the hub repo holds "
                                  "config.json, model.safetensors, tokenizer.json, tokenizer_config.json")
        hf = {k: v for k, v in _read_json(paths["config.json"], "config").items() if k not in _DATA_ONLY}
        if hf.get("model_type") not in CLASSES:
            raise CheckpointError(f"{paths['config.json']} has model_type {hf.get('model_type')!r}; LLMLingua-2 classifiers are "
                                  f"{sorted(CLASSES)} token classifiers")
        weights = [p for n, p in paths.items() if n.endswith((".safetensors", ".bin"))]
        if not weights:
            raise CheckpointError(f"llmlingua2: no model.safetensors among {sorted(paths)} ({files.origin})")
        state, _ = load_weights_file(weights[0])
        return Checkpoint(state_dict=state, config={"hf": hf}, extra={"folder": str(paths["config.json"].parent)})

    def build(self, config: Any) -> Any:
        from .compressor import LLMLingua2

        hf = dict(config.hf if not isinstance(config, dict) else config.get("hf", {}))
        model_type = hf.get("model_type")
        if model_type not in CLASSES:
            raise ConfigError(f"llmlingua2: hf.model_type must be one of {sorted(CLASSES)}; got {model_type!r}")
        tf = transformers_module()
        config_class, model_class, _ = CLASSES[model_type]
        try:
            cfg = getattr(tf, config_class)(**{k: v for k, v in hf.items() if k != "model_type"})
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"llmlingua2: bad transformers config: {exc}") from None
        return LLMLingua2(getattr(tf, model_class)(cfg), model_type)

    def convert(self, state_dict: Any, config: Any) -> dict[str, Any]:
        # position_ids buffers of older files are not persistent in current transformers: dropped by name
        return {f"classifier.{k}": v for k, v in state_dict.items() if not k.endswith("embeddings.position_ids")}

    def finalize(self, model: Any, files: CheckpointFiles | None, config: Any) -> Any:
        if files is None:
            return model
        paths = files.paths
        if "tokenizer.json" not in paths:
            raise CheckpointError(f"llmlingua2: no tokenizer.json among {sorted(paths)} ({files.origin})")
        tf = transformers_module()
        tokenizer_class = getattr(tf, CLASSES[model.family][2])
        folder = paths["tokenizer.json"].parent
        try:
            tokenizer = tokenizer_class.from_pretrained(str(folder), local_files_only=True)
        except (OSError, ValueError, TypeError) as exc:
            raise CheckpointError(f"llmlingua2: cannot read the tokenizer in {folder}: {exc}") from None
        model.attach_tokenizer(tokenizer)
        return model
