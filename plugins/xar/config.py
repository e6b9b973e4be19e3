"""Typed config of xAR (OliverRensu/xAR ``models/xar.py``; sizes and sampler settings from its
README's evaluation commands).

Example:
    >>> XARConfig().seq_len, XARConfig().cell_tokens, XAR_SIZES["xar_huge"]["cfg"]
    (256, 64, 2.2)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["XARConfig", "XAR_SIZES"]

#: ``xar_base/large/huge`` (models/xar.py) with the README's --num_steps and --cfg per size.
XAR_SIZES = {
    "xar_base": dict(encoder_embed_dim=768, encoder_depth=8, encoder_num_heads=12, decoder_embed_dim=768, decoder_depth=8,
                     decoder_num_heads=12, num_steps=40, cfg=2.7),
    "xar_large": dict(encoder_embed_dim=1024, encoder_depth=16, encoder_num_heads=16, decoder_embed_dim=1024, decoder_depth=16,
                      decoder_num_heads=16, num_steps=50, cfg=2.3),
    "xar_huge": dict(encoder_embed_dim=1280, encoder_depth=20, encoder_num_heads=16, decoder_embed_dim=1280, decoder_depth=20,
                     decoder_num_heads=16, num_steps=50, cfg=2.2),
}


@dataclass
class XARConfig:
    """xAR with cells as the prediction unit ("next-cell"): the 16x16 latent grid is split into
    ``clusters`` square cells (4 cells of 8x8), generated one after the other; each cell is
    integrated from noise with a flow SDE (Euler-Maruyama, ``num_steps`` times from 1 to 0.04,
    then a mean step to 0) by an encoder-decoder transformer conditioned on class + time (adaLN per
    token segment), seeing the earlier cells clean through its KV cache.

    ``cfg`` is zoo's ``w`` (``uncond + w (cond - uncond)``, the reference's formula) at the last
    cell, ramped from 1: ``w_k = 1 + (cfg - 1) k / (clusters - 1)``."""

    img_size: int = 256
    vae_stride: int = 16
    patch_size: int = 1
    encoder_embed_dim: int = 768
    encoder_depth: int = 8
    encoder_num_heads: int = 12
    decoder_embed_dim: int = 768
    decoder_depth: int = 8
    decoder_num_heads: int = 12
    mlp_ratio: float = 4.0
    vae_embed_dim: int = 16
    class_num: int = 1000
    clusters: int = 4
    num_steps: int = 40
    cfg: float = 2.7
    vae: str = "mar_vae.kl16"

    @property
    def side(self) -> int:
        return self.img_size // self.vae_stride // self.patch_size

    @property
    def seq_len(self) -> int:
        return self.side * self.side

    @property
    def cells_per_side(self) -> int:
        return int(math.isqrt(self.clusters))

    @property
    def cell_tokens(self) -> int:
        return self.seq_len // self.clusters
