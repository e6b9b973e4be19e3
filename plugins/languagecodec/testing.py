"""Deterministic weights, codebooks and signals for Language-Codec parity tests and benchmarks.

Shared by ``scripts/parity/record_languagecodec.py`` (which runs the reference) and the tests
(which run zoo), so both sides build *the same* random model in the official key layout.
The reference hard-codes its encoder and quantizer (SEANet 32 filters, 128 dims, 8 x 1024
codes); only the Vocos backbone is configurable, so the small parity config shrinks the
backbone alone (:data:`SMALL`).

Example:
    >>> x = test_signal(1000, seed=3)
    >>> tuple(x.shape), bool(x.abs().max() < 1)
    ((1, 1000), True)
"""

from __future__ import annotations

import math
from typing import Callable, Mapping

import torch

__all__ = ["PUBLISHED", "SMALL", "parity_init", "parity_state_dict", "calibrate_codebooks", "test_signal", "CALIBRATION_SAMPLES"]

#: Backbone/head settings of the release (configs/languagecodec_mm.yaml) and of the small parity config.
PUBLISHED = {"backbone_dim": 384, "intermediate_dim": 1152, "num_layers": 12}
SMALL = {"backbone_dim": 64, "intermediate_dim": 96, "num_layers": 2}
CALIBRATION_SAMPLES = 48000
_CODEBOOK = "feature_extractor.encodec.quantizer.vq.layers.{}._codebook.embed"


def parity_init(key: str, shape: tuple[int, ...]) -> tuple[float, float]:
    """(mean, std) per key: AdaLN scales and layer scales near 1, weights ~ 1/sqrt(fan_in)."""
    leaf = key.rsplit(".", 1)[-1]
    if key.endswith("scale.weight") or leaf == "gamma":
        return 1.0, 0.02
    if key.endswith("weight_g"):
        return 1.0, 0.1
    if len(shape) == 1:
        return (1.0, 0.02) if leaf == "weight" else (0.0, 0.02)
    fan_in = math.prod(shape[1:]) if len(shape) > 1 else 1
    return 0.0, fan_in**-0.5


def parity_state_dict(manifest: Mapping[str, tuple], seed: int = 0) -> dict[str, torch.Tensor]:
    """Seeded official-layout weights for ``manifest`` (codebooks still to be calibrated)."""
    from zoo.testing.weights import seeded_state_dict

    sd = seeded_state_dict(manifest, seed=seed, init=parity_init)
    for key, value in sd.items():
        if key.endswith("_codebook.inited") or key.endswith("_codebook.cluster_size"):
            sd[key] = torch.ones_like(value)
        elif key.endswith("istft.window"):
            sd[key] = torch.hann_window(value.shape[0])
    return sd


def test_signal(num_samples: int, seed: int = 0, sample_rate: int = 24000, batch: int = 1) -> torch.Tensor:
    """Seeded audio ``[batch, num_samples]`` in about [-0.6, 0.6] (sines, a chirp, noise)."""
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(num_samples, dtype=torch.float64) / sample_rate
    out = []
    for _ in range(batch):
        f = 80 + 2000 * torch.rand(3, generator=g, dtype=torch.float64)
        a = 0.1 + 0.1 * torch.rand(3, generator=g, dtype=torch.float64)
        x = (a[:, None] * torch.sin(2 * math.pi * f[:, None] * t[None])).sum(0)
        x = x + 0.1 * torch.sin(2 * math.pi * (200 + 3000 * t) * t) + 0.05 * torch.randn(num_samples, generator=g, dtype=torch.float64)
        out.append(x)
    return torch.stack(out).float()


test_signal.__test__ = False  # not a pytest test


def calibrate_codebooks(sd: dict[str, torch.Tensor], latents_fn: Callable[[torch.Tensor], torch.Tensor], seed: int = 0,
                        noise: float = 0.3) -> dict[str, torch.Tensor]:
    """Set every codebook in ``sd`` (official layout) from encoder frames of a seeded signal plus
    seeded noise, so ids depend on the input (a random codebook collapses to a few codes).

    ``latents_fn`` maps 24 kHz audio ``[1, L]`` to latents ``[1, D, T]`` (the reference's encoder in
    the recorder, zoo's in the tests; they agree to ~1e-6). Levels 0-2 (the channel-masked ones)
    get frames masked to their third of the channels; later levels get frames scaled down by
    ``0.3 ** (level - 2)`` (residuals shrink).
    """
    lat = latents_fn(test_signal(CALIBRATION_SAMPLES, seed=10_000 + seed))[0].T.double()  # [T, D]
    d = lat.shape[1]
    bounds = (0, d // 3, 2 * d // 3, d)
    level = 0
    while _CODEBOOK.format(level) in sd:
        key = _CODEBOOK.format(level)
        size = sd[key].shape[0]
        g = torch.Generator().manual_seed(20_000 + 97 * level + seed)
        idx = torch.randint(0, lat.shape[0], (size,), generator=g)
        eps = torch.randn(size, d, generator=g, dtype=torch.float64)
        book = lat[idx] + noise * lat.std(0) * eps
        if level < 3:
            mask = torch.zeros(d, dtype=torch.float64)
            mask[bounds[level] : bounds[level + 1]] = 1
            book = book * mask
        else:
            book = book * 0.3 ** (level - 2)
        sd[key] = book.float()
        level += 1
    return sd
