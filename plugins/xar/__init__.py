"""xAR: next-cell autoregression with a flow SDE per cell (OliverRensu/xAR; the repository has no
licence file: zoo's implementation is its own).

Registers the ``xar`` builder; the cards (``xar.b``, ``xar.l``, ``xar.h``) live in zoo's
``registry.yaml``. Images are decoded by the ``mar_vae.kl16`` card, reached through the registry
(``zoo.load``), never by import. Importing this module does not import torch.

    >>> import zoo                                                       # doctest: +SKIP
    >>> images = zoo.load("xar.b").generate(class_labels=[207], seed=0)  # doctest: +SKIP
"""

from __future__ import annotations

from zoo.hookspecs import hookimpl


@hookimpl
def register_builders(register):
    from .builder import XARBuilder  # imports torch lazily

    register(XARBuilder())
