"""MAR parity on the GPU, float32 and bfloat16 (the CPU parity fixtures; ``tests/gpu_parity.py``).

Orders come from ``orders="numpy"`` (CPU), the Gaussian noise from a CPU generator seeded as the
reference's ``torch.manual_seed`` (a ``GeneratorNoise`` hands each draw to the device)."""

from __future__ import annotations

import copy
import json

import pytest
import torch
from safetensors.torch import load_file

from tests.gpu_parity import DEVICE, DTYPES, _no_tf32, check, gpu, rel  # noqa: F401 - fixture
from tests.plugins.mar.test_mar import FIX, fixtures, tiny

pytestmark = gpu
BOUNDS = {torch.float32: 1e-4, torch.bfloat16: 5e-2}  # relative to max|ref|: the CPU bound x10; bf16 loose


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", sorted(json.loads((FIX / "cases.json").read_text())["cases"]))
def test_generation_on_gpu(case, dtype):
    from zoo.sampling.noise import GeneratorNoise

    c = fixtures()["cases"][case]
    ref = load_file(str(FIX / "cases.safetensors"))[case]
    model = copy.deepcopy(tiny()).to(DEVICE, dtype)
    lat = model.generate(c["labels"], steps=c["steps"], guidance_scale=c["guidance_scale"], cfg_schedule=c["cfg_schedule"],
                         temperature=c["temperature"], diffusion_steps=c["diffusion_steps"], seed=c["seed"], orders="numpy",
                         noise=GeneratorNoise(torch.Generator().manual_seed(c["seed"])), return_latents=True)
    got = lat.values.transpose(1, 2).reshape(ref.shape)
    check(f"mar small {case}", dtype, "latents rel", rel(got, ref), BOUNDS[dtype])
