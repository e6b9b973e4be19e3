"""Language-Codec: 24 kHz speech <-> 75 frames/s of 8 residual codes (masked-channel RVQ, 1024 codes each).

Registers the ``languagecodec`` builder; the card (``languagecodec.paper_8nq``) lives in zoo's
``registry.yaml``. The weights are on Google Drive (the card says where): load them with
``zoo.load("languagecodec", weights="path/to/languagecodec_paper_8nq.ckpt")``. Importing this
module does not import torch.

    >>> import zoo                                                            # doctest: +SKIP
    >>> codec = zoo.load("languagecodec", weights="languagecodec_paper_8nq.ckpt")  # doctest: +SKIP
    >>> tokens = codec.encode("speech.flac")       # Tokens ids [1, 8, T] at 75 Hz  # doctest: +SKIP
    >>> wav = codec.decode(tokens.codebooks(4))    # the first 4 levels           # doctest: +SKIP
"""

from __future__ import annotations

from zoo.hookspecs import hookimpl


@hookimpl
def register_builders(register):
    from .builder import LanguageCodecBuilder  # noqa: PLC0415 - imports torch lazily

    register(LanguageCodecBuilder())
