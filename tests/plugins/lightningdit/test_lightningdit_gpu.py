"""LightningDiT parity on the GPU, float32 and bfloat16 (the CPU parity fixtures; ``tests/gpu_parity.py``).

The initial noise is the reference's CPU draw after ``torch.manual_seed(seed)``, moved to the device."""

from __future__ import annotations

import copy
import json

import pytest
import torch

from tests.gpu_parity import DEVICE, DTYPES, _no_tf32, check, gpu, max_abs, rel  # noqa: F401 - fixture
from tests.plugins.lightningdit.test_lightningdit import FIX, fixtures, model, reference

pytestmark = gpu
BOUNDS = {torch.float32: {"velocity": 2e-5, "latents": 1e-4}, torch.bfloat16: {"velocity": 5e-2, "latents": 5e-2}}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["small", "variant"])
def test_velocity_on_gpu(name, dtype):
    ref = reference()
    m = copy.deepcopy(model(name)).to(DEVICE, dtype)
    with torch.inference_mode():
        out = m(ref[f"{name}.forward.x"].to(DEVICE), ref[f"{name}.forward.t"].to(DEVICE), ref[f"{name}.forward.y"].to(DEVICE))
    want = ref[f"{name}.forward.out"]
    exact = dtype == torch.float32
    check(f"lightningdit {name}", dtype, "velocity max|d|" if exact else "velocity rel",
          max_abs(out, want) if exact else rel(out, want), BOUNDS[dtype]["velocity"])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", sorted(json.loads((FIX / "cases.json").read_text())["cases"]))
def test_sampling_on_gpu(case, dtype):
    c = fixtures()["cases"][case]
    want = reference()[f"{case}.latents"]
    g = torch.Generator().manual_seed(c["seed"])
    noise = torch.randn(want.shape, generator=g)
    m = copy.deepcopy(model()).to(DEVICE, dtype)
    lat = m.generate(c["labels"], steps=c["steps"], guidance_scale=c["guidance_scale"], cfg_interval_start=c["cfg_interval_start"],
                     timestep_shift=c["timestep_shift"], noise=noise, return_latents=True)
    got = lat.values.transpose(1, 2).reshape(want.shape)
    exact = dtype == torch.float32
    check(f"lightningdit small {case}", dtype, "latents max|d|" if exact else "latents rel",
          max_abs(got, want) if exact else rel(got, want), BOUNDS[dtype]["latents"])
