"""Deterministic weights, codebooks and signals for WavTokenizer parity tests and benchmarks.

Shared by ``scripts/parity/record_wavtokenizer.py`` (which runs the reference) and the tests
(which run zoo), so both sides build *the same* random model in the official key layout:

* :func:`parity_state_dict` -- seeded weights for a key/shape manifest (``zoo.testing``), with
  what a trained checkpoint has: ``inited = 1``, a Hann ISTFT window, AdaLN scales near 1;
* :func:`calibrated_codebook` -- a codebook made of encoder outputs of a seeded calibration
  signal plus seeded noise, so token ids depend on the input (a random codebook collapses);
* :func:`test_signal` -- seeded audio (a few sines, a chirp and noise).

Example:
    >>> x = test_signal(1000, seed=3)
    >>> tuple(x.shape), bool(x.abs().max() < 1)
    ((1, 1000), True)
"""

from __future__ import annotations

import math
from typing import Callable, Mapping

import torch

__all__ = ["parity_init", "parity_state_dict", "calibrated_codebook", "test_signal", "CODEBOOK_KEY", "CALIBRATION_SAMPLES"]

CODEBOOK_KEY = "feature_extractor.encodec.quantizer.vq.layers.0._codebook.embed"
CALIBRATION_SAMPLES = 48000


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
    """Seeded official-layout weights for ``manifest`` (codebook still to be calibrated)."""
    from zoo.testing.weights import seeded_state_dict  # noqa: PLC0415

    sd = seeded_state_dict(manifest, seed=seed, init=parity_init)
    for key, value in sd.items():
        if key.endswith("_codebook.inited"):
            sd[key] = torch.ones_like(value)
        elif key.endswith("istft.window"):
            sd[key] = torch.hann_window(value.shape[0])
        elif key.endswith("_codebook.cluster_size"):
            sd[key] = torch.ones_like(value)
    return sd


def test_signal(num_samples: int, seed: int = 0, sample_rate: int = 24000, channels: int = 1) -> torch.Tensor:
    """Seeded audio ``[channels, num_samples]`` in about [-0.6, 0.6]."""
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(num_samples, dtype=torch.float64) / sample_rate
    out = []
    for _ in range(channels):
        f = 80 + 2000 * torch.rand(3, generator=g, dtype=torch.float64)
        a = 0.1 + 0.1 * torch.rand(3, generator=g, dtype=torch.float64)
        x = (a[:, None] * torch.sin(2 * math.pi * f[:, None] * t[None])).sum(0)
        x = x + 0.1 * torch.sin(2 * math.pi * (200 + 3000 * t) * t)
        x = x + 0.05 * torch.randn(num_samples, generator=g, dtype=torch.float64)
        out.append(x)
    return torch.stack(out).float()
test_signal.__test__ = False  # not a pytest test


def calibrated_codebook(latents_fn: Callable[[torch.Tensor], torch.Tensor], size: int, seed: int = 0,
                        noise: float = 0.3) -> torch.Tensor:
    """``size`` codes = encoder frames of a seeded calibration signal + ``noise * std`` seeded noise.

    ``latents_fn`` maps mono 24 kHz audio ``[1, L]`` to latents ``[1, D, T]`` (the reference's
    encoder in the recorder, zoo's in the tests; they agree to ~1e-6).
    """
    lat = latents_fn(test_signal(CALIBRATION_SAMPLES, seed=10_000 + seed))[0].T.double()  # [T, D]
    g = torch.Generator().manual_seed(20_000 + seed)
    idx = torch.randint(0, lat.shape[0], (size,), generator=g)
    eps = torch.randn(size, lat.shape[1], generator=g, dtype=torch.float64)
    return (lat[idx] + noise * lat.std(0) * eps).float()
