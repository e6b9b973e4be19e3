"""SpeechTokenizer (ZhangXInFD/SpeechTokenizer, Apache-2.0) and DM-Codec (mubtasimahasan/DM-Codec,
Apache-2.0, the same architecture): 16 kHz speech <-> 8 residual codebooks of 1024 at 50 Hz, the
first distilled towards HuBERT (semantic), the rest acoustic.

Registers the ``speechtokenizer`` builder (used by the ``speechtokenizer.*`` and ``dm_codec.*``
cards in zoo's ``registry.yaml``). Importing this module does not import torch.

    >>> import zoo                                          # doctest: +SKIP
    >>> model = zoo.load("speechtokenizer")                  # doctest: +SKIP
    >>> tokens = model.encode("speech.wav")                  # Tokens, ids [1, 8, T]  # doctest: +SKIP
    >>> semantic = tokens.codebooks(1)                       # the semantic level only  # doctest: +SKIP
"""

from __future__ import annotations

from zoo.hookspecs import hookimpl


@hookimpl
def register_builders(register):
    from .builder import SpeechTokenizerBuilder  # noqa: PLC0415 - imports torch lazily

    register(SpeechTokenizerBuilder())
