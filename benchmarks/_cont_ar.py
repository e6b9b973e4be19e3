"""Shared pieces of the continuous-token AR benchmarks (FlowAR, xAR): CPU-second timing, an
interleaved ref/zoo loop with medians, an fp32 GEMM peak measured in the same run, and the
reference import preparation (``.cuda()`` as a no-op, timm importable).

Example:
    >>> cpu, wall, out = timed(lambda: 1 + 1)
    >>> out
    2
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable, Optional

__all__ = ["gemm_peak", "interleave", "prepare_reference", "timed"]


def timed(fn: Callable[[], Any]) -> tuple[float, float, Any]:
    """``(CPU seconds of this process, wall seconds, result)``."""
    c0, t0 = time.process_time(), time.perf_counter()
    out = fn()
    return time.process_time() - c0, time.perf_counter() - t0, out


def interleave(ref_fn: Optional[Callable[[], Any]], zoo_fn: Callable[[], Any], reps: int, warm: bool = True):
    """ref, zoo, ref, zoo... (after one warm-up each unless ``warm=False``); medians of
    ``(cpu, wall)`` per side and the last outputs. ``ref_fn=None`` times zoo alone."""
    if warm:
        if ref_fn is not None:
            ref_fn()
        zoo_fn()
    rc, rw, zc, zw, outs = [], [], [], [], (None, None)
    for _ in range(reps):
        ra = None
        if ref_fn is not None:
            c, w, ra = timed(ref_fn)
            rc.append(c), rw.append(w)
        c, w, za = timed(zoo_fn)
        zc.append(c), zw.append(w)
        outs = (ra, za)
    med = statistics.median
    return ((med(rc), med(rw)) if rc else None), (med(zc), med(zw)), outs


def gemm_peak(m: int, k: int, n: int, reps: int = 10) -> float:
    """fp32 GEMM GFLOP/s (CPU time) at ``[m, k] x [k, n]``, measured now."""
    import torch

    a, b = torch.randn(m, k), torch.randn(n, k)
    torch.nn.functional.linear(a, b)
    c0 = time.process_time()
    for _ in range(reps):
        torch.nn.functional.linear(a, b)
    return 2 * m * k * n * reps / (time.process_time() - c0) / 1e9


def prepare_reference(root: Path) -> None:
    """Make a FlowAR/xAR checkout importable on a CPU machine: timm (via zoo.compat), ``.cuda()``
    a no-op, a stub for xAR's unused top-level ``flash_attn`` import, the checkout on ``sys.path``."""
    import types

    import torch

    from zoo.compat.torchvision import ensure_torchvision

    ensure_torchvision()
    torch.Tensor.cuda = lambda self, *a, **k: self
    sys.modules.setdefault("flash_attn", types.SimpleNamespace(flash_attn_func=None))
    sys.path.insert(0, str(Path(root).resolve()))
