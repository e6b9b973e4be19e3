"""Helpers for the GPU parity tests (``tests/plugins/*/test_*_gpu.py``, marked ``gpu``).

The GPU tests rerun the committed parity fixtures with the model on the GPU, in float32 (the CPU
tolerances, loosened about 10x for kernel order; TF32 off) and in bfloat16 (opt-in and inexact:
relative bounds, ids mostly equal). :func:`check` records every measured difference as a JSON
line in ``$ZOO_GPU_PARITY`` (``benchmarks/gpu_check.sh`` turns them into its record), then asserts
its bound.

``ZOO_GPU_TEST_DEVICE=cpu`` runs the same tests on the CPU (to check the tests themselves on a
machine without a GPU); the default is ``cuda``, skipped where there is none.
"""

from __future__ import annotations

import json
import os

import pytest
import torch

DEVICE = os.environ.get("ZOO_GPU_TEST_DEVICE", "cuda")
DTYPES = [pytest.param(torch.float32, id="fp32"), pytest.param(torch.bfloat16, id="bf16")]
gpu = [pytest.mark.gpu, pytest.mark.skipif(DEVICE.startswith("cuda") and not torch.cuda.is_available(), reason="needs CUDA")]


@pytest.fixture(autouse=True)
def _no_tf32():
    """Full float32 matmuls on Ampere and newer (TF32 would add ~1e-3 relative error)."""
    old = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = old


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def max_abs(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.detach().float().cpu() - b.detach().float().cpu()).abs().max())


def rel(a: torch.Tensor, ref: torch.Tensor) -> float:
    """max |a - ref| / max |ref|."""
    return max_abs(a, ref) / max(float(ref.detach().float().abs().max()), 1e-12)


def check(model: str, dtype: torch.dtype, quantity: str, value: float, tolerance: float, *, at_least: bool = False) -> None:
    """Record ``value`` (and its bound) for the GPU report, then assert it (``at_least``: value >= bound)."""
    ok = value >= tolerance if at_least else value <= tolerance
    path = os.environ.get("ZOO_GPU_PARITY")
    if path:
        with open(path, "a") as f:
            f.write(json.dumps({"model": model, "dtype": dtype_name(dtype), "device": DEVICE, "quantity": quantity,
                                "value": value, "tolerance": tolerance, "at_least": at_least, "ok": ok}) + "\n")
    assert ok, f"{model} {dtype_name(dtype)} on {DEVICE}: {quantity} = {value:.3g}, bound {'>=' if at_least else '<='} {tolerance:.3g}"
