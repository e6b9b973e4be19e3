"""LARP: a holistic video tokenizer (16x128x128 clip -> 1024 tokens, codebook 8192) with an AR prior.

Registers the ``larp`` builder; the cards (``larp.*``) live in zoo's ``registry.yaml``.
Importing this module does not import torch.
"""

from __future__ import annotations

from zoo.hookspecs import hookimpl


@hookimpl
def register_builders(register):
    from .builder import LARPBuilder

    register(LARPBuilder())
