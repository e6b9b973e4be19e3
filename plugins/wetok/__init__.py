"""WeTok: images <-> group-LFQ tokens (zhuangshaobin/WeTok, Apache-2.0), Open-MAGVIT2 conv core.

Registers the ``wetok`` builder; the cards (``wetok.*``) live in zoo's ``registry.yaml``.
Importing this module does not import torch.

    >>> import zoo                                                       # doctest: +SKIP
    >>> model = zoo.load("wetok")                                         # doctest: +SKIP
    >>> tokens = model.encode(images)        # [B, 4, (H/16)*(W/16)], 4 groups of 256 codes  # doctest: +SKIP
    >>> images = model.decode(tokens)        # [B, 3, H, W] in [-1, 1]   # doctest: +SKIP
"""

from __future__ import annotations

from zoo.hookspecs import hookimpl


@hookimpl
def register_builders(register):
    from .builder import WeTokBuilder  # noqa: PLC0415 - imports torch lazily

    register(WeTokBuilder())
