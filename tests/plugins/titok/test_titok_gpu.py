"""TiTok / One-D-Piece parity on the GPU, float32 and bfloat16 (the CPU parity fixtures; ``tests/gpu_parity.py``)."""

from __future__ import annotations

import copy

import pytest
import torch

from tests.gpu_parity import DEVICE, DTYPES, _no_tf32, check, gpu, max_abs, rel  # noqa: F401 - fixture

pytestmark = gpu
BOUNDS = {torch.float32: {"latents": 1e-4, "ids": 1.0, "decode": 1e-3},
          torch.bfloat16: {"latents": 5e-2, "ids": 0.5, "decode": 0.1}}
NEAR_TIE = 1e-5


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["legacy_vq", "vq8k", "one_d_piece"])
def test_latents_ids_and_decode_on_gpu(tk, name, dtype):
    model = copy.deepcopy(tk.case_model(name)).to(DEVICE, dtype)
    data, b, exact = tk.case_data(name), BOUNDS[dtype], dtype == torch.float32
    images = (data["images_uint8"].float() / 255).to(DEVICE, dtype)
    with torch.no_grad():
        z = model.encode_latents(images)
        ids = model.quantize_latents(z).cpu()
        out = model.decode_latents(model.ids_to_latents(data["ids"].to(DEVICE)))
    check(f"titok {name}", dtype, "latents max|d|" if exact else "latents rel",
          max_abs(z, data["latents"]) if exact else rel(z, data["latents"]), b["latents"])
    off_tie = data["gap"] >= NEAR_TIE
    check(f"titok {name}", dtype, "ids equal away from near-ties (fraction)",
          float((ids == data["ids"])[off_tie].float().mean()), b["ids"], at_least=True)
    if "decoded" in data:
        check(f"titok {name}", dtype, "decode of reference ids max|d|" if exact else "decode of reference ids rel",
              max_abs(out, data["decoded"]) if exact else rel(out, data["decoded"]), b["decode"])


@pytest.mark.parametrize("dtype", DTYPES)
def test_vae_on_gpu(tk, dtype):
    model = copy.deepcopy(tk.case_model("vae")).to(DEVICE, dtype)
    data, b, exact = tk.case_data("vae"), BOUNDS[dtype], dtype == torch.float32
    with torch.no_grad():
        mean = model.quantize_latents(model.encode_latents((data["images_uint8"].float() / 255).to(DEVICE, dtype)))
        out = model.decode_latents(data["mean"].to(DEVICE, dtype))
    check("titok vae", dtype, "posterior mean max|d|" if exact else "posterior mean rel",
          max_abs(mean, data["mean"]) if exact else rel(mean, data["mean"]), b["latents"])
    check("titok vae", dtype, "decode max|d|" if exact else "decode rel",
          max_abs(out, data["decoded"]) if exact else rel(out, data["decoded"]), b["decode"])
