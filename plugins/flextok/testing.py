"""Small and published FlexTok configs for tests, fixtures and manifests (no torch import).

``published_config(name)`` is zoo's reconstruction of each released checkpoint's architecture
(the real configs live in the checkpoints' metadata, which cannot be fetched here). The
assumptions, stated once:

* widths follow the muP-style ``dim = 64 * depth`` naming of the checkpoints: d12 -> 768,
  d18 -> 1152, d28 -> 1792; head_dim 64; SwiGLU (mlp_ratio 4); QK-norm; LayerNorm without
  affine, fp32; no biases in the trunks;
* encoder: 2x2 patches of the 16-channel f8 VAE latents with 2D sincos posembs (16x16 grid),
  256 nested registers, prefix-LM mask (``causal_last``), LayerNorm + Linear to 6 FSQ dims;
* decoder: Linear 6 -> dim, learnable 1D register posemb (256), nested-dropout mask token,
  learned null condition (whole sequence replaced), 2x2 patches + sincos posemb, DiT time
  embedder (256 frequencies, t in [0, 1]), adaLN with separate patch/register modulation
  (expansion 2), LayerNorm + adaLN + Linear head;
* FSQ levels 8-8-8-5-5-5 (64 000 codes).

Example:
    >>> published_config("d12_d12").decoder.transformer.dim
    768
"""

from __future__ import annotations

import copy
from typing import Any

from .config import (
    DecoderConfig,
    EncoderConfig,
    FlexTokConfig,
    TransformerConfig,
    VAEConfig,
)

__all__ = ["PUBLISHED", "TINY_VAE", "published_config", "sample_images", "tiny_config", "tiny_variant"]

PUBLISHED = {
    "d12_d12": (12, 12),
    "d18_d18": (18, 18),
    "d18_d28": (18, 28),
}

# A VAE small enough for unit tests (same block types, f8, 16 latent channels).
TINY_VAE = {"block_out_channels": [32, 32, 32, 32], "layers_per_block": 1, "norm_num_groups": 8}


def published_config(name: str) -> FlexTokConfig:
    """Reconstructed config of ``flextok_{name}_{in1k,dfn}`` (``d12_d12``, ``d18_d18``, ``d18_d28``)."""
    key = name.replace("flextok_", "").replace("_in1k", "").replace("_dfn", "")
    if key not in PUBLISHED:
        raise KeyError(f"unknown published FlexTok size {name!r}; known: {sorted(PUBLISHED)}")
    de, dd = PUBLISHED[key]
    cfg = FlexTokConfig()
    cfg.encoder.transformer = TransformerConfig(dim=64 * de, depth=de)
    cfg.decoder.transformer = TransformerConfig(dim=64 * dd, depth=dd, adaln_expansion=2)
    return cfg


def tiny_config(**vae: Any) -> FlexTokConfig:
    """A seconds-fast config: 64x64 images -> 8x8 latents -> 16 patches, 16 registers, dim 64."""
    vcfg = VAEConfig(latent_channels=16, scaling_factor=0.75, **{**TINY_VAE, **vae})
    enc = EncoderConfig(posemb_max_sizes=[4, 4], n_registers=16,
                        transformer=TransformerConfig(dim=64, depth=2, head_dim=32))
    dec = DecoderConfig(registers_posemb_max_sizes=[16], posemb_max_sizes=[4, 4],
                        transformer=TransformerConfig(dim=64, depth=2, head_dim=32, adaln_expansion=2))
    return FlexTokConfig(vae=vcfg, encoder=enc, decoder=dec)


def tiny_variant(name: str) -> FlexTokConfig:
    """Named variants of :func:`tiny_config` covering the config space the loader maps.

    * ``base``: the published layout at tiny size;
    * ``single_null``: single-token null condition, no register posemb, affine norms with
      bias, GELU plain MLP, qkv biases, avg-pool registers, a head without adaLN.
    """
    cfg = tiny_config()
    if name == "base":
        return cfg
    if name == "single_null":
        cfg = copy.deepcopy(cfg)
        for t in (cfg.encoder.transformer, cfg.decoder.transformer):
            t.norm_affine = True
            t.norm_bias = True
            t.gated_mlp = False
            t.act = "gelu"
            t.qkv_bias = True
        cfg.encoder.register_ordering = "avg_pool"
        cfg.encoder.head_norm_affine = True
        cfg.decoder.nullcond_single_token = True
        cfg.decoder.registers_posemb_type = "none"
        cfg.decoder.registers_posemb_max_sizes = [256]  # unused without a register posemb
        cfg.decoder.head_adaln = False
        return cfg
    raise KeyError(f"unknown tiny variant {name!r}")


def sample_images(n: int = 3, size: int = 64, seed: int = 1):
    """Smooth deterministic test images ``[n, 3, size, size]`` in [-1, 1] (fixture inputs)."""
    import torch
    import torch.nn.functional as F

    g = torch.Generator().manual_seed(seed)
    low = torch.rand(n, 3, size // 8, size // 8, generator=g)
    x = F.interpolate(low, size=(size, size), mode="bilinear", align_corners=False)
    ramp = torch.linspace(0, 1, size)[None, None, None, :]
    return (0.7 * x + 0.3 * ramp).clamp(0, 1) * 2 - 1
