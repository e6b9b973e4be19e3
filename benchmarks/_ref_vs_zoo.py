"""The driver the reference-vs-zoo tokenizer benchmarks of issue 22 share (``larp.py``, ``pointbert.py``,
``omnitokenizer.py``): one command line, one timing loop, one memory child.

A script describes its model as a :class:`Codec` (how to build both sides on one seeded state dict,
the inputs, how the reference encodes, decodes and reads zoo's ids) and keeps its own record
(``_record.start`` / ``run.write``); this module does the rest:

* :func:`parser` -- ``--ref --batch --repeat --no-memory --merge --results`` (and the hidden ``--child``);
* :func:`measure` -- per batch, encode and decode timed with reference and zoo interleaved
  (``_image_codec.stage_rows``: CPU seconds, median of ``--repeat`` after a warm-up), the reference
  decoding zoo's ids so one near-tie id cannot spread; ids compared, max |diff| of the media;
* :func:`child` / :func:`memory` -- the peak memory of one call in a fresh process. The child runs
  with glibc's mmap threshold fixed (``MALLOC_MMAP_THRESHOLD_``, :data:`CHILD_ENV`): every buffer
  over 64 KiB is its own mapping, returned on free, so the resident set follows the live tensors.
  Without it glibc raises the threshold as buffers are freed, later buffers come out of a heap that
  an earlier step left resident, and the same call measured 56 or 180 MiB from run to run;
* :func:`merged` -- ``--merge`` keeps the rows of other batch sizes from the committed record, so a
  run too long for one slot of the shared machine is split into several (each row says when it ran).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from _image_codec import memory_child, reset_peak, stage_rows, status_mib
from _record import add_results_option, results_dir

#: Environment of the memory children (see the module doc).
CHILD_ENV = {"MALLOC_MMAP_THRESHOLD_": "65536"}

NOTES = [
    "CPU seconds per call (time.process_time), one torch thread, median of --repeat after a warm-up, reference and "
    "zoo interleaved, same seeded weights; the reference decodes zoo's ids",
    "peak MiB = a child process's peak RSS during the call above its RSS just before (glibc mmap threshold fixed at "
    "64 KiB so freed buffers leave the resident set)",
]


@dataclass
class Codec:
    """One benchmarked tokenizer: everything :func:`measure` and :func:`child` need from a script.

    ``build(which, ref_path)`` -> ``(zoo model or None, reference or None)`` for ``which`` in ``zoo``, ``ref``,
    ``both``; ``ref_encode(ref, x)`` takes zoo's input (media in zoo's range) and returns the
    reference's tokens, ``ref_decode(ref, tokens)`` media in zoo's range, ``ref_tokens(zoo_tokens)`` the
    reference's form of zoo's ids, ``ref_ids(tokens)`` ids shaped like zoo's ``Tokens.ids``.
    """

    benchmark: str
    model: str
    unit: str
    build: Callable[[str, Path | None], tuple[Any, Any]]
    inputs: Callable[[int], torch.Tensor]
    ref_encode: Callable[[Any, torch.Tensor], Any]
    ref_decode: Callable[[Any, Any], torch.Tensor]
    ref_tokens: Callable[[Any], Any] = lambda tok: tok.ids
    ref_ids: Callable[[Any], torch.Tensor] = lambda ids: ids
    head: dict[str, Any] = field(default_factory=dict)


def parser(description: str, batch: list[int], repeat: int) -> argparse.ArgumentParser:
    """The command line every such benchmark takes."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--ref", type=Path, default=None, help="checkout of the reference repository (column skipped without)")
    p.add_argument("--batch", type=int, nargs="+", default=batch)
    p.add_argument("--repeat", type=int, default=repeat)
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory children")
    p.add_argument("--merge", action="store_true", help="keep the committed record's rows of other batch sizes")
    p.add_argument("--child", nargs=3, default=None, help=argparse.SUPPRESS)
    add_results_option(p)
    return p


def child(codec: Codec, which: str, stage: str, batch: int, ref_path: Path | None) -> None:
    """In a memory child: build one side, prepare the stage's input, print the call's peak above the RSS before it."""
    torch.set_num_threads(1)
    model, ref = codec.build(which, ref_path)
    x = codec.inputs(batch)
    with torch.no_grad():
        if which == "zoo":
            inp = x if stage == "encode" else model.encode(x)
            call = model.encode if stage == "encode" else model.decode
        else:
            inp = x if stage == "encode" else codec.ref_encode(ref, x)
            call = (lambda v: codec.ref_encode(ref, v)) if stage == "encode" else (lambda v: codec.ref_decode(ref, v))
        if not reset_peak():
            print(json.dumps({"peak_above_build_mib": None}))
            return
        base = status_mib("VmRSS")
        out = call(inp)
        del out
    print(json.dumps({"peak_above_build_mib": round(status_mib("VmHWM") - base, 1)}))


def memory(script: str, args: argparse.Namespace) -> Callable[[str, str, int], float | None] | None:
    """``(who, stage, batch) -> peak MiB`` through a fresh ``script --child`` (None with ``--no-memory``)."""
    if args.no_memory:
        return None
    extra = ["--ref", str(args.ref)] if args.ref else []
    return lambda who, stage, batch: memory_child(script, who, stage, batch, extra, env=CHILD_ENV)


def measure(codec: Codec, args: argparse.Namespace, model, ref, script: str) -> list[dict[str, Any]]:
    """The rows of every ``--batch``: encode and decode, reference (when built) and zoo interleaved."""
    peak = memory(script, args)
    rows = []
    for b in args.batch:
        x = codec.inputs(b)
        with torch.no_grad():
            tok = model.encode(x)
        theirs = codec.ref_tokens(tok)
        stages = {
            "encode": (lambda x=x: codec.ref_encode(ref, x), lambda x=x: model.encode(x),
                       lambda r, z: f"ids equal {int((codec.ref_ids(r) == z.ids).sum())}/{z.ids.numel()}"),
            "decode": (lambda t=theirs: codec.ref_decode(ref, t), lambda t=tok: model.decode(t),
                       lambda r, z: f"max |diff| {float((r - z).abs().max()):.1e}"),
        }
        rows += stage_rows(stages, lambda stage, b=b: {"model": codec.model, "stage": stage, "batch": b, **codec.head},
                           b, args.repeat, ref is not None,
                           None if peak is None else lambda who, stage, b=b: peak(who, stage, b))
    return rows


def main_child(codec: Codec, args: argparse.Namespace) -> bool:
    """Run the memory child when ``--child`` was given (then the script stops); False otherwise."""
    if not args.child:
        return False
    child(codec, args.child[0], args.child[1], int(args.child[2]), args.ref)
    return True


def merged(codec: Codec, args: argparse.Namespace, rows: list[dict[str, Any]], date: str) -> list[dict[str, Any]]:
    """``rows`` (each stamped with ``date``), after the committed record's rows of other batch sizes when ``--merge``."""
    rows = [{**r, "measured": r.get("measured", date)} for r in rows]
    folder = results_dir(args.results)
    path = None if folder is None else folder / f"{codec.benchmark}.json"
    if not args.merge or path is None or not path.exists():
        return rows
    old = json.loads(path.read_text())
    kept = [{**r, "measured": r.get("measured", old.get("date"))} for r in old.get("rows", [])
            if r.get("batch") not in set(args.batch)]
    return sorted(kept + rows, key=lambda r: (r.get("batch", 0), r.get("stage") != "encode"))  # encode, then decode
