"""LARP: reference vs zoo, encode and decode of 16x128x128 clips, same weights, one run.

    PYTHONPATH=/tmp/pylib python benchmarks/larp.py --ref /tmp/ref/larp [--batch 1 4] [--repeat 1]

``--ref`` is a checkout of github.com/hywang66/LARP (needs ``einops``, ``easydict`` and timm
importable, see ``scripts/parity/record_larp.py``); without it only zoo is timed. Both run the
published architecture (``larp.l_long``: 12+12 blocks of width 768, 1024 tokens) on one seeded
state dict (the reference's LayerNorms set to the eps of the timm LARP was trained with, as in the
parity fixtures). Timings are CPU seconds of this process (``time.process_time``, one torch thread),
median of ``--repeat`` after one warm-up, reference and zoo interleaved; outputs are compared on
every run (ids equal, max |diff| of the decoded clips).

* encode: ref ``LARPTokenizer.encode(x)['bottleneck_rep']`` (deterministic VQ) vs zoo ``encode(x)``;
* decode: ref ``decode_from_bottleneck(ids)`` vs zoo ``decode(tokens)`` (clamped, zoo in [-1, 1]).

Peak memory: each (implementation, stage, batch) runs once more in a child process; the row
reports the child's peak RSS during the call above its RSS just before it, MiB.
"""

from __future__ import annotations

import argparse
import json
import sys
import types
from pathlib import Path

import torch
from _image_codec import memory_child, reset_peak, stage_rows, status_mib
from _record import add_results_option, start


def build(which: str, ref_path: Path | None):
    """(zoo model or None, reference or None), both from one seeded state dict of the reference layout."""
    import zoo
    from zoo.testing.weights import seeded_state_dict, state_manifest
    from zoo.weights import load_state_dict_strict, no_init
    from zoo_plugins.larp.builder import LARPBuilder
    from zoo_plugins.larp.config import LARPConfig, to_reference_config
    from zoo_plugins.larp.model import LARP

    cfg = LARPConfig(**zoo.get_card("larp.l_long").config)
    ref = None
    if ref_path is not None and (ref_path / "models/larp_tokenizer.py").exists():
        for name in ("lpips", "utils"):  # training-only imports
            sys.modules.setdefault(name, types.ModuleType(name))
        sys.path.insert(0, str(ref_path))
        from easydict import EasyDict
        from models.larp_tokenizer import LARPTokenizer

        with no_init():
            ref = LARPTokenizer(**EasyDict(to_reference_config(cfg))).eval()
        for stack in (ref.encoder, ref.decoder):
            for block in stack.blocks:
                block.norm1.eps = block.norm2.eps = 1e-5
        ref.set_vq_eval_deterministic(True)
        sd = seeded_state_dict(state_manifest(ref))
        ref.load_state_dict(sd, strict=True)
    model = None
    if which in ("zoo", "both"):
        with no_init():
            model = LARP(cfg).eval()
        if ref is not None:
            load_state_dict_strict(model, LARPBuilder().convert(ref.state_dict(), cfg))
        else:
            load_state_dict_strict(model, seeded_state_dict(state_manifest(model)))
        if which == "zoo":
            ref = None
    return model, ref


def clip(batch: int) -> torch.Tensor:
    return torch.rand(batch, 3, 16, 128, 128, generator=torch.Generator().manual_seed(batch)) * 2 - 1


def child(which: str, stage: str, batch: int, ref_path: Path | None) -> None:
    torch.set_num_threads(1)
    model, ref = build(which, ref_path)
    x = clip(batch)
    with torch.no_grad():
        if which == "zoo":
            inp = x if stage == "encode" else model.encode(x)
        else:
            inp = (x + 1) / 2 if stage == "encode" else ref.encode((x + 1) / 2)["bottleneck_rep"]
        if not reset_peak():
            print(json.dumps({"peak_above_build_mib": None}))
            return
        base = status_mib("VmRSS")
        if which == "zoo":
            out = model.encode(inp) if stage == "encode" else model.decode(inp)
        else:
            out = ref.encode(inp) if stage == "encode" else ref.decode_from_bottleneck(inp).clamp(0, 1)
        del out
    print(json.dumps({"peak_above_build_mib": round(status_mib("VmHWM") - base, 1)}))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ref", type=Path, default=None)
    p.add_argument("--batch", type=int, nargs="+", default=[1, 4])
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--no-memory", action="store_true")
    p.add_argument("--child", nargs=3, default=None, help=argparse.SUPPRESS)
    add_results_option(p)
    args = p.parse_args()
    if args.child:
        child(args.child[0], args.child[1], int(args.child[2]), args.ref)
        return
    torch.set_num_threads(1)
    model, ref = build("both", args.ref)
    run = start("larp", title="LARP-L-Long encode/decode of 16x128x128 clips", kind="tokenizer", threads=1,
                settings=vars(args), reference=args.ref if ref is not None else None, results=args.results)
    extra = ["--ref", str(args.ref)] if args.ref else []
    rows = []
    for b in args.batch:
        x = clip(b)
        with torch.no_grad():
            tok = model.encode(x)
        stages = {
            "encode": (lambda x=x: ref.encode((x + 1) / 2)["bottleneck_rep"], lambda x=x: model.encode(x),
                       lambda r, z: f"ids equal {int((r == z.ids).sum())}/{z.ids.numel()}"),
            "decode": (lambda t=tok: ref.decode_from_bottleneck(t.ids).clamp(0, 1) * 2 - 1, lambda t=tok: model.decode(t),
                       lambda r, z: f"max |diff| {float((r - z).abs().max()):.1e}"),
        }
        rows += stage_rows(stages, lambda stage, b=b: {"model": "larp.l_long", "stage": stage, "batch": b, "frames": 16, "size": 128},
                           b, args.repeat, ref is not None,
                           None if args.no_memory else lambda who, stage, b=b: memory_child(__file__, who, stage, b, extra))
    run.write(rows, notes=["CPU seconds per call (time.process_time), one torch thread, median of --repeat after a "
                           "warm-up, reference and zoo interleaved, same seeded weights; img_per_cpu_s counts clips",
                           "peak MiB = a child process's peak RSS during the call above its RSS just before"])


if __name__ == "__main__":
    main()
