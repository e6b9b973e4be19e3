"""RAR class-conditional AR generators (bytedance/1d-tokenizer) and the MaskGIT-VQGAN
tokenizer they generate for.

Registers the ``rar`` and ``maskgit_vqgan`` builders and the ``zoo generate`` / ``zoo convert``
commands (``zoo convert rar.b rar_b.bin`` writes the pickle as safetensors). Cards live in zoo's
``registry.yaml``. Importing this module does not import torch.
"""

from __future__ import annotations

from zoo.hookspecs import hookimpl


@hookimpl
def register_builders(register):
    from .builder import RARBuilder  # noqa: PLC0415 - imports torch lazily
    from .vqgan import MaskGITVQGANBuilder  # noqa: PLC0415

    register(RARBuilder())
    register(MaskGITVQGANBuilder())

