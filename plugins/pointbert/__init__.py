"""Point-BERT's dVAE: a point-cloud tokenizer (1024 points -> 64 patch tokens of 8192 codes).

Registers the ``point_bert`` builder; the cards (``point_bert.*``) live in zoo's ``registry.yaml``.
Importing this module does not import torch.
"""

from __future__ import annotations

from zoo.hookspecs import hookimpl


@hookimpl
def register_builders(register):
    from .builder import PointBERTBuilder

    register(PointBERTBuilder())
