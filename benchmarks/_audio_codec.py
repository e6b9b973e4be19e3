"""Timing and memory helpers the audio-codec benchmarks share (SNAC, SpeechTokenizer, WavTokenizer,
Language-Codec, the transformers codecs).

* :func:`median_cpu` -- CPU seconds (``time.process_time``: robust to other load on a shared
  machine) of each callable, median of ``repeats`` after one warm-up, callables interleaved;
* :func:`peak_mib` -- peak resident memory a callable adds, measured in a forked child (its
  peak resident set, reset at the fork, minus its resident set after returning free heap to the
  system), so runs do not inherit each other's peaks.
"""

from __future__ import annotations

import os
import resource
import statistics
import time
from typing import Callable


def median_cpu(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    times: dict[str, list[float]] = {k: [] for k in fns}
    for f in fns.values():  # warm-up
        f()
    for _ in range(repeats):
        for k, f in fns.items():
            t = time.process_time()
            f()
            times[k].append(time.process_time() - t)
    return {k: statistics.median(v) for k, v in times.items()}


def _rss_kib() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


def _reset_peak() -> None:
    """Reset the peak resident set (VmHWM) to the current one (Linux >= 4.0)."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        pass


def _hwm_kib() -> int | None:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _trim_heap() -> None:
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def peak_mib(fn: Callable[[], object]) -> float | None:
    """Peak extra resident memory (MiB) of ``fn()`` in a forked child; None where fork is missing."""
    if not hasattr(os, "fork"):
        return None
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        os.close(r)
        try:
            _trim_heap()  # free-but-resident heap inherited from the parent would hide new allocations
            _reset_peak()
            base = _rss_kib()
            fn()
            peak = _hwm_kib() or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            os.write(w, str(max(0, peak - base) / 1024).encode())
        finally:
            os._exit(0)
    os.close(w)
    data = os.read(r, 64)
    os.close(r)
    os.waitpid(pid, 0)
    return float(data) if data else None
