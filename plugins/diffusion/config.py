"""Typed configs of the diffusers-backed generators.

Example:
    >>> c = PixArtSigmaConfig()
    >>> c.steps, c.guidance_scale, c.max_sequence_length, c.text_encoder
    (20, 4.5, 300, 't5_encoder.pixart_sigma')
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["PixArtSigmaConfig"]


@dataclass
class PixArtSigmaConfig:
    """PixArt-Σ: ``transformer`` holds the ``PixArtTransformer2DModel`` config (the release's
    ``transformer/config.json`` values; for ``pretrained=False`` the card's values on top of the
    diffusers class defaults), ``scheduler`` the ``DPMSolverMultistepScheduler`` config (diffusers
    defaults: DPM-Solver++ order 2, linear betas 1e-4..0.02, epsilon prediction; a release's
    ``scheduler/scheduler_config.json`` wins). ``text_encoder`` / ``vae`` name the component
    cards loaded when first needed; ``vae_scale_factor`` is that VAE's downsampling. Sampler defaults are the diffusers pipeline's (20 steps, CFG
    4.5, 300 T5 tokens). ``trim_text_padding``: run T5 and the cross-attention on the longest real
    prompt length instead of 300 padded tokens (the padding is masked: same result, less work)."""

    transformer: dict[str, Any] = field(default_factory=dict)
    scheduler: dict[str, Any] = field(default_factory=dict)
    text_encoder: str = "t5_encoder.pixart_sigma"
    vae: str = "sdxl_vae.pixart_sigma"
    vae_scale_factor: int = 8
    max_sequence_length: int = 300
    steps: int = 20
    guidance_scale: float = 4.5
    trim_text_padding: bool = True
