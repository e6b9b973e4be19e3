"""What the class-conditional generator benchmarks (MAR, LightningDiT, FlowAR, xAR; VAR's timing)
share: the command line, CPU-second timing, the interleaved reference/zoo loop with medians, an
fp32 GEMM peak measured in the same run, the per-batch row and record writing, and the reference
import preparation (``.cuda()`` a no-op, timm importable).

A script supplies, per batch size, the reference and zoo calls and the row's own fields; this
module times them and writes the record::

    args = parser(__doc__, "root of a checkout (omit: zoo alone)").parse_args()
    run = begin("mar", "MAR generation", args)
    rows = run_batches(run, args, calls, fields, NOTES)

Example:
    >>> cpu, wall, out = timed(lambda: 1 + 1)
    >>> out
    2
    >>> class_labels(3)
    [207, 307, 407]
    >>> speed_row(8, "X", zoo=(4.0, 5.0), ref=(6.0, 5.0))["speedup_cpu"]
    1.5
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable, Optional

sys.path.append(str(Path(__file__).resolve().parent))  # _record, also under `python -P`

from _record import Run, add_results_option, start  # noqa: E402

__all__ = ["begin", "class_labels", "gemm_peak", "interleave", "latent_diff", "matmul_peak", "parser",
           "prepare_reference", "run_batches", "speed_row", "timed"]

Timing = tuple[float, float]  # (CPU seconds, wall seconds)
#: per batch size and labels: (reference call or None, zoo call)
Calls = Callable[[int, list[int]], tuple[Optional[Callable[[], Any]], Callable[[], Any]]]
#: per batch size, zoo (CPU s, wall s), reference output, zoo output: the row's own fields ("model" first)
Fields = Callable[[int, Timing, Any, Any], dict[str, Any]]


def parser(doc: str, ref_help: str, *, reps: int = 2, steps_b8: Optional[int] = None) -> argparse.ArgumentParser:
    """The options every generator benchmark takes: ``--ref``, ``--batches`` (1 8), ``--reps``,
    ``--threads`` (1), ``--results``; ``--steps-b8`` when ``steps_b8`` is given (steps of the
    rows with batch > 1, the same for both columns; 0 = the card's)."""
    ap = argparse.ArgumentParser(description=doc.split("\n")[0])
    ap.add_argument("--ref", type=Path, default=None, help=ref_help)
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--reps", type=int, default=reps)
    ap.add_argument("--threads", type=int, default=1)
    if steps_b8 is not None:
        ap.add_argument("--steps-b8", type=int, default=steps_b8,
                        help=f"sampling steps of the rows with batch > 1, both columns (default {steps_b8}; 0 = the card's)")
    add_results_option(ap)
    return ap


def begin(name: str, title: str, args: argparse.Namespace) -> Run:
    """Set the torch thread count, turn autograd off and open the run's record."""
    import torch

    torch.set_num_threads(args.threads)
    torch.set_grad_enabled(False)
    return start(name, title=title, kind="generator", threads=args.threads,
                 settings={k: str(v) for k, v in vars(args).items()}, reference=str(args.ref) if args.ref else None,
                 results=args.results)


def class_labels(batch: int) -> list[int]:
    """The benchmark's ImageNet labels for a batch: 207, 307, ... (mod 1000)."""
    return [(207 + 100 * i) % 1000 for i in range(batch)]


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


def matmul_peak(n: int = 2048, reps: int = 5) -> float:
    """fp32 GFLOP/s (CPU time) of an ``n x n x n`` GEMM: this CPU's practical peak at the set thread count."""
    return gemm_peak(n, n, n, reps)


def speed_row(batch: int, model: str, zoo: Timing, ref: Optional[Timing]) -> dict[str, Any]:
    """The columns every generator row has: images/s (CPU time) and CPU seconds of both sides,
    the CPU and wall speed-ups (None where no reference ran)."""
    return {"batch": batch, "model": model, "zoo_images_per_s": batch / zoo[0],
            "ref_images_per_s": batch / ref[0] if ref else None, "speedup_cpu": ref[0] / zoo[0] if ref else None,
            "speedup_wall": ref[1] / zoo[1] if ref else None, "zoo_cpu_s": zoo[0], "ref_cpu_s": ref[0] if ref else None}


def latent_diff(ref_out: Any, zoo_latents: Any) -> dict[str, float]:
    """Max |difference| between the reference's token latents ``[B, N, C]`` and zoo's ``Latents``
    (``values`` ``[B, C, N]``), and the reference's max |value| for scale."""
    if ref_out is None:
        return {}
    z = zoo_latents.values.transpose(1, 2).reshape(ref_out.shape)
    return {"latents_max_abs_diff": float((ref_out - z).abs().max()), "latents_abs_max": float(ref_out.abs().max())}


def run_batches(run: Run, args: argparse.Namespace, calls: Calls, fields: Fields, notes: list[str], *,
                reps: Optional[Callable[[int], int]] = None, warm: bool = True) -> list[dict[str, Any]]:
    """For each ``--batches`` size: ``calls(b, labels)`` timed by :func:`interleave` (``reps(b)``
    repetitions, default ``--reps``; a warm-up before the first size when ``warm``), the row
    :func:`speed_row` + ``fields(b, zoo_timing, ref_out, zoo_out)``, printed and written to the
    record after every size (a run cut short keeps what it measured)."""
    rows: list[dict[str, Any]] = []
    for b in args.batches:
        ref_fn, zoo_fn = calls(b, class_labels(b))
        rt, zt, (ra, za) = interleave(ref_fn if args.ref is not None else None, zoo_fn,
                                      reps(b) if reps else args.reps, warm=warm and b == args.batches[0])
        extra = fields(b, zt, ra, za)
        row = {**speed_row(b, extra.pop("model"), zt, rt), **extra, **latent_diff(ra, za)}
        rows.append(row)
        print({k: (float(f"{v:.4g}") if isinstance(v, float) else v) for k, v in row.items()}, flush=True)
        run.write(rows, notes=notes)
    return rows


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
