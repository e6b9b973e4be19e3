"""Shared command line and timing loop of the image tokenizer benchmarks that time encode + decode
together (``llamagen_vq.py``, ``kl_vae.py``, ``tokenflow.py``, ``digit.py``, ``hita.py``, ``vitok_v2.py``,
``mingtok.py``).

For each batch size: a warm-up, then ``repeats`` rounds in which every implementation encodes and
decodes the same inputs in turn (interleaved, so a busy neighbour hits both alike); the median
CPU seconds of this process (``time.process_time``) per stage is reported, with the median wall
time beside it. Peak memory is measured per implementation and batch in a fresh child process
(one at a time; the parent waits): the child's peak resident memory during one encode + decode
(the kernel's high-water mark, reset after the model is built) minus its resident memory then.
Children run with ``MALLOC_MMAP_THRESHOLD_=131072``: glibc then maps every large block and returns it
on free, so the peak tracks live tensors, not the heap glibc keeps after frees (which depends on
allocation order more than on what an implementation needs).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any


def codec_parser(description: str, ref_help: str) -> argparse.ArgumentParser:
    """The options these benchmarks share (``--ref``, ``--batches``, ``--repeats``, ``--threads``,
    ``--no-memory``, ``--results`` and the memory child's); a script adds its own after them."""
    from _record import add_results_option

    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--ref", default=None, help=f"{ref_help}; omit to time zoo only")
    ap.add_argument("--batches", default="1,8")
    ap.add_argument("--batch", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--no-memory", action="store_true", help="skip the per-implementation memory children")
    ap.add_argument("--memory-child", default=None, help=argparse.SUPPRESS)
    add_results_option(ap)
    return ap


def rss_mib() -> float:
    """Current resident memory of this process, MiB (Linux /proc)."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def peak_mib() -> float:
    """Peak resident memory since the last :func:`reset_peak` (Linux ``VmHWM``), MiB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def reset_peak() -> None:
    """Reset the kernel's peak-RSS mark of this process (``/proc/self/clear_refs`` = 5)."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def child_memory(script: str, impl: str, batch: int, extra: list[str]) -> float | None:
    """Run ``script --memory-child IMPL --batch B`` in a fresh process; its printed JSON says how many
    MiB encode + decode added to the peak over the built model."""
    cmd = [sys.executable, script, "--memory-child", impl, "--batch", str(batch), *extra]
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "131072"}  # large blocks mmapped: freed memory leaves RSS
    out = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
    for line in out.stdout.splitlines():
        if line.startswith("{"):
            return float(json.loads(line)["activation_peak_mib"])
    print(f"[memory child {impl} b{batch} failed: {out.stderr[-500:]}]")
    return None


def measure_child(encode: Callable[[Any], Any], decode: Callable[[Any], Any], x: Any) -> None:
    """The body of a memory child: one encode + decode, print the peak over the starting RSS."""
    import torch

    import ctypes
    import gc

    gc.collect()
    try:  # hand freed heap pages (the build's temporary state dicts) back to the OS first
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:
        pass
    reset_peak()
    base = rss_mib()
    with torch.inference_mode():
        decode(encode(x))
    print(json.dumps({"activation_peak_mib": round(peak_mib() - base, 1), "base_rss_mib": round(base, 1)}))


def time_impls(impls: dict[str, tuple[Callable, Callable]], x: Any, repeats: int,
               decode_input: Callable[[str, Any], Any]) -> tuple[dict, dict, dict]:
    """Interleaved timing; ``decode_input(impl, encoded)`` picks what each decoder gets (the
    reference's encoding, so both decode the same tokens). Returns (cpu, wall, outputs)."""
    import torch

    cpu: dict[tuple[str, str], list[float]] = {(n, s): [] for n in impls for s in ("encode", "decode")}
    wall: dict[tuple[str, str], list[float]] = {k: [] for k in cpu}
    outs: dict[tuple[str, str], Any] = {}
    with torch.inference_mode():
        encoded = {n: enc(x) for n, (enc, _) in impls.items()}  # warm-up encode
        for n, (_, dec) in impls.items():
            dec(decode_input(n, encoded))  # warm-up decode
        for _ in range(repeats):
            for n, (enc, dec) in impls.items():
                w0, t0 = time.perf_counter(), time.process_time()
                outs[(n, "encode")] = enc(x)
                cpu[(n, "encode")].append(time.process_time() - t0)
                wall[(n, "encode")].append(time.perf_counter() - w0)
                inp = decode_input(n, encoded)
                w0, t0 = time.perf_counter(), time.process_time()
                outs[(n, "decode")] = dec(inp)
                cpu[(n, "decode")].append(time.process_time() - t0)
                wall[(n, "decode")].append(time.perf_counter() - w0)
    med = {k: statistics.median(v) for k, v in cpu.items()}
    wmed = {k: statistics.median(v) for k, v in wall.items()}
    return med, wmed, outs
