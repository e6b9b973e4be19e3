"""TiTok and One-D-Piece: 1D image tokenizers (32-256 tokens per 256x256 image).

Registers the ``titok`` builder and the ``maskgit_vqgan`` builder (the MaskGIT-VQGAN tokenizer
that RAR generates for and whose pixel decoder TiTok's legacy path shares); the cards
(``titok.*``, ``one_d_piece.*``, ``maskgit_vqgan.*``) live in zoo's ``registry.yaml``. Importing this module does not import torch.
"""

from __future__ import annotations

from zoo.hookspecs import hookimpl


@hookimpl
def register_builders(register):
    from .builder import TiTokBuilder
    from .vqgan import MaskGITVQGANBuilder

    register(TiTokBuilder())
    register(MaskGITVQGANBuilder())
