"""Deterministic weights and images for WeTok parity tests and benchmarks.

Shared by ``scripts/parity/record_wetok.py`` (which runs the reference) and the tests and
``benchmarks/wetok.py`` (which run zoo), so both sides build *the same* random model in the
official release layout:

* :func:`release_state_dict` -- a Lightning-style state dict for a key/shape manifest of the
  generator (``encoder.*`` / ``decoder.*``): training weights from one seed, ``LitEma`` shadows
  (``model_ema.<name without dots>``) from another, EMA counters, and ``loss.*`` entries standing
  in for the discriminator -- so a loader that ignores ``ema_scope`` gets different outputs;
* :func:`test_images` -- seeded images in [-1, 1] with smooth structure and texture, so the
  LFQ bits (signs of the latent channels) vary across positions and channels.

Example:
    >>> x = test_images(2, 32, seed=0)
    >>> tuple(x.shape), bool(x.abs().max() <= 1)
    ((2, 3, 32, 32), True)
"""

from __future__ import annotations

import math
from typing import Mapping

import torch
import torch.nn.functional as F

__all__ = ["PARITY_CONFIGS", "parity_init", "release_state_dict", "test_images", "LOSS_STAND_IN"]

# Small configs of the reference classes (the widths keep GroupNorm(32) valid).
PARITY_CONFIGS: dict[str, dict] = {
    "f4_g2": {"ch": 32, "ch_mult": [1, 2, 2], "num_res_blocks": 1, "z_channels": 8, "n_embed": 16, "num_codebooks": 2,
              "gan_decoder": False},
    "f2_gan": {"ch": 32, "ch_mult": [1, 2], "num_res_blocks": 2, "z_channels": 6, "n_embed": 8, "num_codebooks": 2,
               "gan_decoder": True},
}
# Stand-in for the discriminator / LPIPS weights a release keeps under ``loss.``.
LOSS_STAND_IN = {"loss.discriminator.main.0.weight": (4, 3, 4, 4), "loss.discriminator.main.0.bias": (4,)}


def parity_init(key: str, shape: tuple[int, ...]) -> tuple[float, float]:
    """(mean, std): GroupNorm weights and AdaGN ``gamma`` biases near 1, others ~ 1/sqrt(fan_in)."""
    leaf = key.rsplit(".", 1)[-1]
    if key.endswith("gamma.bias"):
        return 1.0, 0.05
    if len(shape) == 1:
        return (1.0, 0.05) if leaf == "weight" else (0.0, 0.05)
    return 0.0, math.prod(shape[1:]) ** -0.5


def release_state_dict(manifest: Mapping[str, tuple], *, seed: int = 0, ema_seed: int = 1) -> dict[str, torch.Tensor]:
    """``{training weights, model_ema.*, loss.*}`` as a WeTok ``.ckpt`` holds them."""
    from zoo.testing.weights import seeded_state_dict  # noqa: PLC0415

    model = {k: v for k, v in manifest.items() if k.startswith(("encoder.", "decoder."))}
    sd = seeded_state_dict(model, seed=seed, init=parity_init)
    ema = seeded_state_dict(model, seed=ema_seed, init=parity_init)
    sd.update({"model_ema." + k.replace(".", ""): v for k, v in ema.items()})
    sd["model_ema.decay"] = torch.tensor(0.999)
    sd["model_ema.num_updates"] = torch.tensor(-1, dtype=torch.int32)
    sd.update(seeded_state_dict({k: (s, "float32") for k, s in LOSS_STAND_IN.items()}, seed=seed))
    return sd


def test_images(batch: int, size: int | tuple[int, int], seed: int = 0) -> torch.Tensor:
    """Seeded images ``[batch, 3, H, W]`` in [-1, 1]: upsampled colour blobs plus fine noise."""
    h, w = (size, size) if isinstance(size, int) else size
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(batch, 3, max(h // 8, 1), max(w // 8, 1), generator=g) * 2 - 1
    x = F.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False)
    x = x + 0.25 * torch.randn(batch, 3, h, w, generator=g)
    return x.clamp(-1, 1)
test_images.__test__ = False  # not a pytest test
