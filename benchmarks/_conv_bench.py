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
from dataclasses import dataclass, field
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
    ap.add_argument("--stages", default="encode,decode",
                    help="stages to time (a long run can be split: encode, then decode; decode still encodes once, untimed)")
    ap.add_argument("--no-warmup", action="store_true",
                    help="skip the warm-up round (for large batches whose one round fills a time slot)")
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


class _Encodings(dict):
    """Each implementation's encoding of the inputs, made (untimed) the first time a decoder needs it."""

    def __init__(self, impls: dict[str, tuple[Callable, Callable]], x: Any):
        super().__init__()
        self.impls, self.x = impls, x

    def __missing__(self, name: str) -> Any:
        self[name] = value = self.impls[name][0](self.x)
        return value

    def __contains__(self, name: object) -> bool:  # "reference" in encoded: it can be made
        return name in self.impls


def time_impls(impls: dict[str, tuple[Callable, Callable]], x: Any, repeats: int,
               decode_input: Callable[[str, Any], Any], *, warmup: bool = True,
               stages: tuple[str, ...] = ("encode", "decode")) -> tuple[dict, dict, dict]:
    """Interleaved timing; ``decode_input(impl, encoded)`` picks what each decoder gets (the
    reference's encoding, so both decode the same tokens). Returns (cpu, wall, outputs) for the
    ``stages`` timed; without ``warmup`` the first round is timed too (encodings a decoder needs
    are then made once, untimed). Each round starts with the next implementation in turn, so every
    implementation's encode follows each implementation's decode equally often: what ran just
    before (caches, allocator state) moved a fixed order's ratio by 3-4% (MedITok encode, 2 Dec)."""
    import torch

    cpu: dict[tuple[str, str], list[float]] = {(n, s): [] for n in impls for s in stages}
    wall: dict[tuple[str, str], list[float]] = {k: [] for k in cpu}
    outs: dict[tuple[str, str], Any] = {}
    with torch.inference_mode():
        encoded = _Encodings(impls, x)
        if warmup:
            for n in impls:
                _ = encoded[n]  # warm-up encode
            if "decode" in stages:
                for n, (_, dec) in impls.items():
                    dec(decode_input(n, encoded))  # warm-up decode
        order = list(impls.items())
        for r in range(repeats):
            for n, (enc, dec) in order[r % len(order):] + order[: r % len(order)]:
                if "encode" in stages:
                    w0, t0 = time.perf_counter(), time.process_time()
                    outs[(n, "encode")] = enc(x)
                    cpu[(n, "encode")].append(time.process_time() - t0)
                    wall[(n, "encode")].append(time.perf_counter() - w0)
                if "decode" in stages:
                    inp = decode_input(n, encoded)
                    w0, t0 = time.perf_counter(), time.process_time()
                    outs[(n, "decode")] = dec(inp)
                    cpu[(n, "decode")].append(time.process_time() - t0)
                    wall[(n, "decode")].append(time.perf_counter() - w0)
    med = {k: statistics.median(v) for k, v in cpu.items()}
    wmed = {k: statistics.median(v) for k, v in wall.items()}
    return med, wmed, outs


def stages_option(args: argparse.Namespace, known: tuple[str, ...] = ("encode", "decode")) -> tuple[str, ...]:
    """The ``--stages`` asked for, in ``known`` order; an unknown stage is an error naming the choices."""
    asked = [s.strip() for s in str(getattr(args, "stages", ",".join(known))).split(",") if s.strip()]
    bad = sorted(set(asked) - set(known))
    if bad or not asked:
        raise SystemExit(f"--stages takes a comma list of {', '.join(known)}; got {getattr(args, 'stages', '')!r}")
    return tuple(s for s in known if s in asked)


def random_images(batch: int, size: int):
    """``[batch, 3, size, size]`` uniform noise in [-1, 1] (seed 0): the same inputs for every implementation."""
    import torch

    return torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(0)) * 2 - 1


