"""zoo: one registry and one interface for multimodal tokenizers, generators and token reducers.

Example:
    >>> import zoo
    >>> names = zoo.list_models()            # does not import torch
    >>> # model = zoo.load("flextok")         # a ready model (downloads the official weights)

``import zoo`` and ``zoo.list_models()`` do not import torch; ``zoo.load`` does.
"""

from __future__ import annotations

from zoo.api import download, get_card, info, list_models, load, plugins
from zoo.errors import (
    CardError,
    CheckpointError,
    ConfigError,
    HubError,
    InputError,
    InputTypeError,
    MediaError,
    PluginError,
    ReducerError,
    TokenError,
    UnknownModelError,
    ZooError,
)
from zoo.hookspecs import hookimpl

__version__ = "0.1.0"

__all__ = [
    "load", "list_models", "info", "plugins", "download", "get_card", "hookimpl",
    "ZooError", "UnknownModelError", "CardError", "PluginError", "ConfigError", "CheckpointError", "HubError",
    "InputError", "InputTypeError", "MediaError", "TokenError", "ReducerError",
    "Tokens", "MultiRateTokens", "Latents", "tokenize", "read_tokens", "transfer_tokenizer",
]


def __getattr__(name: str):
    if name in ("Tokens", "MultiRateTokens", "Latents"):  # lazily: the token types import torch
        import zoo.interfaces

        return getattr(zoo.interfaces, name)
    if name == "eval":  # zoo.eval(models, inputs, ...): zoo.evaluation.runner.evaluate (not in __all__: it would shadow eval)
        from zoo.evaluation.runner import evaluate

        return evaluate
    if name == "transfer_tokenizer":  # lazily: tokenizer transfer imports numpy / torch
        from zoo.text.transfer import transfer_tokenizer

        return transfer_tokenizer
    if name in ("tokenize", "read_tokens"):  # lazily: dataset tokenization imports torch (and pyarrow)
        import zoo.datasets.reader
        import zoo.datasets.tokenize

        return {"tokenize": zoo.datasets.tokenize.tokenize, "read_tokens": zoo.datasets.reader.read_tokens}[name]
    raise AttributeError(f"module 'zoo' has no attribute {name!r}")
