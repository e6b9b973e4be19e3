"""Hita: images <-> 128 holistic + 441 patch ids (CVMI-Lab/Hita, MIT code). Registers the ``hita``
builder; cards ``hita.*`` live in ``registry.yaml``. Importing this module does not import torch.

    >>> import zoo                                                                   # doctest: +SKIP
    >>> tok = zoo.load("hita", weights="folder/")  # hita-tok.pt + dinov2_vitl14_reg4_pretrain.pth  # doctest: +SKIP
    >>> tokens = tok.encode(images)    # ids [B, 569]: 128 holistic, then 21x21 patches   # doctest: +SKIP
    >>> images = tok.decode(tokens)    # [B, 3, 336, 336] in [-1, 1]                       # doctest: +SKIP
"""

from __future__ import annotations

from zoo.hookspecs import hookimpl


@hookimpl
def register_builders(register):
    from .builder import HitaBuilder  # imports torch lazily

    register(HitaBuilder())
