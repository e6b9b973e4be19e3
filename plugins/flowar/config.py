"""Typed config of FlowAR (OliverRensu/FlowAR ``models/flowar.py``; sizes and sampler settings
from its README's evaluation commands).

Example:
    >>> FlowARConfig().seq_len, FLOWAR_SIZES["flowar_huge"]["num_steps"]
    (341, 50)
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["FLOWAR_SIZES", "FlowARConfig"]

#: ``flowar_small/large/huge`` (models/flowar.py) with the README's --diffloss_d/w, --num_step,
#: --cfg and --guidance per size.
FLOWAR_SIZES = {
    "flowar_small": dict(encoder_embed_dim=768, encoder_depth=6, encoder_num_heads=12, decoder_embed_dim=768, decoder_depth=6,
                         decoder_num_heads=12, diffloss_d=2, diffloss_w=1024, cross=False, num_steps=25, cfg=4.3, guidance=0.9),
    "flowar_large": dict(encoder_embed_dim=1024, encoder_depth=8, encoder_num_heads=16, decoder_embed_dim=1024, decoder_depth=8,
                         decoder_num_heads=16, diffloss_d=12, diffloss_w=1024, cross=True, num_steps=25, cfg=2.4, guidance=0.9),
    "flowar_huge": dict(encoder_embed_dim=1536, encoder_depth=15, encoder_num_heads=16, decoder_embed_dim=1536, decoder_depth=15,
                        decoder_num_heads=16, diffloss_d=12, diffloss_w=1536, cross=True, num_steps=50, cfg=2.4, guidance=0.7),
}


@dataclass
class FlowARConfig:
    """FlowAR: a scale-wise AR transformer (encoder + decoder stacks of adaLN blocks with 2D RoPE
    per scale, SwiGLU-style MLPs with a GELU gate, RMSNorm) whose per-token condition drives a flow
    head (``diffloss_d`` blocks of width ``diffloss_w``; ``cross``: self- + cross-attention blocks)
    that integrates each scale's latents from noise.

    Sampler: ``num_steps`` Euler steps on the reference's grid (``1 -> 0.3`` in ``num_steps // 2``
    points then ``0.25 -> 0``; uniform when ``num_steps == 50``), CFG weight ramped over the scales
    ``w_k = 1 + (cfg - 1) k / (K - 1)`` (zoo's ``w``: ``uncond + w (cond - uncond)``, the
    reference's formula) and applied only where ``t <= guidance``."""

    img_size: int = 256
    vae_stride: int = 16
    patch_size: int = 1
    encoder_embed_dim: int = 768
    encoder_depth: int = 6
    encoder_num_heads: int = 12
    decoder_embed_dim: int = 768
    decoder_depth: int = 6
    decoder_num_heads: int = 12
    mlp_ratio: float = 4.0
    vae_embed_dim: int = 16
    class_num: int = 1000
    buffer_size: int = 0
    diffloss_d: int = 2
    diffloss_w: int = 1024
    scale: list[int] = field(default_factory=lambda: [1, 2, 4, 8, 16])
    cross: bool = False
    interp_size: int = 16  # the reference hard-codes the bicubic target of the next-scale input (16: the last scale)
    num_steps: int = 25
    cfg: float = 4.3
    guidance: float = 0.9
    vae: str = "mar_vae.kl16"

    @property
    def seq_len(self) -> int:
        return sum(s * s for s in self.scale)

    @property
    def token_dim(self) -> int:
        return self.vae_embed_dim * self.patch_size**2
