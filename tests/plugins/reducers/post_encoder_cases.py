"""Parity cases of the post-encoder reducers MMTok, HiPrune and DyMU, shared by the fixture
recorder (``scripts/parity/record_reducers.py``) and the tests: seeded inputs are regenerated
here, only the references' outputs are stored."""

from __future__ import annotations

import torch

# MMTok: tokens [B, N, D] (projected), vision [B, N, Dv] (encoder features), text [B, T, D] with
# per-sample lengths; `exclude` = padding patches never to keep. N >= 500 or keep >= 20 runs the
# reference's TorchScript kernel, the others its Python loop.
MMTOK_CASES = [
    {"id": "llava_576_k64", "n": 576, "d": 64, "dv": 48, "text": [7, 7], "keep": 64, "seed": 20},
    {"id": "llava_576_k16_padtext", "n": 576, "d": 64, "dv": 48, "text": [9, 4], "keep": 16, "seed": 21},
    {"id": "small_100_k10_alpha0.8", "n": 100, "d": 32, "dv": 32, "text": [5, 3], "keep": 10, "seed": 22,
     "alpha": 0.8, "text_temperature": 0.05, "vision_temperature": 0.1},
    {"id": "small_196_k8_exclude", "n": 196, "d": 32, "dv": 24, "text": [6, 6], "keep": 8, "seed": 23, "exclude": 30},
]

# HiPrune (the reference hard-codes CLIP ViT-L/14-336: a 24x24 grid plus CLS): attention maps of
# the object layer and the deep layer, [B, H, 577, 577]; `edge` hot tokens sit on row ends.
HIPRUNE_CASES = [
    {"id": "keep192_alpha0.1", "keep": 192, "alpha": 0.1, "heads": 2, "seed": 30, "edge": False},
    {"id": "keep64_alpha0.1", "keep": 64, "alpha": 0.1, "heads": 2, "seed": 31, "edge": False},
    {"id": "keep128_alpha0.5_edges", "keep": 128, "alpha": 0.5, "heads": 2, "seed": 32, "edge": True},
]
HIPRUNE_GRID = (24, 24)

# DyMU: DToMe steps on [B, N, D] tokens with metric = tokens. threshold cases with B = 1 run the
# reference's instance-level path (token order defined: compared in order), B > 1 its batch-level
# path, whose unstable argsort scrambles the output order (compared as sets, keyed by each output
# token's first source); `r` cases are calibration steps. Several steps only at B = 1: after a
# scrambled step the reference's next bipartite split depends on that order.
DYMU_CASES = [
    {"id": "clip_b1_thr0.65", "b": 1, "n": 577, "d": 32, "prefix": 1, "threshold": 0.65, "seed": 40},
    {"id": "clip_b3_thr0.65", "b": 3, "n": 577, "d": 32, "prefix": 1, "threshold": 0.65, "seed": 41},
    {"id": "siglip_b2_thr0.55_noprefix", "b": 2, "n": 196, "d": 32, "prefix": 0, "threshold": 0.55, "seed": 42},
    {"id": "clip_b4_calib_r8", "b": 4, "n": 577, "d": 32, "prefix": 1, "r": 8, "seed": 43},
    {"id": "clip_b1_two_steps", "b": 1, "n": 577, "d": 32, "prefix": 1, "threshold": [0.65, 0.6], "seed": 44},
]
DYMU_CALIBRATION = {"id": "calib_3_batches_r12", "batches": 3, "b": 4, "n": 197, "d": 32, "prefix": 1, "r": 12, "seed": 45}


def clustered(g: torch.Generator, b: int, n: int, d: int, clusters: int, noise: float = 0.5) -> torch.Tensor:
    """``[b, n, d]`` tokens around ``clusters`` random centres (so similarity structure exists)."""
    centres = torch.randn(b, clusters, d, generator=g) * 2
    assign = torch.randint(0, clusters, (b, n), generator=g)
    return centres.gather(1, assign[..., None].expand(-1, -1, d)) + noise * torch.randn(b, n, d, generator=g)


def mmtok_inputs(case: dict) -> dict:
    """``tokens``, ``vision``, ``text`` (padded to the longest), ``text_mask``, ``exclude`` (or None)."""
    g = torch.Generator().manual_seed(case["seed"])
    b, n = len(case["text"]), case["n"]
    tokens = clustered(g, b, n, case["d"], clusters=24)
    vision = tokens[..., : case["dv"]] + 0.3 * torch.randn(b, n, case["dv"], generator=g)
    t_max = max(case["text"])
    text = torch.randn(b, t_max, case["d"], generator=g)
    near = torch.randint(0, n, (b, t_max), generator=g)  # half the words describe some token
    text[:, ::2] += 2 * tokens.gather(1, near[:, ::2, None].expand(-1, -1, case["d"]))
    text_mask = torch.arange(t_max)[None] < torch.tensor(case["text"])[:, None]
    text = text * text_mask[..., None]
    exclude = None
    if case.get("exclude"):
        exclude = torch.zeros(b, n, dtype=torch.bool)
        exclude[:, -case["exclude"]:] = True
    return {"tokens": tokens, "vision": vision, "text": text, "text_mask": text_mask, "exclude": exclude}


def hiprune_maps(case: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """Attention probabilities ``[2, heads, 577, 577]`` of the object layer and the deep layer."""
    g = torch.Generator().manual_seed(case["seed"])
    n = HIPRUNE_GRID[0] * HIPRUNE_GRID[1] + 1
    maps = []
    for layer in range(2):
        logits = torch.randn(2, case["heads"], n, n, generator=g)
        hot = torch.randint(1, n, (2, 12), generator=g)
        if case["edge"] and layer == 0:  # row starts and ends (+1: the CLS column)
            hot[:, :6] = torch.tensor([1, 24, 25, 48, 553, 576])
        bias = torch.zeros(2, n).scatter_(1, hot, 3.0 + torch.rand(2, 12, generator=g))
        maps.append(torch.softmax(logits + bias[:, None, None, :], dim=-1))
    return maps[0], maps[1]


def dymu_tokens(case: dict, g: torch.Generator | None = None) -> torch.Tensor:
    """``[b, n, d]`` clustered tokens (the prefix tokens included)."""
    g = g or torch.Generator().manual_seed(case["seed"])
    return clustered(g, case["b"], case["n"], case["d"], clusters=40, noise=2.0)


def dymu_calibration_batches(case: dict) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(case["seed"])
    return [dymu_tokens(case, g) for _ in range(case["batches"])]
