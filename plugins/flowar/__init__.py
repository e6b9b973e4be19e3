"""FlowAR: scale-wise autoregression with a flow-matching head (OliverRensu/FlowAR).

Registers the ``flowar`` builder; the cards (``flowar.s``, ``flowar.l``, ``flowar.h``) live in
zoo's ``registry.yaml``. Images are decoded by the ``mar_vae.kl16`` card, reached through the
registry (``zoo.load``), never by import. Importing this module does not import torch.

    >>> import zoo                                                       # doctest: +SKIP
    >>> images = zoo.load("flowar.s").generate(class_labels=[207], seed=0)  # doctest: +SKIP
"""

from __future__ import annotations

from zoo.hookspecs import hookimpl


@hookimpl
def register_builders(register):
    from .builder import FlowARBuilder  # imports torch lazily

    register(FlowARBuilder())
