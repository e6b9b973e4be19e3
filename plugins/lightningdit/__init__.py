"""LightningDiT class-conditional latent diffusion transformers (hustvl/LightningDiT, "Reconstruction
vs. Generation: Taming Optimization Dilemma in Latent Diffusion Models"): a DiT with SwiGLU,
RMSNorm and 2-D RoPE trained with rectified flow on VA-VAE f16d32 latents.

Registers the ``lightningdit`` builder; the cards live in zoo's ``registry.yaml``. Latents are
decoded by the ``va_vae.f16d32`` card (the kl_vae plugin, which also holds the latent
statistics), reached through the registry when images are asked for. Importing this module
does not import torch.
"""

from __future__ import annotations

from zoo.hookspecs import hookimpl


@hookimpl
def register_builders(register):
    from .builder import LightningDiTBuilder  # noqa: PLC0415 - imports torch lazily

    register(LightningDiTBuilder())
