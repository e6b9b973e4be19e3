"""Seeded GlobalCom² cases shared by ``scripts/parity/record_globalcom2.py`` and the parity test.

Each case is one LLaVA-NeXT image: a crop grid ``(rows, cols)``, the original ``(height, width)``
(transformers' order; the reference takes ``(width, height)``), the base retention ratio and a
patch grid side (24 = CLIP ViT-L/14-336). :func:`scores` regenerates the CLS scores of the
thumbnail and every crop, ``[1 + rows * cols, side * side]``.
"""

from __future__ import annotations

import torch

GLOBALCOM2_CASES = [
    {"id": "2x2_wide_r25", "grid": (2, 2), "size": (500, 800), "keep": 0.25, "side": 24, "seed": 0},
    {"id": "2x2_tall_r10", "grid": (2, 2), "size": (900, 600), "keep": 0.1, "side": 24, "seed": 1},
    {"id": "1x2_wide_r50", "grid": (1, 2), "size": (300, 700), "keep": 0.5, "side": 24, "seed": 2},
    {"id": "2x1_tall_r25", "grid": (2, 1), "size": (700, 320), "keep": 0.25, "side": 24, "seed": 3},
    {"id": "3x1_square_pad_r25", "grid": (3, 1), "size": (1000, 330), "keep": 0.25, "side": 24, "seed": 4},
    {"id": "2x2_square_r05", "grid": (2, 2), "size": (672, 672), "keep": 0.05, "side": 24, "seed": 5},
    {"id": "2x2_small_grid_r30", "grid": (2, 2), "size": (60, 90), "keep": 0.3, "side": 6, "seed": 6},
]


def scores(case: dict) -> torch.Tensor:
    """CLS scores ``[1 + rows * cols, side * side]``: Gaussian logits plus a few hot regions."""
    g = torch.Generator().manual_seed(case["seed"])
    rows, cols = case["grid"]
    n = case["side"] ** 2
    s = torch.randn(1 + rows * cols, n, generator=g)
    hot = torch.randint(0, n, (1 + rows * cols, max(1, n // 40)), generator=g)
    return s.scatter_add(1, hot, torch.full(hot.shape, 4.0))
