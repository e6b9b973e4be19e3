"""Typed config of a RAR generator (bytedance/1d-tokenizer ``configs/training/generator/rar.yaml``
plus the per-size overrides of README_RAR.md).

Example:
    >>> RARConfig().hidden_size, RARConfig().image_seq_len
    (768, 256)
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["RARConfig", "RAR_SIZES"]

# README_RAR.md: width, depth, MLP width and the FID-reproducing sampler settings per size
RAR_SIZES = {
    "rar_b": dict(hidden_size=768, num_hidden_layers=24, intermediate_size=3072, randomize_temperature=1.0, guidance_scale=16.0, guidance_scale_pow=2.75),
    "rar_l": dict(hidden_size=1024, num_hidden_layers=24, intermediate_size=4096, randomize_temperature=1.02, guidance_scale=15.5, guidance_scale_pow=2.5),
    "rar_xl": dict(hidden_size=1280, num_hidden_layers=32, intermediate_size=5120, randomize_temperature=1.02, guidance_scale=6.9, guidance_scale_pow=1.5),
    "rar_xxl": dict(hidden_size=1408, num_hidden_layers=40, intermediate_size=6144, randomize_temperature=1.02, guidance_scale=8.0, guidance_scale_pow=1.2),
}


@dataclass
class RARConfig:
    """Architecture and sampler defaults. ``guidance_scale`` is RAR's ``w`` in
    ``uncond + w (cond - uncond)`` (already zoo's convention), scheduled by MDT's power-cosine
    with exponent ``guidance_scale_pow`` (0 = constant); ``guidance_scale == 0`` disables CFG."""

    hidden_size: int = 768
    num_hidden_layers: int = 24
    num_attention_heads: int = 16
    intermediate_size: int = 3072
    image_seq_len: int = 256
    codebook_size: int = 1024
    condition_num_classes: int = 1000
    randomize_temperature: float = 1.0
    guidance_scale: float = 16.0
    guidance_scale_pow: float = 2.75
    tokenizer: str = "maskgit_vqgan.imagenet_f16_256"
