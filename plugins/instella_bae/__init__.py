"""Instella-T2I's binary autoencoder (AMD-AGI/Instella-T2I): 1024x1024 images <-> 128 tokens of 64 bits.

One builder, ``instella_bae`` (:class:`~.builder.InstellaBAEBuilder`), reads ``bae/model.safetensors``
of ``amd/Instella-T2I``. The blocks are zoo's shared pre-norm family (:mod:`zoo.nn.prenorm`) with
Flux-style 3-axis RoPE (:mod:`zoo.nn.rope`); bits come from :mod:`zoo.nn.binary`. Research-only
licence (code and weights). Importing this module does not import torch.

    >>> import zoo                                                   # doctest: +SKIP
    >>> bae = zoo.load("instella_bae")                               # doctest: +SKIP
    >>> tokens = bae.encode(images)      # Tokens ids [B, 64, 128]: 64 bit planes of 128 tokens  # doctest: +SKIP
    >>> x = bae.decode(tokens, size=1024)                            # doctest: +SKIP
"""

from __future__ import annotations

from zoo.hookspecs import hookimpl


@hookimpl
def register_builders(register):
    from .builder import InstellaBAEBuilder  # imports torch lazily

    register(InstellaBAEBuilder())
