"""Instella-T2I BAE parity on the GPU, float32 and bfloat16 (the CPU parity fixtures; ``tests/gpu_parity.py``)."""

from __future__ import annotations

import copy

import pytest
import torch

from tests.gpu_parity import DEVICE, DTYPES, _no_tf32, check, gpu, rel  # noqa: F401 - fixture
from tests.plugins.instella_bae.test_instella_bae import META, _model, data, reference_state  # noqa: F401 - fixtures

pytestmark = gpu
BOUNDS = {torch.float32: {"logits": 1e-4, "bits": 0.99, "decode": 1e-3},
          torch.bfloat16: {"logits": 5e-2, "bits": 0.9, "decode": 5e-2}}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", sorted(META["cases"]))
def test_instella_bae_on_gpu(reference_state, data, dtype, case):  # noqa: F811
    c = META["cases"][case]
    m = copy.deepcopy(_model(reference_state, c["scale"])).to(DEVICE, dtype)
    b, name = BOUNDS[dtype], f"instella_bae small {case}"
    with torch.no_grad():
        logits = m.logits(data[f"{case}.x"].to(DEVICE, dtype)).cpu()
        out = m.decode(data[f"{case}.bits"].to(DEVICE), size=c["size"], clamp=False).cpu()
    check(name, dtype, "logits rel", rel(logits, data[f"{case}.logits"]), b["logits"])
    same = float(((logits > 0).float() == data[f"{case}.bits"]).float().mean())
    check(name, dtype, "bits equal (fraction)", same, b["bits"], at_least=True)
    check(name, dtype, "decode rel", rel(out, data[f"{case}.decoded"]), b["decode"])
