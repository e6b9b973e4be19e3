"""ViTok-v2 (Na-VAE/vitok-release): ViT autoencoders over NaFlex patch sequences, any resolution.

One builder, ``vitok_v2`` (:class:`~.builder.ViTokBuilder`), reads a release's ``encoder.safetensors``
and ``decoder.safetensors``; the variant string (``"Ld4-Ld24/1x16x64"``) on the card is parsed as
data (:func:`~.config.parse_variant`). The blocks are zoo's shared pre-norm family
(:mod:`zoo.nn.prenorm`) with 2-D axial RoPE (:mod:`zoo.nn.rope`) and NaFlex patch dictionaries
(:mod:`zoo.nn.naflex`). Importing this module does not import torch.

    >>> import zoo                                                   # doctest: +SKIP
    >>> vae = zoo.load("vitok_v2")                          # doctest: +SKIP
    >>> z = vae.encode(images)        # Latents [B, (H/16)*(W/16), 64]  # doctest: +SKIP
    >>> x = vae.decode(z)             # [B, 3, H, W] in [-1, 1]        # doctest: +SKIP
"""

from __future__ import annotations

from zoo.hookspecs import hookimpl


@hookimpl
def register_builders(register):
    from .builder import ViTokBuilder  # imports torch lazily

    register(ViTokBuilder())
