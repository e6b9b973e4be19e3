"""MAR class-conditional generators (LTH14/mar, "Autoregressive Image Generation without Vector
Quantization"): a masked bidirectional transformer predicts continuous KL-16 latents a random
set at a time, each token sampled by a small MLP diffusion head.

Registers the ``mar`` builder; the cards live in zoo's ``registry.yaml``. The latents are
decoded by the ``mar_vae.kl16`` card (the kl_vae plugin), reached through the registry
(``zoo.load``) when images are asked for, never by import. Importing this module does not
import torch.
"""

from __future__ import annotations

from zoo.hookspecs import hookimpl


@hookimpl
def register_builders(register):
    from .builder import MARBuilder  # noqa: PLC0415 - imports torch lazily

    register(MARBuilder())
