"""One JSON record per benchmark run, under ``benchmarks/results/`` (read by the docs' Benchmarks page).

Every script in ``benchmarks/`` calls :func:`start` before it measures and :meth:`Run.write` after,
so each record carries what is needed to judge its numbers: the machine (CPU model, cores, GPU,
torch), the date, the torch thread count, the load average at the start and at the end (the
machines are shared: a busy neighbour shows here), peak memory of the process, the exact
command and settings, whether a reference implementation was measured beside zoo, and the rows
the script printed.

    run = start("wavtokenizer", threads=1, settings=vars(args), reference=None)
    ...
    run.write(rows, notes=["RTF = CPU seconds / audio seconds"])

``ZOO_BENCH_RESULTS`` (or a script's ``--results DIR``) chooses another folder; ``--results ''``
writes nothing.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import platform
import resource
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
SCHEMA = 1


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``; ``platform.processor()`` elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine(device: str = "cpu") -> dict[str, Any]:
    """The machine a run measured: CPU model, cores, memory, torch, and the GPU when ``device`` is CUDA."""
    import torch

    info: dict[str, Any] = {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "memory_gib": _mem_total_gib(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "gpu": None,
    }
    if str(device).startswith("cuda") and torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        info["gpu"] = {"name": props.name, "memory_gib": round(props.total_memory / 2**30, 1),
                       "cuda": torch.version.cuda, "count": torch.cuda.device_count()}
    return info


def _mem_total_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def load_average() -> list[float] | None:
    """1, 5 and 15-minute load averages (None where the OS has none)."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def peak_rss_mib() -> float:
    """Peak resident memory of this process and its finished children, MiB (Linux: KiB units)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return round(max(own, kids) / 1024, 1)


def clean(value: Any) -> Any:
    """JSON-safe copy: NaN/inf become None, paths and tuples become strings and lists.

    Example:
        >>> clean({"a": float("nan"), "b": (1, 2.5), "c": Path("x")})
        {'a': None, 'b': [1, 2.5], 'c': 'x'}
    """
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if value is None or isinstance(value, (bool, int, str)):
        return value
    return str(value)


@dataclass
class Run:
    """A benchmark run in progress; :meth:`write` saves its record."""

    benchmark: str
    title: str
    kind: str
    device: str
    threads: int
    settings: dict[str, Any]
    reference: str | None
    results_dir: Path | None
    started: str = field(default_factory=lambda: _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
    load_start: list[float] | None = field(default_factory=load_average)

    def record(self, rows: list[dict], notes: list[str] | None = None,
               extra: dict[str, Any] | None = None) -> dict[str, Any]:
        """The JSON record of this run (see the module docstring); ``extra`` adds keys such as
        ``checks`` (parity: ids equal, max |diff|, tolerance) or ``skipped``."""
        return clean({
            "schema": SCHEMA,
            "benchmark": self.benchmark,
            "title": self.title,
            "kind": self.kind,
            "device": self.device,
            "date": self.started,
            "finished": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "machine": machine(self.device),
            "threads": self.threads,
            "load_average": {"start": self.load_start, "end": load_average()},
            "peak_rss_mib": peak_rss_mib(),
            "reference": self.reference,
            "reference_measured": self.reference is not None,
            "command": " ".join(["python", *(_rel(a) for a in sys.argv)]),
            "settings": self.settings,
            "rows": rows,
            "notes": notes or [],
            **(extra or {}),
        })

    def write(self, rows: list[dict], notes: list[str] | None = None,
              extra: dict[str, Any] | None = None) -> Path | None:
        """Write ``<results>/<benchmark>[_<device>].json``; return its path (None when disabled)."""
        if self.results_dir is None:
            return None
        self.results_dir.mkdir(parents=True, exist_ok=True)
        suffix = "" if self.device == "cpu" else "_" + self.device.split(":")[0]
        path = self.results_dir / f"{self.benchmark}{suffix}.json"
        path.write_text(json.dumps(self.record(rows, notes, extra), indent=1) + "\n")
        print(f"wrote {_rel(str(path))}", flush=True)
        return path


def _rel(arg: str) -> str:
    try:
        return str(Path(arg).resolve().relative_to(ROOT)) if os.path.exists(arg) else arg
    except ValueError:
        return arg


def results_dir(option: str | None) -> Path | None:
    """The folder records go to: ``--results`` if given ('' disables), else ``ZOO_BENCH_RESULTS``, else
    ``benchmarks/results``."""
    if option is not None:
        return Path(option) if option else None
    env = os.environ.get("ZOO_BENCH_RESULTS")
    if env is not None:
        return Path(env) if env else None
    return RESULTS


def start(benchmark: str, *, title: str, kind: str, threads: int, settings: dict[str, Any],
          reference: str | Path | None, results: str | None = None, device: str = "cpu") -> Run:
    """Begin a run: note the date and load average now (call it before measuring)."""
    return Run(benchmark=benchmark, title=title, kind=kind, device=str(device), threads=threads,
               settings=clean(settings), reference=None if reference is None else str(reference),
               results_dir=results_dir(results))


def add_results_option(parser) -> None:
    """``--results DIR`` on a benchmark's argument parser."""
    parser.add_argument("--results", default=None,
                        help="folder for the JSON record (default benchmarks/results, or $ZOO_BENCH_RESULTS; '' = none)")
