"""OmniTokenizer parity on the GPU, float32 and bfloat16 (the CPU parity fixtures; ``tests/gpu_parity.py``)."""

from __future__ import annotations

import copy

import pytest
import torch

from tests.gpu_parity import DEVICE, DTYPES, _no_tf32, check, gpu, max_abs, rel  # noqa: F401 - fixture

pytestmark = gpu
BOUNDS = {torch.float32: {"latents": 1e-4, "ids": 1.0, "decode": 1e-4},
          torch.bfloat16: {"latents": 5e-2, "ids": 0.5, "decode": 0.1}}


@pytest.mark.parametrize("dtype", DTYPES)
def test_vq_on_gpu(ot, dtype):
    model = copy.deepcopy(ot.model("vq")).to(DEVICE, dtype)
    d, b, exact = ot.data("vq"), BOUNDS[dtype], dtype == torch.float32
    with torch.no_grad():
        h = model.encode_latents(d["video"].to(DEVICE, dtype))
        ids = model.quantize(h).cpu()
        out = model.decode_latents(model.ids_to_codes(d["video_ids"].to(DEVICE)).to(dtype))
    check("omnitokenizer vq", dtype, "latents max|d|" if exact else "latents rel",
          max_abs(h, d["video_h"]) if exact else rel(h, d["video_h"]), b["latents"])
    check("omnitokenizer vq", dtype, "ids equal away from near-ties (fraction)",
          float((ids == d["video_ids"])[d["video_gap"] >= 1e-5].float().mean()), b["ids"], at_least=True)
    check("omnitokenizer vq", dtype, "decode of reference ids max|d|" if exact else "decode of reference ids rel",
          max_abs(out, d["video_decoded"]) if exact else rel(out, d["video_decoded"]), b["decode"])
