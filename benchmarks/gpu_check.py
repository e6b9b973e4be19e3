"""The Python half of ``benchmarks/gpu_check.sh`` (run that script, not this file, on a GPU machine).

    python benchmarks/gpu_check.py preflight            # exit 2 with the reason when CUDA is unusable
    python benchmarks/gpu_check.py speed [--seconds 60] # SDPA vs xformers decode speed -> gpu_decode_cuda.json
    python benchmarks/gpu_check.py summary --junit J --parity P --log-dir D   # -> gpu_check_cuda.json

* ``speed``: FlexTok's decoder (published ``d12_d12`` architecture, per-key seeded weights, 256 px,
  ragged prefixes) decoding on the GPU with every attention backend that works there (``sdpa``,
  ``xformers`` when installed, ``math`` as the baseline), in float32 and bfloat16; CUDA-synchronised
  wall time, median of ``--reps`` after a warm-up; the largest image difference of each backend to
  ``math`` in the same dtype is recorded beside its speed.
* ``summary``: the CUDA tests' results (pytest's JUnit XML: passed / failed / skipped per test) and
  the parity numbers the GPU parity tests measured (``$ZOO_GPU_PARITY`` JSON lines: model, dtype,
  quantity, value, tolerance), in one record with the machine and the date.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

from _record import add_results_option, start


def preflight() -> int:
    """0 when torch sees a usable CUDA device; otherwise print why and return 2."""
    try:
        import torch
    except ImportError as exc:
        print(f"gpu_check: torch is not importable ({exc}); install zoo first (see docs/install.md)", file=sys.stderr)
        return 2
    if not torch.cuda.is_available():
        build = torch.version.cuda or "a CPU-only build"
        print(f"gpu_check: no CUDA device is available (torch {torch.__version__}, CUDA: {build}). This check needs "
              "one NVIDIA GPU and a CUDA build of torch; nothing was run.", file=sys.stderr)
        return 2
    try:
        torch.ones(1, device="cuda").add_(1)
        torch.cuda.synchronize()
    except RuntimeError as exc:
        print(f"gpu_check: CUDA is visible but unusable: {exc}", file=sys.stderr)
        return 2
    props = torch.cuda.get_device_properties(0)
    print(f"gpu_check: {props.name}, {props.total_memory / 2**30:.0f} GiB, torch {torch.__version__}, CUDA {torch.version.cuda}")
    return 0


def junit_rows(path: Path) -> list[dict]:
    """One row per test case of a JUnit XML file: name, outcome (passed/failed/error/skipped), seconds, message.

    Example:
        >>> import tempfile, os
        >>> xml = ('<testsuites><testsuite><testcase classname="t.a" name="x" time="0.5"/>'
        ...        '<testcase classname="t.a" name="y" time="0.1"><skipped message="no xformers"/></testcase>'
        ...        '</testsuite></testsuites>')
        >>> with tempfile.NamedTemporaryFile("w", suffix=".xml", delete=False) as f:
        ...     _ = f.write(xml)
        >>> [(r["test"], r["outcome"], r["message"]) for r in junit_rows(Path(f.name))]
        [('t.a::x', 'passed', None), ('t.a::y', 'skipped', 'no xformers')]
        >>> os.unlink(f.name)
    """
    rows = []
    for case in ET.parse(path).getroot().iter("testcase"):
        outcome, message = "passed", None
        for tag in ("failure", "error", "skipped"):
            node = case.find(tag)
            if node is not None:
                outcome = {"failure": "failed"}.get(tag, tag)
                message = (node.get("message") or (node.text or "")).strip()[:300] or None
                break
        rows.append({"test": f"{case.get('classname', '')}::{case.get('name', '')}", "outcome": outcome,
                     "seconds": float(case.get("time") or 0.0), "message": message})
    return rows


def parity_rows(path: Path | None) -> list[dict]:
    """The JSON lines the GPU parity tests wrote (missing file: none)."""
    if path is None or not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def summary(args) -> int:
    steps = json.loads(Path(args.steps).read_text()) if args.steps and Path(args.steps).is_file() else []
    run = start("gpu_check", title="GPU check: CUDA tests and parity (fp32, bf16)", kind="gpu", threads=1,
                settings=vars(args), reference=None, results=args.results, device="cuda")
    tests = [row for j in args.junit for row in (junit_rows(Path(j)) if Path(j).is_file() else [])]
    parity = parity_rows(Path(args.parity) if args.parity else None)
    counts = {k: sum(r["outcome"] == k for r in tests) for k in ("passed", "failed", "error", "skipped")}
    rows = [{"check": p.get("model"), "dtype": p.get("dtype"), "quantity": p.get("quantity"), "value": p.get("value"),
             "tolerance": p.get("tolerance"), "ok": p.get("ok")} for p in parity]
    rows += [{"check": r["test"], "outcome": r["outcome"], "seconds": r["seconds"], "message": r["message"]}
             for r in tests if r["outcome"] != "passed"]
    run.write(rows, notes=[(f"CUDA tests: {counts['passed']} passed, {counts['failed']} failed, {counts['error']} errors, "
                           f"{counts['skipped']} skipped (failures and skips listed; passes counted)")],
              extra={"tests": counts, "steps": steps})
    print(json.dumps(counts))
    return 0 if counts["failed"] == counts["error"] == 0 else 1


def speed(args) -> int:
    import torch
    from flextok import build_zoo  # benchmarks/flextok.py, beside this file

    from zoo.nn.attention import available_backends, set_model_backend

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    dev = args.device
    cuda = dev.startswith("cuda")
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    run = start("gpu_decode", title="GPU: FlexTok decode, SDPA vs xformers vs math", kind="gpu", threads=1,
                settings=vars(args), reference=None, results=args.results, device=dev)
    usable = available_backends(dev)
    backends = [b for b in ("math", "sdpa", "xformers") if usable.get(b) == "ok"]
    skipped = [{"model": b, "why": usable.get(b, "unavailable")} for b in ("xformers",) if b not in backends]
    model, _, sd = build_zoo(args.size, 0)
    del sd
    images = torch.rand(args.batch, 3, args.image_size, args.image_size, generator=torch.Generator().manual_seed(1)) * 2 - 1
    rows = []
    deadline = time.perf_counter() + args.seconds
    for dtype in (torch.float32, torch.bfloat16):
        m = model.to(dev, dtype).eval()
        with torch.inference_mode():
            ids = m.encode(images.to(dev)).ids
            keep = [max(1, ids.shape[1] >> (i % 9)) for i in range(args.batch)]
            toks = [ids[i : i + 1, :k] for i, k in enumerate(keep)]
            outs = {}
            for backend in backends:
                set_model_backend(m, backend)

                def decode(m=m, toks=toks):
                    return m.decode(toks, steps=args.steps, generator=torch.Generator(dev).manual_seed(0))

                decode()  # warm-up (kernels, allocator)
                times = []
                for _ in range(args.reps):
                    sync()
                    t0 = time.perf_counter()
                    outs[backend] = decode()
                    sync()
                    times.append(time.perf_counter() - t0)
                med = statistics.median(times)
                rows.append({"model": f"flextok {args.size}", "op": "decode", "dtype": str(dtype).split(".")[-1],
                             "backend": backend, "batch": args.batch, "steps": args.steps, "unit": "img/s",
                             "seconds": med, "img_s": args.batch / med,
                             "max_abs_diff_vs_math": float((outs[backend].float() - outs["math"].float()).abs().max())
                             if "math" in outs else None,
                             "peak_gpu_mib": torch.cuda.max_memory_allocated() / 2**20 if cuda else None})
                print(rows[-1], flush=True)
                if time.perf_counter() > deadline:
                    break
        set_model_backend(m, None)
    base = {(r["dtype"]): r["seconds"] for r in rows if r["backend"] == "sdpa"}
    for r in rows:
        r["speedup_vs_sdpa"] = base[r["dtype"]] / r["seconds"] if r["dtype"] in base else None
    run.write(rows, notes=[(f"{args.image_size}px, batch {args.batch}, {args.steps} Euler steps, ragged prefixes; "
                           "CUDA-synchronised wall time, median of reps; TF32 off")], extra={"skipped": skipped})
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("preflight")
    sp = sub.add_parser("speed")
    sp.add_argument("--size", default="d12_d12")
    sp.add_argument("--image-size", type=int, default=256)
    sp.add_argument("--batch", type=int, default=8)
    sp.add_argument("--steps", type=int, default=25)
    sp.add_argument("--reps", type=int, default=3)
    sp.add_argument("--seconds", type=float, default=120, help="stop adding backends after this long")
    sp.add_argument("--device", default="cuda", help="cuda (the check); cpu only to smoke-test this script")
    add_results_option(sp)
    sm = sub.add_parser("summary")
    sm.add_argument("--junit", nargs="*", default=[])
    sm.add_argument("--parity", default=None)
    sm.add_argument("--steps", default=None, help="JSON list of the shell script's steps (name, exit status, seconds)")
    add_results_option(sm)
    args = ap.parse_args(argv)
    if args.cmd == "preflight":
        return preflight()
    return speed(args) if args.cmd == "speed" else summary(args)


if __name__ == "__main__":
    raise SystemExit(main())
