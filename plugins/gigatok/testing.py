"""Deterministic weights, images and codebooks for GigaTok parity tests and benchmarks.

Shared by ``scripts/parity/record_gigatok.py`` (which runs the reference) and the tests (which
run zoo), so both sides build *the same* random model in the release key layout:

* :data:`PARITY_CASE` -- a small config of the reference classes (CNN ``ch`` 32, f4, 32x32 images,
  16 tokens, "tiny" Q-Formers) as zoo config values;
* :func:`release_state_dict` -- seeded weights for a key/shape manifest (release names);
* :func:`calibrated_codebook` -- codewords made of pre-quantisation latents of seeded images plus
  seeded noise, so ids depend on the input (a random codebook collapses to a few codes).

Example:
    >>> sd = release_state_dict({"s2to1encoder.ln_pre.weight": ((4,), "float32")})
    >>> round(float(sd["s2to1encoder.ln_pre.weight"].mean()))
    1
"""

from __future__ import annotations

import math
from typing import Callable, Mapping

import torch
import torch.nn.functional as F

__all__ = ["PARITY_CASE", "CODEBOOK_KEY", "parity_init", "release_state_dict", "calibrated_codebook", "test_images"]

CODEBOOK_KEY = "quantize.embedding.weight"
PARITY_CASE: dict = {"encoder_size": "tiny", "decoder_size": "tiny", "codebook_size": 64, "codebook_embed_dim": 8,
                     "num_latent_tokens": 16, "z_channels": 64, "ch": 32, "encoder_ch_mult": [1, 1, 2],
                     "decoder_ch_mult": [1, 1, 2], "num_res_blocks": 2, "image_size": 32}


def parity_init(key: str, shape: tuple[int, ...]) -> tuple[float, float]:
    """(mean, std): norm weights and AdaGN ``gamma`` biases near 1, matrices ~ 1/sqrt(fan_in)."""
    leaf = key.rsplit(".", 1)[-1]
    if key.endswith("gamma.bias"):
        return 1.0, 0.05
    if len(shape) == 1:
        return (1.0, 0.05) if leaf == "weight" else (0.0, 0.05)
    if key.endswith("positional_embedding"):
        return 0.0, 0.5
    return 0.0, math.prod(shape[1:]) ** -0.5


def release_state_dict(manifest: Mapping[str, tuple], seed: int = 0) -> dict[str, torch.Tensor]:
    from zoo.testing.weights import seeded_state_dict  # noqa: PLC0415

    return seeded_state_dict(manifest, seed=seed, init=parity_init)


def calibrated_codebook(latents_fn: Callable[[torch.Tensor], torch.Tensor], size: int, image_size: int,
                        seed: int = 0, noise: float = 0.2) -> torch.Tensor:
    """``size`` codewords: pre-quantisation latent vectors (``[B, C, 1, N]`` from ``latents_fn``)
    of seeded images, plus ``noise * std`` seeded noise."""
    lat = latents_fn(test_images(4, image_size, seed=10_000 + seed))
    vecs = lat.permute(0, 2, 3, 1).reshape(-1, lat.shape[1]).double()
    g = torch.Generator().manual_seed(20_000 + seed)
    idx = torch.randint(0, vecs.shape[0], (size,), generator=g)
    eps = torch.randn(size, vecs.shape[1], generator=g, dtype=torch.float64)
    return (vecs[idx] + noise * vecs.std(0) * eps).float()


def test_images(batch: int, size: int, seed: int = 0) -> torch.Tensor:
    """Seeded images ``[batch, 3, size, size]`` in [-1, 1]: upsampled colour blobs plus fine noise."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(batch, 3, max(size // 8, 1), max(size // 8, 1), generator=g) * 2 - 1
    x = F.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False)
    return (x + 0.25 * torch.randn(batch, 3, size, size, generator=g)).clamp(-1, 1)
test_images.__test__ = False  # not a pytest test
