"""LDM-style KL-VAEs as continuous image tokenizers: MAR KL-16 and VA-VAE, on zoo's one AutoencoderKL.

Registers two builders over one module (:class:`~.model.KLVAE`): ``mar_vae`` (LTH14/mar's
``kl16.ckpt``, the VAE MAR, xAR and FlowAR generate in) and ``va_vae`` (hustvl/LightningDiT's
VA-VAE f16d32 with its ``latents_stats.pt``). Both releases are the LDM ``AutoencoderKL`` (key
layout ``encoder.down.i.block.j``), so one plugin serves them; the cards (``mar_vae.*``,
``va_vae.*``) live in zoo's ``registry.yaml``. Importing this module does not import torch.

    >>> import zoo                                                       # doctest: +SKIP
    >>> vae = zoo.load("va_vae")                                          # doctest: +SKIP
    >>> z = vae.encode(images)               # Latents [B, (H/16)*(W/16), 32], posterior mode  # doctest: +SKIP
    >>> x = vae.decode(z)                    # [B, 3, H, W] in [-1, 1]   # doctest: +SKIP
    >>> g = vae.normalize_latents(z)         # what LightningDiT generates in  # doctest: +SKIP
"""

from __future__ import annotations

from zoo.hookspecs import hookimpl


@hookimpl
def register_builders(register):
    from .builder import MarVAEBuilder, VAVAEBuilder  # imports torch lazily

    register(MarVAEBuilder())
    register(VAVAEBuilder())
