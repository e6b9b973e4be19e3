"""RAR class-conditional AR generators (bytedance/1d-tokenizer). Their tokens are decoded by
the ``maskgit_vqgan`` tokenizer, which the TiTok plugin registers; RAR reaches it through the
registry (``zoo.load``), never by import.

Registers the ``rar`` builder and the ``zoo generate`` / ``zoo convert``
commands (``zoo convert rar.b rar_b.bin`` writes the pickle as safetensors). Cards live in zoo's
``registry.yaml``. Importing this module does not import torch.
"""

from __future__ import annotations

from zoo.hookspecs import hookimpl


@hookimpl
def register_builders(register):
    from .builder import RARBuilder  # noqa: PLC0415 - imports torch lazily

    register(RARBuilder())

