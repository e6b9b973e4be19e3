"""Point-BERT dVAE parity on the GPU, float32 and bfloat16; zoo's FPS / kNN on the GPU equal the CPU's."""

from __future__ import annotations

import copy

import pytest
import torch

from tests.gpu_parity import DEVICE, DTYPES, _no_tf32, check, gpu, max_abs, rel  # noqa: F401 - fixture

pytestmark = gpu
BOUNDS = {torch.float32: {"logits": 1e-4, "ids": 1.0, "decode": 1e-4},
          torch.bfloat16: {"logits": 5e-2, "ids": 0.5, "decode": 0.1}}


def test_fps_and_knn_on_gpu_equal_the_cpu():
    from zoo.media.points import farthest_point_sample, knn

    x = torch.randn(4, 2048, 3, generator=torch.Generator().manual_seed(0))
    x = x / x.norm(dim=-1).amax()
    fps = farthest_point_sample(x.to(DEVICE), 64).cpu()
    agree = float((fps == farthest_point_sample(x, 64)).float().mean())
    check("zoo.media.points", torch.float32, "FPS indices equal to the CPU (fraction)", agree, 1.0, at_least=True)
    _, idx = knn(x[:, :64].to(DEVICE), x.to(DEVICE), 16)
    _, want = knn(x[:, :64], x, 16)
    check("zoo.media.points", torch.float32, "kNN indices equal to the CPU (fraction)",
          float((idx.cpu() == want).float().mean()), 0.999, at_least=True)


@pytest.mark.parametrize("dtype", DTYPES)
def test_logits_ids_and_decode_on_gpu(pb, dtype):
    model = copy.deepcopy(pb.case_model()).to(DEVICE, dtype)
    data, b, exact = pb.data(), BOUNDS[dtype], dtype == torch.float32
    with torch.no_grad():
        patches, centers = model.group(data["clouds"].to(DEVICE))  # grouping runs on float32 coordinates
        logits = model.logits(patches.to(dtype), centers.to(dtype))
        _, fine = model.decode_codes(model.codebook[data["ids"].to(DEVICE)], data["centers"].to(DEVICE, dtype))
    if exact:
        check("point_bert", dtype, "centres max|d|", max_abs(centers, data["centers"]), 0.0)
    check("point_bert", dtype, "logits max|d|" if exact else "logits rel",
          max_abs(logits, data["logits"]) if exact else rel(logits, data["logits"]), b["logits"])
    off_tie = data["gap"] >= 1e-4
    check("point_bert", dtype, "ids equal away from near-ties (fraction)",
          float((logits.argmax(-1).cpu() == data["ids"])[off_tie].float().mean()), b["ids"], at_least=True)
    check("point_bert", dtype, "decode of reference ids max|d|" if exact else "decode of reference ids rel",
          max_abs(fine, data["fine"]) if exact else rel(fine, data["fine"]), b["decode"])
