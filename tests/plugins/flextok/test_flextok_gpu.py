"""FlexTok parity on the GPU, float32 and bfloat16 (the CPU parity fixtures; ``tests/gpu_parity.py``)."""

from __future__ import annotations

import copy

import pytest
import torch
from zoo_plugins.flextok.testing import sample_images

from tests.gpu_parity import DEVICE, DTYPES, _no_tf32, check, gpu, max_abs, rel  # noqa: F401 - fixture
from tests.plugins.flextok.test_parity import case  # noqa: F401 - the parity fixture (per variant)

pytestmark = gpu
# float32: the CPU test's bounds x10; bfloat16: relative bounds, most ids equal
BOUNDS = {torch.float32: {"latents": 1e-4, "ids": 1.0, "decode": 1e-3},
          torch.bfloat16: {"latents": 5e-2, "ids": 0.5, "decode": 0.1}}


@pytest.fixture
def on_device(case, dtype):  # noqa: F811
    variant, info, fx, model = case
    return variant, info, fx, copy.deepcopy(model).to(DEVICE, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_encode_on_gpu(on_device, dtype):
    variant, _info, fx, model = on_device
    b, name = BOUNDS[dtype], f"flextok tiny_{variant}"
    with torch.inference_mode():
        lat = model.encode_latents(sample_images(3, 64, seed=1))
        z, ids = model.tokenize_latents(fx["vae_latents"].to(DEVICE))
    exact = dtype == torch.float32
    check(name, dtype, "VAE latents max|d|" if exact else "VAE latents rel", max_abs(lat, fx["vae_latents"]) if exact
          else rel(lat, fx["vae_latents"]), b["latents"])
    check(name, dtype, "pre-quant max|d|" if exact else "pre-quant rel", max_abs(z, fx["prequant"]) if exact
          else rel(z, fx["prequant"]), b["latents"])
    check(name, dtype, "ids equal (fraction)", float((ids.cpu() == fx["ids"]).float().mean()), b["ids"], at_least=True)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cfg", ["nocfg", "apg"])
def test_decode_reference_ids_on_gpu(on_device, dtype, cfg):
    variant, info, fx, model = on_device
    c, want = info["cases"][cfg], fx[f"latents_{cfg}"]
    tokens = [fx["ids"][i : i + 1, :k] for i, k in enumerate(info["keeps"])]
    g = torch.Generator().manual_seed(info["seed"])  # the reference's CPU draw, moved to the device
    noise = torch.cat([torch.randn((1, *want.shape[1:]), generator=g) for _ in range(want.shape[0])])
    with torch.inference_mode():
        out = model.decode_latents(tokens, steps=info["steps"], guidance_scale=c["guidance_scale"],
                                   norm_guidance=c["norm_guidance"], noise=noise, latent_size=info["latent_size"])
    value = max_abs(out, want) if dtype == torch.float32 else rel(out, want)
    check(f"flextok tiny_{variant} decode {cfg}", dtype, "latents max|d|" if dtype == torch.float32 else "latents rel",
          value, BOUNDS[dtype]["decode"])
