"""Typed configs of the diffusers-backed generators.

Example:
    >>> c = PixArtSigmaConfig()
    >>> c.steps, c.guidance_scale, c.max_sequence_length, c.text_encoder
    (20, 4.5, 300, 't5_encoder.pixart_sigma')
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["PixArtSigmaConfig", "SD3Config"]


@dataclass
class PixArtSigmaConfig:
    """PixArt-Σ: ``transformer`` holds the ``PixArtTransformer2DModel`` config (the release's
    ``transformer/config.json`` values; for ``pretrained=False`` the card's values on top of the
    diffusers class defaults), ``scheduler`` the ``DPMSolverMultistepScheduler`` config (diffusers
    defaults: DPM-Solver++ order 2, linear betas 1e-4..0.02, epsilon prediction; a release's
    ``scheduler/scheduler_config.json`` wins). ``text_encoder`` / ``vae`` name the component
    cards loaded when first needed; ``vae_scale_factor`` is that VAE's downsampling. Sampler defaults are the diffusers pipeline's (20 steps, CFG
    4.5, 300 T5 tokens). ``timesteps``: explicit scheduler timesteps (the pipeline's ``timesteps=``),
    used when a generation asks for their number of steps or none (PixArt-Σ Nitro: ``[400]``, one
    step). ``resolution_binning``: generate at the trained aspect-ratio bin and resize back (the
    pipeline's ``use_resolution_binning``, its default; zoo's default renders the size asked).
    ``trim_text_padding``: run T5 and the cross-attention on the longest real
    prompt length instead of 300 padded tokens (the padding is masked: same result, less work)."""

    transformer: dict[str, Any] = field(default_factory=dict)
    scheduler: dict[str, Any] = field(default_factory=dict)
    text_encoder: str = "t5_encoder.pixart_sigma"
    vae: str = "sdxl_vae.pixart_sigma"
    vae_scale_factor: int = 8
    max_sequence_length: int = 300
    steps: int = 20
    guidance_scale: float = 4.5
    timesteps: list[int] | None = None
    resolution_binning: bool = False
    trim_text_padding: bool = True


@dataclass
class SD3Config:
    """Stable Diffusion 3 / 3.5: ``transformer`` holds the ``SD3Transformer2DModel`` config,
    ``scheduler`` the ``FlowMatchEulerDiscreteScheduler`` config (SD3's ``shift: 3.0``;
    ``num_train_timesteps`` 1000), sampled on :func:`zoo.sampling.flow_match_sigmas` by zoo's
    flow driver. ``text_encoders`` names the card of the three encoders (CLIP-L, CLIP-G, T5-XXL),
    ``vae`` the 16-channel VAE card. Defaults are the diffusers pipeline's (28 steps, CFG 7.0,
    256 T5 tokens); the 3.5 cards override them with the values their model cards recommend.
    ``batch_text_encoders``: encode prompts and negative prompts in one batch per encoder (default
    False: apart, as the pipeline does, bitwise equal to it; batching changes float rounding only, but
    random-weight runs amplify it and it bought no measurable speed, benchmarks/results/t2i_speed_sd3.json).
    ``scheduler`` may set ``use_dynamic_shifting`` (+ ``base_shift``, ``max_shift``, ``base_image_seq_len``,
    ``max_image_seq_len``): ``mu`` then follows the image's token count, as in the pipeline.
    ``skip_layer_guidance``: ``{layers, scale, start, stop}`` applied by default on guided steps (None: off;
    the SD3.5 Medium card sets Stability's recommended layers 7, 8, 9)."""

    transformer: dict[str, Any] = field(default_factory=dict)
    scheduler: dict[str, Any] = field(default_factory=lambda: {"shift": 3.0})
    text_encoders: str = "sd3_text.sd3_medium"
    vae: str = "sd3_vae.sd3_medium"
    vae_scale_factor: int = 8
    max_sequence_length: int = 256
    steps: int = 28
    guidance_scale: float = 7.0
    batch_text_encoders: bool = False
    skip_layer_guidance: dict[str, Any] | None = None
