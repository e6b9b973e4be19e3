"""The ``text_tokenizer`` builder: a release's ``tokenizer.json`` (or SentencePiece ``.model``)
-> :class:`zoo.text.tokenizer.TextTokenizer`.

The files are read as data: ``tokenizer.json`` by ``tokenizers``, ``tokenizer_config.json``
with ``json`` (only the names of the BOS/EOS/PAD tokens are taken from it; nothing it names is
imported). There are no weights: the state dict is empty and ``pretrained=False`` builds a
tokenizer without a vocabulary (its ``encode`` says how to load one).

zoo config: ``vocab_size`` (the published vocabulary size; the file must match it, 0 skips the
check).

Example:
    >>> b = TextTokenizerBuilder()
    >>> b.name, b.build(TextTokenizerConfig()).num_parameters()
    ('text_tokenizer', 0)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zoo.builders import Checkpoint, CheckpointFiles, ModelBuilder
from zoo.errors import CheckpointError

__all__ = ["TextTokenizerBuilder", "TextTokenizerConfig", "tokenizer_file", "special_token_names"]


@dataclass
class TextTokenizerConfig:
    vocab_size: int = 0


def tokenizer_file(files: CheckpointFiles) -> Path:
    """The tokenizer file among ``files``: ``tokenizer.json`` first, else one ``.model`` file."""
    paths = files.paths
    if "tokenizer.json" in paths:
        return paths["tokenizer.json"]
    models = [p for n, p in paths.items() if n.endswith(".model")]
    jsons = [p for n, p in paths.items() if n.endswith(".json") and n not in ("tokenizer_config.json", "special_tokens_map.json", "config.json")]
    found = models or jsons
    if not found:
        raise CheckpointError(f"no tokenizer file among {sorted(paths)} ({files.origin}); a text tokenizer release holds "
                              "tokenizer.json (HF tokenizers) or a SentencePiece .model file")
    return found[0]


def special_token_names(files: CheckpointFiles) -> dict[str, str | None]:
    """``bos_token`` / ``eos_token`` / ``pad_token`` names from ``tokenizer_config.json`` (or
    ``special_tokens_map.json``) when the release has one; a token given as ``{"content": ...}``
    counts by its content."""
    out: dict[str, str | None] = {}
    for name in ("special_tokens_map.json", "tokenizer_config.json"):
        path = files.paths.get(name)
        if path is None:
            continue
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise CheckpointError(f"cannot read {path}: {exc}; re-download it") from None
        for role in ("bos_token", "eos_token", "pad_token"):
            value = data.get(role) if isinstance(data, dict) else None
            if isinstance(value, dict):
                value = value.get("content")
            if isinstance(value, str):
                out[role] = value
    return out


class TextTokenizerBuilder(ModelBuilder):
    """Builds :class:`~zoo.text.tokenizer.TextTokenizer` from a tokenizer release."""

    name = "text_tokenizer"
    config_class = TextTokenizerConfig

    def read_checkpoint(self, files: CheckpointFiles) -> Checkpoint:
        tokenizer_file(files)  # a release without a tokenizer file fails here, before anything is built
        return Checkpoint(state_dict={})

    def build(self, config: Any):
        from zoo.text.tokenizer import TextTokenizer  # noqa: PLC0415

        return TextTokenizer()

    def finalize(self, model: Any, files: CheckpointFiles | None, config: Any):
        if files is None:
            return model
        from zoo.text.tokenizer import _backend_from_file  # noqa: PLC0415

        path = tokenizer_file(files)
        model.backend = _backend_from_file(path, special_token_names(files))
        if config.vocab_size and model.backend.vocab_size != config.vocab_size:
            raise CheckpointError(f"{path} has {model.backend.vocab_size} tokens but the card says {config.vocab_size}: "
                                  "these are another tokenizer's files (pass vocab_size=0 to skip the check)")
        return model
