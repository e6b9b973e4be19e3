"""The parity cases shared by the fixture recorder and the tests: models, seeded weights,
seeded inputs and schedules (weights and inputs are regenerated, never stored)."""

from __future__ import annotations

import torch

from zoo.testing.weights import seeded_state_dict, state_manifest


def import_timm():
    from zoo.compat.torchvision import import_timm as _import_timm

    return _import_timm()


TOME_CASES = [
    {"id": "vit_tiny_r4", "model": "vit_tiny_patch16_224", "img_size": 96, "r": 4, "prop_attn": True, "seed": 1},
    {"id": "vit_tiny_decreasing", "model": "vit_tiny_patch16_224", "img_size": 96, "r": [5, -1.0], "prop_attn": True, "seed": 2},
    {"id": "vit_tiny_r3_noprop", "model": "vit_tiny_patch16_224", "img_size": 96, "r": 3, "prop_attn": False, "seed": 3},
    {"id": "deit_tiny_distilled_r4", "model": "deit_tiny_distilled_patch16_224", "img_size": 96, "r": 4, "prop_attn": True, "seed": 4},
    {"id": "vit_small_r8_224", "model": "vit_small_patch16_224", "img_size": 224, "r": 8, "prop_attn": True, "seed": 5, "depth": 6},
]

DIFFRATE_CASES = [
    {"id": "deit_tiny_0.8", "model": "deit_tiny_patch16_224", "img_size": 224, "arch": "ViT-T-DeiT", "flops": "0.8", "seed": 6},
    {"id": "deit_tiny_0.6", "model": "deit_tiny_patch16_224", "img_size": 224, "arch": "ViT-T-DeiT", "flops": "0.6", "seed": 7},
]

EVIT_CASES = [
    {"id": "deit_tiny_0.7_fuse", "model": "deit_tiny_patch16_224", "img_size": 224, "keep_rate": 0.7, "locations": [3, 6, 9], "fuse": True, "seed": 8},
    {"id": "deit_tiny_0.5_drop", "model": "deit_tiny_patch16_224", "img_size": 224, "keep_rate": 0.5, "locations": [2, 5, 8], "fuse": False, "seed": 9},
]

# MCTF: mctf_type = [r, r_teacher_max, trace_source, prop_attn, one_step_ahead, tau_sim, tau_info,
# tau_size, bidirection, pooling_type]; the first case is the published evaluation setting.
MCTF_CASES = [
    {"id": "deit_tiny_published", "model": "deit_tiny_patch16_224", "img_size": 224, "seed": 13, "r": 16,
     "layers": list(range(1, 12)), "tau": [1, 20, 40], "bidirection": True, "pooling": "attn"},
    {"id": "deit_tiny_r10_size_onedir", "model": "deit_tiny_patch16_224", "img_size": 224, "seed": 14, "r": 10,
     "layers": [2, 4, 6, 8, 10], "tau": [2, 10, 0], "bidirection": False, "pooling": "size"},
]

DIVPRUNE_CASES = [
    {"id": "gauss_576_r0.1", "n": 576, "d": 64, "ratio": 0.1, "clusters": 0, "seed": 10},
    {"id": "clustered_576_r0.25", "n": 576, "d": 64, "ratio": 0.25, "clusters": 24, "seed": 11},
    {"id": "clustered_200_r0.5", "n": 200, "d": 32, "ratio": 0.5, "clusters": 8, "seed": 12},
]


def build_timm(case: dict) -> tuple[torch.nn.Module, torch.Tensor]:
    """The case's timm model with seeded weights (eval) and its seeded input ``[2, 3, S, S]``."""
    timm = import_timm()
    kwargs = {"img_size": case["img_size"]}
    if "depth" in case:
        kwargs["depth"] = case["depth"]
    model = timm.create_model(case["model"], pretrained=False, **kwargs).eval()
    model.load_state_dict(seeded_state_dict(state_manifest(model), seed=case["seed"]), strict=True)
    g = torch.Generator().manual_seed(case["seed"])
    x = torch.randn(2, 3, case["img_size"], case["img_size"], generator=g)
    return model, x


def diffrate_schedule(case: dict) -> tuple[list[int], list[int]]:
    from zoo_plugins.reducers.policies.diffrate import published_schedule

    return published_schedule(case["arch"], case["flops"])


def divprune_tokens(case: dict) -> torch.Tensor:
    """``[2, n, d]`` tokens: Gaussian, or Gaussian clusters (so diversity matters)."""
    g = torch.Generator().manual_seed(case["seed"])
    n, d = case["n"], case["d"]
    if not case["clusters"]:
        return torch.randn(2, n, d, generator=g)
    centers = torch.randn(2, case["clusters"], d, generator=g) * 3
    assign = torch.randint(0, case["clusters"], (2, n), generator=g)
    return centers.gather(1, assign[..., None].expand(-1, -1, d)) + 0.3 * torch.randn(2, n, d, generator=g)
