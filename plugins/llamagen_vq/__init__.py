"""LlamaGen VQ: images <-> 2D token grids (FoundationVision/LlamaGen, MIT), on zoo's conv core.

Registers the ``llamagen_vq`` builder; the cards (``llamagen_vq.*``) live in zoo's
``registry.yaml``. Importing this module does not import torch.

    >>> import zoo                                                       # doctest: +SKIP
    >>> vq = zoo.load("llamagen_vq")                                      # doctest: +SKIP
    >>> tokens = vq.encode(images)           # ids [B, (H/16)*(W/16)], codebook 16384  # doctest: +SKIP
    >>> images = vq.decode(tokens)           # [B, 3, H, W] in [-1, 1]   # doctest: +SKIP
"""

from __future__ import annotations

from zoo.hookspecs import hookimpl


@hookimpl
def register_builders(register):
    from .builder import LlamaGenVQBuilder  # imports torch lazily

    register(LlamaGenVQBuilder())
