"""VAR parity on the GPU, float32 and bfloat16 (the CPU parity fixtures; ``tests/gpu_parity.py``).

Generation draws its ids from a CPU generator seeded as the reference's ``g_seed`` (VAR samples
where the generator lives), so the GPU run reproduces the CPU stream; a flipped id changes every
later scale, so the bound is on the fraction of equal ids."""

from __future__ import annotations

import copy

import pytest
import torch

from tests.gpu_parity import DEVICE, DTYPES, _no_tf32, check, gpu, rel  # noqa: F401 - fixture
from tests.plugins.var.test_var import DATA, SMALL, small_vae, small_var

pytestmark = gpu
LOGITS = {torch.float32: 1e-5, torch.bfloat16: 5e-2}  # relative to max|ref|
IMAGES = {torch.float32: 1e-3, torch.bfloat16: 2e-1}  # absolute, images in [-1, 1]
IDS = {torch.float32: 0.95, torch.bfloat16: 0.5}  # fraction of equal ids, at least


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", sorted(SMALL["var"]["cases"]))
def test_teacher_forced_logits_on_gpu(case, dtype):
    model = copy.deepcopy(small_var(case)).to(DEVICE, dtype)
    with torch.no_grad():
        got = model(DATA[f"var.{case}.labels"].to(DEVICE), DATA[f"var.{case}.teacher"].to(DEVICE, dtype))
    check(f"var small {case}", dtype, "logits rel", rel(got, DATA[f"var.{case}.logits"]), LOGITS[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
def test_vqvae_decode_on_gpu(dtype):
    vae = copy.deepcopy(small_vae()).to(DEVICE, dtype)
    got = vae.decode(DATA["vae_a.ids"].to(DEVICE))
    check("var_vqvae small", dtype, "decode max abs", float((got.float().cpu() - DATA["vae_a.decoded"]).abs().max()), IMAGES[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", sorted(SMALL["generation"]))
def test_generation_on_gpu(case, dtype):
    g = SMALL["generation"][case]
    model = copy.deepcopy(small_var(g["model"])).to(DEVICE, dtype)
    vae = copy.deepcopy(small_vae()).to(DEVICE, dtype)
    out = model.generate(g["labels"], guidance_scale=1.0 + g["cfg"], top_k=g["top_k"], top_p=g["top_p"], more_smooth=g["more_smooth"],
                         generator=torch.Generator().manual_seed(g["seed"]), tokenizer=vae)
    equal = float((out.tokens.ids.cpu() == DATA[f"gen.{case}.ids"]).float().mean())
    check(f"var small {case}", dtype, "ids equal (fraction)", equal, IDS[dtype], at_least=True)
