"""Text tokenizers as published: ``tokenizer.json`` (HF ``tokenizers``) and SentencePiece
``.model`` files, behind zoo's tokenizer interface (:class:`zoo.text.tokenizer.TextTokenizer`).

Registers the ``text_tokenizer`` builder; the cards (KL3M, SuperBPE and the tokenizers of the
LMs zoo runs) live in zoo's ``registry.yaml``. Importing this module imports neither torch nor
``tokenizers``.

    >>> import zoo                                                   # doctest: +SKIP
    >>> tok = zoo.load("kl3m.004_128k_cased")                         # doctest: +SKIP
    >>> tokens = tok.encode(["The Court held that ...", "Section 2(a)"])  # doctest: +SKIP
    >>> tok.decode(tokens)                                            # doctest: +SKIP
"""

from __future__ import annotations

from zoo.hookspecs import hookimpl


@hookimpl
def register_builders(register):
    from .builder import TextTokenizerBuilder  # noqa: PLC0415 - imports torch lazily

    register(TextTokenizerBuilder())
