"""MaskGIT class-conditional generators over TiTok / One-D-Piece tokens.

Registers the ``maskgit`` builder (BERT-style ``ImageBert`` and U-ViT-style ``UViTBert`` from
bytedance/1d-tokenizer; One-D-Piece's generators use ``ImageBert``). Cards live in zoo's
``registry.yaml``. Importing this module does not import torch.
"""

from __future__ import annotations

from zoo.hookspecs import hookimpl


@hookimpl
def register_builders(register):
    from .builder import MaskGITBuilder  # noqa: PLC0415 - imports torch lazily

    register(MaskGITBuilder())