def smooth_images(batch: int, size: int):
    """Smooth random images in [-1, 1] (seed 0): 16x16 noise, bicubic-upsampled to ``size`` and clamped;
    for tokenizers whose argmin ties on pure noise would make id agreement meaningless."""
    import torch

    low = torch.rand(batch, 3, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1
    return torch.nn.functional.interpolate(low, size=(size, size), mode="bicubic").clamp(-1, 1)


# ------------------------------------------------------------------------------------ one run


@dataclass
class CodecBench:
    """What one script's run reports: record name and title, the printed header (model, input size),
    the rows' ``model``, the script's own options for memory children, and how outputs compare.

    ``compared(impl, stage, output)`` turns an implementation's output into the tensor compared with
    the reference's (default: the output itself, or its ``.values`` / ``.ids``); integer tensors
    compare as the fraction of equal ids, float ones as the largest absolute difference.
    ``decode_input(impl, encoded)`` picks what each decoder gets (default: the reference's encoding,
    zoo's own when the reference is absent). With ``--merge``, committed rows whose ``merge_key``
    differs from every new row's are kept."""

    name: str
    title: str
    header: str
    model: str
    child_args: list[str]
    notes: list[str]
    stages: tuple[str, ...] = ("encode", "decode")
    compared: Callable[[str, str, Any], Any] | None = None
    decode_input: Callable[[str, dict], Any] | None = None
    row_extra: dict = field(default_factory=dict)
    merge_key: Callable[[dict], Any] | None = None


def _as_tensor(output: Any) -> Any:
    for attr in ("values", "ids"):
        value = getattr(output, attr, None)
        if value is not None and not callable(value):
            return value
    return output


def agreement(mine: Any, theirs: Any) -> tuple[str, float, str]:
    """(row key, value, printed note) comparing two outputs: equal-id fraction for integer tensors,
    largest absolute difference otherwise."""
    if not mine.dtype.is_floating_point and not theirs.dtype.is_floating_point:
        value = float((mine == theirs).float().mean())
        return "ids_equal_fraction", value, f"ids equal {value * 100:.2f}%"
    value = float((mine.float() - theirs.float()).abs().max())
    return "max_abs_diff_vs_ref", value, f"max|diff| {value:.2e}"


def run_codec_benchmark(args: argparse.Namespace, *, script: str,
                        build: Callable[[bool, bool], tuple[Any, Any]],
                        impls: Callable[[Any, Any], dict[str, tuple[Callable, Callable]]],
                        inputs: Callable[[int], Any], bench: Callable[[Any, Any], CodecBench]) -> int:
    """The whole run of one script: in a memory child (``--memory-child``), one measured encode +
    decode; otherwise, per batch size, interleaved timing, a fresh memory child per implementation,
    a printed table and a JSON record. ``build(with_ref, with_zoo) -> (zoo model, reference)``;
    ``impls(zoo, reference) -> {name: (encode, decode)}``; ``bench(zoo, reference)`` says what to
    report (:class:`CodecBench`)."""
    import torch

    from _record import results_dir, start

    torch.set_num_threads(args.threads)
    if args.memory_child:
        ours, ref = build(args.memory_child == "reference", args.memory_child == "zoo")
        encode, decode = impls(ours, ref)[args.memory_child]
        measure_child(encode, decode, inputs(args.batch))
        return 0

    ours, ref = build(True, True)
    table, spec = impls(ours, ref), bench(ours, ref)
    has_ref = "reference" in table
    run = start(spec.name, title=spec.title, kind="tokenizer", threads=args.threads, settings=vars(args),
                reference=args.ref if has_ref else None, results=args.results)
    base = "reference" if has_ref else "zoo"
    decode_input = spec.decode_input or (lambda impl, encoded: encoded[base])
    compared = spec.compared or (lambda impl, stage, output: _as_tensor(output))
    print(f"{spec.header}, fp32, {args.threads} thread(s), torch {torch.__version__}, "
          f"median of {args.repeats} (CPU seconds)")
    print(f"{'stage':7} {'batch':>5} {'impl':10} {'cpu-s':>8} {'wall-s':>8} {'img/s':>7} {'speed-up':>8} "
          f"{'peak MiB':>9} {'agreement':>24}")
    rows = []
    for b in (int(v) for v in args.batches.split(",")):
        timed = tuple(s for s in stages_option(args) if s in spec.stages)
        cpu, wall, outs = time_impls(table, inputs(b), args.repeats, decode_input,
                                     warmup=not getattr(args, "no_warmup", False), stages=timed)
        child_args = spec.child_args + (["--ref", args.ref] if args.ref else [])
        mem = {n: None if args.no_memory else child_memory(script, n, b, child_args) for n in table}
        for stage in timed:
            for n in table:
                t, rt = cpu[(n, stage)], cpu.get(("reference", stage))
                key, agree, note = "max_abs_diff_vs_ref", None, "-"
                if has_ref:
                    key, agree, note = agreement(compared(n, stage, outs[(n, stage)]),
                                                 compared("reference", stage, outs[("reference", stage)]))
                m = mem.get(n)
                print(f"{stage:7} {b:5d} {n:10} {t:8.2f} {wall[(n, stage)]:8.2f} {b / t:7.3f} "
                      f"{(f'{rt / t:7.2f}x' if rt else '       -')} {(f'{m:9.0f}' if m is not None else '        -')} "
                      f"{note:>24}")
                if n == "zoo":
                    rows.append({"model": spec.model, "op": stage, "batch": b, **spec.row_extra, "unit": "img/s",
                                 "zoo_s": t, "ref_s": rt, "zoo_per_s": b / t, "ref_per_s": b / rt if rt else None,
                                 "speedup": rt / t if rt else None, "zoo_wall_s": wall[(n, stage)],
                                 "zoo_peak_mib": mem.get("zoo"), "ref_peak_mib": mem.get("reference"),
                                 key: agree, "check": note if has_ref else None, "measured": run.started,
                                 **({"warmup": False} if getattr(args, "no_warmup", False) else {})})
    if getattr(args, "merge", False) and spec.merge_key is not None:
        folder = results_dir(args.results)
        path = None if folder is None else folder / f"{spec.name}.json"
        if path is not None and path.exists():
            new = {spec.merge_key(r) for r in rows}
            kept = json.loads(path.read_text())
            rows = [{**r, "measured": r.get("measured", kept.get("date"))} for r in kept.get("rows", [])
                    if spec.merge_key(r) not in new] + rows
    run.write(rows, notes=spec.notes)
    return 0
