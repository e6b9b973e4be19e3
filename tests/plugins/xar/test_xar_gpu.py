"""xAR parity on the GPU, float32 and bfloat16 (the CPU parity fixtures; ``tests/gpu_parity.py``).

The Gaussian noise comes from a CPU generator seeded as the reference's ``torch.manual_seed``
(float32 initial latents, float64 SDE draws, each handed to the device)."""

from __future__ import annotations

import copy

import pytest
import torch

from tests.gpu_parity import DEVICE, DTYPES, _no_tf32, check, gpu, rel  # noqa: F401 - fixture
from tests.plugins.xar.test_xar import DATA, SMALL, _grid, small

pytestmark = gpu
BOUNDS = {torch.float32: 1e-4, torch.bfloat16: 3e-1}  # relative to max|ref|: ~the CPU bound x10; bf16 loose (CFG and the SDE amplify it: 0.11 / 0.26 measured on the CPU)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", sorted(SMALL["cases"]))
def test_generation_on_gpu(case, dtype):
    from zoo.sampling.noise import GeneratorNoise

    c = SMALL["cases"][case]
    model = copy.deepcopy(small(c["model"])).to(DEVICE, dtype)
    lat = model.generate(c["labels"], steps=c["steps"], guidance_scale=c["cfg"],
                         noise=GeneratorNoise(torch.Generator().manual_seed(c["seed"])), return_latents=True)
    check(f"xar small {case}", dtype, "latents rel", rel(_grid(lat), DATA[f"{case}.latents"]), BOUNDS[dtype])
