"""MingTok-Vision (inclusionAI/Ming-UniVision): a continuous unified visual tokenizer, 512 px <-> 257 x 32 latents.

One builder, ``mingtok`` (:class:`~.builder.MingTokBuilder`), reads the transformers-style release
(``config.json`` as data + ``model.safetensors``) without ``trust_remote_code``; the blocks are
zoo's shared pre-norm family (:mod:`zoo.nn.prenorm`). Importing this module does not import torch.

    >>> import zoo                                                   # doctest: +SKIP
    >>> tok = zoo.load("mingtok")                                    # doctest: +SKIP
    >>> z = tok.encode(images)          # Latents [B, 257, 32] at 512 px   # doctest: +SKIP
    >>> x = tok.decode(z)               # [B, 3, 512, 512] in [-1, 1]      # doctest: +SKIP
"""

from __future__ import annotations

from zoo.hookspecs import hookimpl


@hookimpl
def register_builders(register):
    from .builder import MingTokBuilder  # imports torch lazily

    register(MingTokBuilder())
