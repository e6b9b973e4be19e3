"""ViTok-v2 parity on the GPU, float32 and bfloat16 (the CPU parity fixtures; ``tests/gpu_parity.py``)."""

from __future__ import annotations

import copy

import pytest
import torch

from tests.gpu_parity import DEVICE, DTYPES, _no_tf32, check, gpu, rel  # noqa: F401 - fixture
from tests.plugins.vitok.test_vitok import META, _inputs, data, model, reference_state  # noqa: F401 - fixtures

pytestmark = gpu
BOUNDS = {torch.float32: {"latents": 1e-4, "decode": 1e-3}, torch.bfloat16: {"latents": 5e-2, "decode": 5e-2}}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", sorted(META["cases"]))
def test_vitok_on_gpu(model, data, dtype, case):  # noqa: F811
    from zoo.interfaces import Latents

    m = copy.deepcopy(model).to(DEVICE, dtype)
    x = _inputs(data, case)
    x = x.to(DEVICE, dtype) if isinstance(x, torch.Tensor) else [t.to(DEVICE, dtype) for t in x]
    z = m.encode(x)
    mask, ref = data[f"{case}.mask"], data[f"{case}.z"]
    b = BOUNDS[dtype]
    check(f"vitok_v2 small {case}", dtype, "latents rel", rel(z.values.cpu()[mask], ref[mask]), b["latents"])
    lat = Latents(values=(ref * mask[..., None]).to(DEVICE, dtype), lengths=mask.sum(1), meta=z.meta)
    out = m.decode(lat, clamp=False)
    for i in range(len(META["cases"][case])):
        check(f"vitok_v2 small {case}", dtype, f"decode {i} rel", rel(out[i].cpu(), data[f"{case}.decoded{i}"]), b["decode"])
