"""Text: tokenizers behind zoo's interface, what people compare them by (bytes per token, bits
per byte), exact byte-level probabilities from token-level LMs, and tokenizer transfer.

* :class:`zoo.text.tokenizer.TextTokenizer` -- ``encode(texts) -> Tokens``, ``decode``, offsets;
* :mod:`zoo.text.vocab` -- the bytes every token stands for.

Importing ``zoo.text`` imports neither torch nor ``tokenizers``.
"""

from __future__ import annotations

__all__ = ["TextTokenizer"]


def __getattr__(name: str):
    if name == "TextTokenizer":
        from zoo.text.tokenizer import TextTokenizer

        return TextTokenizer
    raise AttributeError(f"module 'zoo.text' has no attribute {name!r}")
