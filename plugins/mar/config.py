"""Typed config of a MAR generator (LTH14/mar ``models/mar.py`` and the README's evaluation
settings per size).

Example:
    >>> MARConfig().encoder_embed_dim, MARConfig().seq_len
    (768, 256)
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["MARConfig"]


@dataclass
class MARConfig:
    """Architecture (``mar_base``/``mar_large``/``mar_huge`` + ``--diffloss_d``/``--diffloss_w``)
    and sampler defaults (the README's FID settings: ``--num_iter 256 --num_sampling_steps 100
    --cfg 2.9/3.0/3.2 --cfg_schedule linear --temperature 1.0``). ``cfg`` is MAR's weight in
    ``uncond + cfg (cond - uncond)``, already zoo's ``w``."""

    img_size: int = 256
    vae_stride: int = 16
    patch_size: int = 1
    vae_embed_dim: int = 16
    encoder_embed_dim: int = 768
    encoder_depth: int = 12
    encoder_num_heads: int = 12
    decoder_embed_dim: int = 768
    decoder_depth: int = 12
    decoder_num_heads: int = 12
    mlp_ratio: float = 4.0
    class_num: int = 1000
    buffer_size: int = 64
    diffloss_d: int = 6
    diffloss_w: int = 1024
    noise_schedule: str = "cosine"
    diffusion_steps: int = 1000
    # sampler defaults
    num_iter: int = 256
    num_sampling_steps: str = "100"
    cfg: float = 2.9
    cfg_schedule: str = "linear"
    temperature: float = 1.0
    vae: str = "mar_vae.kl16"

    @property
    def seq_h(self) -> int:
        return self.img_size // self.vae_stride // self.patch_size

    @property
    def seq_len(self) -> int:
        return self.seq_h * self.seq_h

    @property
    def token_embed_dim(self) -> int:
        return self.vae_embed_dim * self.patch_size ** 2
