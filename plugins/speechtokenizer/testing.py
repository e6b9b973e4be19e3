"""Deterministic weights, configs and signals for SpeechTokenizer / DM-Codec parity tests.

Shared by ``scripts/parity/record_speechtokenizer.py`` (reference) and the tests (zoo):

* :data:`PUBLISHED` -- the model fields of the released ``config.json`` files (hubert_avg and
  DM-Codec: identical; snake: ``activation: Snake``); :data:`SMALL` -- small configs for fixtures;
* :func:`parity_state_dict` -- seeded release-layout weights with trained-like buffers;
* :func:`calibrated_codebooks` -- RVQ codebooks from encoder outputs (residual by residual) of a
  seeded signal plus noise, so ids depend on the input (random codebooks collapse);
* :func:`test_signal` -- seeded 16 kHz audio.

Example:
    >>> PUBLISHED["hubert_avg"]["n_q"], SMALL["elu"]["bidirectional"]
    (8, True)
"""

from __future__ import annotations

import math
from typing import Any, Callable, Mapping

import torch

__all__ = ["PUBLISHED", "SMALL", "parity_init", "parity_state_dict", "calibrated_codebooks", "test_signal", "codebook_key"]

_BASE = {"n_filters": 64, "strides": [8, 5, 4, 2], "dimension": 1024, "semantic_dimension": 768, "bidirectional": True,
         "dilation_base": 2, "residual_kernel_size": 3, "n_residual_layers": 1, "lstm_layers": 2, "activation": "ELU",
         "codebook_size": 1024, "n_q": 8, "sample_rate": 16000}
PUBLISHED: dict[str, dict[str, Any]] = {"hubert_avg": dict(_BASE), "snake": {**_BASE, "activation": "Snake"}}
SMALL: dict[str, dict[str, Any]] = {
    "elu": {**_BASE, "n_filters": 4, "dimension": 32, "semantic_dimension": 16, "codebook_size": 64, "n_q": 4},
    "snake_small": {**_BASE, "n_filters": 4, "dimension": 32, "semantic_dimension": 32, "codebook_size": 64, "n_q": 3,
                    "activation": "Snake", "n_residual_layers": 2, "strides": [4, 4, 2]},
}


def codebook_key(level: int) -> str:
    return f"quantizer.vq.layers.{level}._codebook.embed"


def parity_init(key: str, shape: tuple[int, ...]) -> tuple[float, float]:
    """(mean, std): Snake alphas and weight-norm gains near 1, weights ~ 1/sqrt(fan_in)."""
    leaf = key.rsplit(".", 1)[-1]
    if leaf == "alpha":
        return 1.0, 0.1
    if leaf == "weight_g":
        return 1.0, 0.05
    if len(shape) == 1:
        return (1.0, 0.02) if leaf == "weight" else (0.0, 0.02)
    fan_in = math.prod(shape[1:])
    return 0.0, fan_in**-0.5


def parity_state_dict(manifest: Mapping[str, tuple], seed: int = 0) -> dict[str, torch.Tensor]:
    """Seeded weights (codebooks still to be calibrated); ``inited = 1`` as in a trained model."""
    from zoo.testing.weights import seeded_state_dict  # noqa: PLC0415

    sd = seeded_state_dict(manifest, seed=seed, init=parity_init)
    for key, value in sd.items():
        if key.endswith("_codebook.inited"):
            sd[key] = torch.ones_like(value)
        elif key.endswith("_codebook.cluster_size"):
            sd[key] = torch.ones_like(value)
    return sd


def test_signal(num_samples: int, seed: int = 0, sample_rate: int = 16000, batch: int = 1) -> torch.Tensor:
    """Seeded mono audio ``[batch, 1, num_samples]`` in about [-0.6, 0.6]."""
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(num_samples, dtype=torch.float64) / sample_rate
    out = []
    for _ in range(batch):
        f = 80 + 3000 * torch.rand(3, generator=g, dtype=torch.float64)
        a = 0.1 + 0.1 * torch.rand(3, generator=g, dtype=torch.float64)
        x = (a[:, None] * torch.sin(2 * math.pi * f[:, None] * t[None])).sum(0)
        x = x + 0.1 * torch.sin(2 * math.pi * (200 + 2000 * t) * t) + 0.05 * torch.randn(num_samples, generator=g, dtype=torch.float64)
        out.append(x)
    return torch.stack(out)[:, None].float()
test_signal.__test__ = False  # not a pytest test


def calibrated_codebooks(latents_fn: Callable[[torch.Tensor], torch.Tensor], size: int, levels: int, seed: int = 0,
                         noise: float = 0.3) -> list[torch.Tensor]:
    """Per level, ``size`` codes drawn from the residual of a seeded calibration signal's latents
    (``latents_fn``: ``[1, 1, L]`` -> ``[1, D, T]``) plus ``noise * std`` seeded noise; the residual
    is updated with each level's nearest codes, so every level sees what it would quantize."""
    lat = latents_fn(test_signal(16000, seed=10_000 + seed))[0].T.double()  # [T, D]
    g = torch.Generator().manual_seed(20_000 + seed)
    books, residual = [], lat
    for _ in range(levels):
        idx = torch.randint(0, residual.shape[0], (size,), generator=g)
        eps = torch.randn(size, residual.shape[1], generator=g, dtype=torch.float64)
        book = residual[idx] + noise * residual.std(0) * eps
        nearest = torch.cdist(residual, book).argmin(-1)
        residual = residual - book[nearest]
        books.append(book.float())
    return books
