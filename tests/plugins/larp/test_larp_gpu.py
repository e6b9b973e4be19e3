"""LARP parity on the GPU, float32 and bfloat16 (the CPU parity fixtures; ``tests/gpu_parity.py``)."""

from __future__ import annotations

import copy

import pytest
import torch

from tests.gpu_parity import DEVICE, DTYPES, _no_tf32, check, gpu, max_abs, rel  # noqa: F401 - fixture

pytestmark = gpu
BOUNDS = {torch.float32: {"latents": 1e-4, "ids": 1.0, "decode": 1e-4},
          torch.bfloat16: {"latents": 5e-2, "ids": 0.5, "decode": 0.1}}


@pytest.mark.parametrize("dtype", DTYPES)
def test_latents_ids_decode_and_sampling_on_gpu(lp, dtype):
    model = copy.deepcopy(lp.case_model()).to(DEVICE, dtype)
    data, b, exact = lp.data(), BOUNDS[dtype], dtype == torch.float32
    clips = (data["clips_uint8"].float() / 255).to(DEVICE, dtype)
    with torch.no_grad():
        z = model.encode_latents(clips)
        ids = model.quantize(z).cpu()
        out = model.decode_latents(model.ids_to_latents(data["ids"].to(DEVICE)))
    check("larp", dtype, "latents max|d|" if exact else "latents rel",
          max_abs(z, data["projected_z"]) if exact else rel(z, data["projected_z"]), b["latents"])
    off_tie = data["gap"] >= 1e-5
    check("larp", dtype, "ids equal away from near-ties (fraction)", float((ids == data["ids"])[off_tie].float().mean()),
          b["ids"], at_least=True)
    check("larp", dtype, "decode of reference ids max|d|" if exact else "decode of reference ids rel",
          max_abs(out, data["decoded_ids"]) if exact else rel(out, data["decoded_ids"]), b["decode"])
    g = torch.Generator(DEVICE).manual_seed(0)
    tok = model.encode(clips * 2 - 1, sample=True, generator=g)  # a device generator is accepted
    assert tok.ids.shape == data["ids"].shape and tok.ids.device.type == torch.device(DEVICE).type
