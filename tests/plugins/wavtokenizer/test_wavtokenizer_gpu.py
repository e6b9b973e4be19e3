"""WavTokenizer parity on the GPU, float32 and bfloat16 (the CPU parity fixtures; ``tests/gpu_parity.py``)."""

from __future__ import annotations

import copy

import pytest
import torch
from zoo_plugins.wavtokenizer.testing import test_signal

from tests.gpu_parity import DEVICE, DTYPES, _no_tf32, check, gpu, rel  # noqa: F401 - fixture

pytestmark = gpu
GAP = 1e-3
BOUNDS = {torch.float32: {"latents": 1e-3, "ids": 1.0, "audio": 1e-3},
          torch.bfloat16: {"latents": 5e-2, "ids": 0.5, "audio": 0.1}}


@pytest.mark.parametrize("dtype", DTYPES)
def test_latents_ids_and_decode_on_gpu(parity, dtype):
    model = copy.deepcopy(parity["model"]).to(DEVICE, dtype)
    ref, meta, b = parity["ref"], parity["meta"], BOUNDS[dtype]
    name = f"wavtokenizer {parity['name']}"
    for case in ("a", "b"):
        info = meta["cases"][case]
        wav = test_signal(info["samples"], seed=info["seed"]).to(DEVICE)
        with torch.inference_mode():
            latents = model.latents(wav)
            ids = model.quantizer.encode(latents).cpu()
            audio = model.decode_ids(ref[f"{case}.ids"].to(DEVICE))
        want = ref[f"{case}.latents"]
        check(name, dtype, f"case {case} latents rel", rel(latents[:, ::8], want), b["latents"])
        off_tie = ref[f"{case}.gap"] > GAP
        check(name, dtype, f"case {case} ids equal away from near-ties (fraction)",
              float((ids == ref[f"{case}.ids"])[off_tie].float().mean()), b["ids"], at_least=True)
        assert torch.isfinite(audio).all()
        check(name, dtype, f"case {case} decode of reference ids rel", rel(audio, ref[f"{case}.audio"]), b["audio"])
