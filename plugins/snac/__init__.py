"""SNAC (hubertsiuzdak/snac, MIT): multi-scale neural audio codec, audio <-> a hierarchy of
4096-code books at different frame rates (:class:`zoo.MultiRateTokens`).

Registers the ``snac`` builder; the cards (``snac.24khz``, ``snac.32khz``, ``snac.44khz``) live
in zoo's ``registry.yaml``. Importing this module does not import torch.

    >>> import zoo                                                  # doctest: +SKIP
    >>> model = zoo.load("snac")                                     # doctest: +SKIP
    >>> tokens = model.encode("speech.wav")                          # doctest: +SKIP
    >>> wav = model.decode(tokens, generator=torch.Generator().manual_seed(0))  # doctest: +SKIP
"""

from __future__ import annotations

from zoo.hookspecs import hookimpl


@hookimpl
def register_builders(register):
    from .builder import SNACBuilder  # noqa: PLC0415 - imports torch lazily

    register(SNACBuilder())
