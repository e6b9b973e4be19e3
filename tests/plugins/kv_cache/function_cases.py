"""The GEAR / KIVI function-parity cases: inputs made from a seed, the settings of the reference's
``compress_insert_function`` (HaoKang-Timmy/GEAR, GEARLM/Simulated/compress_function.py) and
zoo's equivalent ``compress`` arguments. The reference outputs are recorded in
tests/fixtures/kv_cache/gear_functions.safetensors (float16 / float32 as the reference returns them).
"""

from __future__ import annotations

import torch

SHAPE = (2, 4, 32, 32)  # [B, H, T, D]: H*D = 128 channels, 32 tokens

# name: reference method, input dtype, bits, group size, outlier ratio ("left"), prefill ranks (k, v), loop
CASES = {
    "kivi_2bit_g16": dict(method="KIVI_V2", dtype=torch.float32, bits=2, group_size=16, left=0.0, rank=(0, 0), loop=0),
    "kivi_4bit_g32": dict(method="KIVI_V2", dtype=torch.float32, bits=4, group_size=32, left=0.0, rank=(0, 0), loop=0),
    "gear_2bit_g16_rank0": dict(method="GEAR", dtype=torch.float16, bits=2, group_size=16, left=0.05, rank=(0, 0), loop=3),
    "gear_2bit_g16_rank4": dict(method="GEAR", dtype=torch.float16, bits=2, group_size=16, left=0.05, rank=(4, 2), loop=3),
    "gear_4bit_g32_rank2_nooutliers": dict(method="GEAR", dtype=torch.float16, bits=4, group_size=32, left=0.0, rank=(2, 2), loop=2),
    "gear_kcvt_4bit_rank4": dict(method="GEAR-KCVT", dtype=torch.float16, bits=4, group_size=None, left=0.05, rank=(4, 4), loop=3),
    "gear_kcvt_2bit_rank0": dict(method="GEAR-KCVT", dtype=torch.float16, bits=2, group_size=None, left=0.02, rank=(0, 0), loop=3),
}


def case_inputs(name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Keys and values with heavy-tailed channels (a few large-magnitude columns, as real keys have)."""
    seed = sorted(CASES).index(name)
    g = torch.Generator().manual_seed(1000 + seed)
    k = torch.randn(SHAPE, generator=g)
    v = torch.randn(SHAPE, generator=g)
    k[..., ::7] *= 4.0                                       # outlier channels in the keys
    v += 3.0 * (torch.rand(SHAPE, generator=g) < 0.01)       # sparse spikes in the values
    dtype = CASES[name]["dtype"]
    return k.to(dtype), v.to(dtype)


def case_seed(name: str) -> int:
    """The seed of the low-rank bases (global RNG in the reference, a torch.Generator in zoo)."""
    return 7 + sorted(CASES).index(name)


def zoo_arguments(name: str) -> tuple[dict, dict]:
    """``compress(...)`` keyword arguments for the keys and for the values."""
    c = CASES[name]
    kcvt = c["method"] == "GEAR-KCVT"
    gs = None if kcvt else c["group_size"]
    common = dict(bits=c["bits"], outlier_ratio=c["left"], loop=max(c["loop"], 1))
    return dict(axis=-2, group_size=gs, rank=c["rank"][0], **common), dict(axis=-1, group_size=gs, rank=c["rank"][1], **common)
