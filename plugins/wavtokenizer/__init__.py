"""WavTokenizer: 24 kHz audio <-> 40 or 75 tokens per second (one 4096-code book), zoo's audio tokenizer.

Registers the ``wavtokenizer`` builder; the cards (``wavtokenizer.*``) live in zoo's
``registry.yaml``. Importing this module does not import torch.

    >>> import zoo                                                     # doctest: +SKIP
    >>> model = zoo.load("wavtokenizer")                                # doctest: +SKIP
    >>> tokens = model.encode("speech.flac")        # any rate / channels # doctest: +SKIP
    >>> wav = model.decode(tokens)                  # [1, T * hop] at 24 kHz  # doctest: +SKIP
"""

from __future__ import annotations

from zoo.hookspecs import hookimpl


@hookimpl
def register_builders(register):
    from .builder import WavTokenizerBuilder  # noqa: PLC0415 - imports torch lazily

    register(WavTokenizerBuilder())
