"""MingTok parity on the GPU, float32 and bfloat16 (the CPU parity fixtures; ``tests/gpu_parity.py``)."""

from __future__ import annotations

import copy

import pytest
import torch

from tests.gpu_parity import DEVICE, DTYPES, _no_tf32, check, gpu, rel  # noqa: F401 - fixture
from tests.plugins.mingtok.test_mingtok import META, data, model, reference_state  # noqa: F401 - fixtures

pytestmark = gpu
BOUNDS = {torch.float32: {"latents": 1e-4, "features": 1e-4, "decode": 1e-3},
          torch.bfloat16: {"latents": 5e-2, "features": 5e-2, "decode": 5e-2}}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", sorted(META["cases"]))
def test_mingtok_on_gpu(model, data, dtype, case):  # noqa: F811
    m = copy.deepcopy(model).to(DEVICE, dtype)
    b, name = BOUNDS[dtype], f"mingtok small {case}"
    with torch.no_grad():
        z = m.encode(data[f"{case}.x"].to(DEVICE, dtype)).values.cpu()
        feats = m.semantic_features(data[f"{case}.latent"].to(DEVICE, dtype))
        out = m.pixels(data[f"{case}.features"].to(DEVICE, dtype)).cpu()
    check(name, dtype, "latents rel", rel(z, data[f"{case}.latent"]), b["latents"])
    check(name, dtype, "features rel", rel(feats.cpu(), data[f"{case}.features"]), b["features"])
    check(name, dtype, "decode rel", rel(out, data[f"{case}.decoded"]), b["decode"])
