"""MedITok: medical images <-> 8 ids per 16x16 patch over 8 sub-codebooks of 4096 (Masaaki-75/meditok,
MIT code). Registers the ``meditok`` builder; cards ``meditok.*`` live in ``registry.yaml``. Importing
this module does not import torch.

    >>> import zoo                                                                        # doctest: +SKIP
    >>> tok = zoo.load("meditok", weights="meditok_simple_v1.pth")                        # doctest: +SKIP
    >>> tokens = tok.encode(images)     # ids [B, 8, 256]: one id per sub-codebook per patch  # doctest: +SKIP
    >>> images = tok.decode(tokens)     # [B, 3, 256, 256] in [-1, 1]                       # doctest: +SKIP
"""

from __future__ import annotations

from zoo.hookspecs import hookimpl


@hookimpl
def register_builders(register):
    from .builder import MedITokBuilder  # imports torch lazily

    register(MedITokBuilder())
