"""Deterministic weights, configs and signals for SNAC parity tests and benchmarks.

Shared by ``scripts/parity/record_snac.py`` (which runs the reference) and the tests (which run
zoo), so both sides build the same random model in the official key layout:

* :data:`PUBLISHED` -- the ``config.json`` of every release; :data:`SMALL` -- small configs
  (with and without local attention) for fast fixtures;
* :func:`parity_state_dict` -- seeded weights for a key/shape manifest in the release layout
  (``parametrizations.weight.original0/1`` for weight norm), with what a trained checkpoint has:
  Snake ``alpha`` near 1, weight-norm gains near 1, the rotary ``inv_freq`` exact;
* :func:`test_signal` -- seeded audio (sines, a chirp and noise).

Example:
    >>> sorted(PUBLISHED), PUBLISHED["24khz"]["vq_strides"]
    (['24khz', '32khz', '44khz'], [4, 2, 1])
    >>> tuple(test_signal(1000, seed=1).shape)
    (1, 1, 1000)
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import torch

__all__ = ["PUBLISHED", "SMALL", "parity_init", "parity_state_dict", "test_signal"]

_MUSIC = {"encoder_dim": 64, "encoder_rates": [2, 3, 8, 8], "decoder_dim": 1536, "decoder_rates": [8, 8, 3, 2],
          "attn_window_size": 32, "codebook_size": 4096, "codebook_dim": 8, "vq_strides": [8, 4, 2, 1],
          "noise": True, "depthwise": True}
#: ``config.json`` of hubertsiuzdak/snac_24khz, snac_32khz and snac_44khz.
PUBLISHED: dict[str, dict[str, Any]] = {
    "24khz": {"sampling_rate": 24000, "encoder_dim": 48, "encoder_rates": [2, 4, 8, 8], "decoder_dim": 1024,
              "decoder_rates": [8, 8, 4, 2], "attn_window_size": None, "codebook_size": 4096, "codebook_dim": 8,
              "vq_strides": [4, 2, 1], "noise": True, "depthwise": True},
    "32khz": {"sampling_rate": 32000, **_MUSIC},
    "44khz": {"sampling_rate": 44100, **_MUSIC},
}
#: Small configs for fixtures: "attn" (4 levels, local attention, odd rates) and "plain" (3 levels).
SMALL: dict[str, dict[str, Any]] = {
    "attn": {"sampling_rate": 16000, "encoder_dim": 8, "encoder_rates": [2, 3, 4], "decoder_dim": 128,
             "decoder_rates": [4, 3, 2], "attn_window_size": 4, "codebook_size": 64, "codebook_dim": 4,
             "vq_strides": [4, 2, 1, 1], "noise": True, "depthwise": True},
    "plain": {"sampling_rate": 16000, "encoder_dim": 8, "encoder_rates": [2, 4, 4], "decoder_dim": 64,
              "decoder_rates": [4, 4, 2], "attn_window_size": None, "codebook_size": 32, "codebook_dim": 4,
              "vq_strides": [4, 2, 1], "noise": True, "depthwise": False},
}


#: Mean weight-norm gain: keeps activations O(1) through the residual stacks (a gain of 1 drives the
#: random decoder into a saturated tanh, where float rounding is amplified).
GAIN = 0.6


def parity_init(key: str, shape: tuple[int, ...]) -> tuple[float, float]:
    """(mean, std) per key: Snake alphas and weight-norm gains near 1, weights ~ 1/sqrt(fan_in)."""
    leaf = key.rsplit(".", 1)[-1]
    if leaf == "alpha":
        return 1.0, 0.1
    if leaf in ("original0", "weight_g"):
        return GAIN, 0.05 * GAIN
    if len(shape) == 1:
        return (1.0, 0.02) if leaf == "weight" else (0.0, 0.02)
    if key.endswith("codebook.weight"):
        return 0.0, 1.0
    fan_in = math.prod(shape[1:])
    return 0.0, fan_in**-0.5


def parity_state_dict(manifest: Mapping[str, tuple], seed: int = 0) -> dict[str, torch.Tensor]:
    """Seeded release-layout weights for ``manifest`` (``inv_freq`` set to its exact values)."""
    from zoo.testing.weights import seeded_state_dict  # noqa: PLC0415

    sd = seeded_state_dict(manifest, seed=seed, init=parity_init)
    for key, value in sd.items():
        if key.endswith("rel_pos.inv_freq"):
            dim = 2 * value.shape[0]
            sd[key] = 1.0 / (10000 ** (torch.arange(0, dim, 2).float() / dim))
    return sd


def test_signal(num_samples: int, seed: int = 0, sample_rate: int = 24000, batch: int = 1) -> torch.Tensor:
    """Seeded mono audio ``[batch, 1, num_samples]`` in about [-0.6, 0.6]."""
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(num_samples, dtype=torch.float64) / sample_rate
    out = []
    for _ in range(batch):
        f = 80 + 0.4 * sample_rate * torch.rand(3, generator=g, dtype=torch.float64) / 2
        a = 0.1 + 0.1 * torch.rand(3, generator=g, dtype=torch.float64)
        x = (a[:, None] * torch.sin(2 * math.pi * f[:, None] * t[None])).sum(0)
        x = x + 0.1 * torch.sin(2 * math.pi * (200 + 3000 * t) * t)
        x = x + 0.05 * torch.randn(num_samples, generator=g, dtype=torch.float64)
        out.append(x)
    return torch.stack(out)[:, None].float()
test_signal.__test__ = False  # not a pytest test
