"""VAR: next-scale prediction over a multi-scale residual VQ (FoundationVision/VAR, MIT).

Registers the ``var`` (transformer, generator) and ``var_vqvae`` (multi-scale VQVAE, tokenizer)
builders; the cards (``var.d16`` ... ``var.d36_512``, ``var_vqvae.ch160v4096z32``) live in
zoo's ``registry.yaml``. Importing this module does not import torch.

    >>> import zoo                                                          # doctest: +SKIP
    >>> var = zoo.load("var.d16")                                           # doctest: +SKIP
    >>> images = var.generate(class_labels=[207], seed=0).media             # doctest: +SKIP
"""

from __future__ import annotations

from zoo.hookspecs import hookimpl


@hookimpl
def register_builders(register):
    from .builder import VARBuilder, VQVAEBuilder  # imports torch lazily

    register(VARBuilder())
    register(VQVAEBuilder())
