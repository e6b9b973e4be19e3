"""Timing and memory helpers the reference-vs-zoo image tokenizer benchmarks share (GigaTok, WeTok).

* :func:`stage_rows` -- :func:`stage_row` for each stage, with the memory children's peaks,
  each row printed as a JSON line;
* :func:`stage_row` -- one stage (encode or decode) at one batch size: a warm-up round, then
  ``repeat`` rounds with reference and zoo interleaved (the order alternating per round), the
  median CPU seconds (``time.process_time``) and wall seconds of each, images per CPU second,
  the speed-up and the agreement ``check`` of the last outputs;
* :func:`reset_peak` / :func:`status_mib` -- the activation peak inside a memory child: reset
  the peak resident set (``VmHWM``, Linux ``clear_refs``), read it after the call;
* :func:`memory_child` -- run the benchmark script itself as such a child (``--child WHICH
  STAGE BATCH`` + ``extra``) and read the JSON line it prints (``peak_above_build_mib``).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable


def status_mib(field: str) -> float:
    """A ``/proc/self/status`` memory field (``VmRSS``, ``VmHWM``) in MiB; NaN where missing."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def reset_peak() -> bool:
    """Reset this process's peak RSS (VmHWM) to its current RSS (Linux ``clear_refs`` 5)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def memory_child(script: str, which: str, stage: str, batch: int, extra: list[str],
                 env: dict[str, str] | None = None) -> float | None:
    """The ``peak_above_build_mib`` a fresh ``script --child which stage batch *extra`` prints (``env`` added
    to this process's environment)."""
    cmd = [sys.executable, script, "--child", which, stage, str(batch), *extra]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **(env or {})})
    try:
        return json.loads(proc.stdout.strip().splitlines()[-1])["peak_above_build_mib"]
    except (IndexError, ValueError, KeyError):
        print(f"memory child {which}/{stage}/{batch} failed: {proc.stderr[-500:]}", flush=True)
        return None


def timed(fn: Callable[[], Any]) -> tuple[Any, float, float]:
    """``(fn(), CPU seconds, wall seconds)``."""
    c0, w0 = time.process_time(), time.perf_counter()
    out = fn()
    return out, time.process_time() - c0, time.perf_counter() - w0


def stage_row(row: dict[str, Any], batch: int, ref_fn: Callable[[], Any] | None, zoo_fn: Callable[[], Any],
              check: Callable[[Any, Any], str], repeat: int) -> dict[str, Any]:
    """``row`` completed with the timings of one stage (reference skipped when ``ref_fn`` is None)."""
    import torch

    times: dict[str, list[tuple[float, float]]] = {"ref": [], "zoo": []}
    outs: dict[str, Any] = {}
    with torch.no_grad():
        for i in range(repeat + 1):  # the first round is the warm-up
            order = [("ref", ref_fn), ("zoo", zoo_fn)] if i % 2 == 0 else [("zoo", zoo_fn), ("ref", ref_fn)]
            for who, fn in order:
                if fn is None:
                    continue
                outs[who], c, w = timed(fn)
                if i:
                    times[who].append((c, w))
    med = statistics.median
    row.update(zoo_cpu_s=med(t[0] for t in times["zoo"]), zoo_wall_s=med(t[1] for t in times["zoo"]))
    row["zoo_img_per_cpu_s"] = batch / row["zoo_cpu_s"]
    if ref_fn is not None:
        row.update(ref_cpu_s=med(t[0] for t in times["ref"]), ref_wall_s=med(t[1] for t in times["ref"]))
        row["ref_img_per_cpu_s"] = batch / row["ref_cpu_s"]
        row["speedup"] = row["ref_cpu_s"] / row["zoo_cpu_s"]
        row["check"] = check(outs["ref"], outs["zoo"])
    return row


def stage_rows(stages: dict[str, tuple[Callable[[], Any], Callable[[], Any], Callable[[Any, Any], str]]],
               head: Callable[[str], dict[str, Any]], batch: int, repeat: int, has_ref: bool,
               memory: Callable[[str, str], float | None] | None) -> list[dict[str, Any]]:
    """One row per ``stage: (ref_fn, zoo_fn, check)``, starting from ``head(stage)``; ``memory(who,
    stage)`` (``who`` is ``"zoo"`` or ``"ref"``) adds ``zoo_peak_mib`` / ``ref_peak_mib`` unless None."""
    rows = []
    for stage, (ref_fn, zoo_fn, check) in stages.items():
        row = stage_row(head(stage), batch, ref_fn if has_ref else None, zoo_fn, check, repeat)
        if memory is not None:
            row["zoo_peak_mib"] = memory("zoo", stage)
            if has_ref:
                row["ref_peak_mib"] = memory("ref", stage)
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows
