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

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zoo.builders import Checkpoint, CheckpointFiles, ModelBuilder
from zoo.errors import CheckpointError

__all__ = ["TextTokenizerBuilder", "TextTokenizerConfig", "tokenizer_file"]


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
        from zoo.text.tokenizer import _backend_from_file, special_token_names  # noqa: PLC0415

        path = tokenizer_file(files)
        model.backend = _backend_from_file(path, special_token_names(files.paths))
        if config.vocab_size and model.backend.vocab_size != config.vocab_size:
            raise CheckpointError(f"{path} has {model.backend.vocab_size} tokens but the card says {config.vocab_size}: "
                                  "these are another tokenizer's files (pass vocab_size=0 to skip the check)")
        return model
