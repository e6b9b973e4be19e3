"""GigaTok: reference vs zoo, encode and decode images/s at 256x256, same weights, one run.

    PYTHONPATH=/tmp/pylib python benchmarks/gigatok.py --ref /tmp/ref/gigatok [--model gigatok.s_s] \\
        [--batch 1 8] [--repeat 2]

``--ref`` is a checkout of github.com/SilentView/GigaTok (needs ``einops``); without it only zoo
is timed. The reference ``VQVitModelPlus`` is built from the card's yaml (``configs/vq/...``) with
seeded weights; zoo loads the same state dict through its builder (release names -> zoo names,
strict). Timings are CPU seconds of this process (``time.process_time``, one torch thread),
median of ``--repeat`` after one warm-up, reference and zoo interleaved; outputs are compared on
every run (ids equal, max |diff| of the decoded images).

* encode: ref ``VQVitModelPlus.encode(x)`` (CNN, Q-Former, VQ) vs zoo ``encode(x)``;
* decode: ref ``decode_code(ids)`` vs zoo ``decode(tokens)`` (both from ids, clamped).

Peak memory: each (implementation, stage, batch) runs once more in a child process; the row
reports the child's peak RSS during the call above its RSS just before it (``clear_refs``), MiB.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
import yaml
from _image_codec import memory_child, reset_peak, stage_rows, status_mib
from _record import add_results_option, start


def card(name: str):
    from zoo.catalogue import load_catalogue

    cards = {c.name: c for c in load_catalogue()}
    if name not in cards or cards[name].plugin != "gigatok":
        raise SystemExit(f"{name!r} is not a GigaTok card; choose from {sorted(n for n, c in cards.items() if c.plugin == 'gigatok')}")
    return cards[name]


def _seeded_(module: torch.nn.Module, seed: int = 0) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if p.dim() == 1:
                p.normal_(1.0 if name.endswith("weight") or name.endswith("gamma.bias") else 0.0, 0.05, generator=g)
            else:
                p.normal_(0.0, p[0].numel() ** -0.5, generator=g)


def build(which: str, name: str, ref_path: Path | None):
    """(zoo model or None, reference or None); both from one seeded reference state dict."""
    from zoo.config import merge_config
    from zoo.weights import load_state_dict_strict, no_init
    from zoo_plugins.gigatok.builder import GigaTokBuilder
    from zoo_plugins.gigatok.config import GigaTokConfig
    from zoo_plugins.gigatok.model import GigaTok

    c = card(name)
    cfg = merge_config(GigaTokConfig, [("card", c.config)])
    ref = None
    if ref_path is not None and (ref_path / "tokenizer/tokenizer_image/vq/vq_vit_model.py").exists():
        sys.path.insert(0, str(ref_path))
        from tokenizer.tokenizer_image.vq.vq_vit_model import VQVitModelPlus, VQVitModelPlusArgs

        args = yaml.safe_load((ref_path / c.config["yaml"]).read_text())["model"]["init_args"]
        with no_init():
            ref = VQVitModelPlus(VQVitModelPlusArgs(**args)).eval()
        _seeded_(ref)
        with torch.no_grad():  # a spread codebook so ids vary with the input
            ref.quantize.embedding.weight.normal_(0, 1, generator=torch.Generator().manual_seed(1))
    model = None
    if which in ("zoo", "both"):
        with no_init():
            model = GigaTok(cfg).eval()
        if ref is not None:
            load_state_dict_strict(model, GigaTokBuilder().convert(ref.state_dict(), cfg))
        else:
            _seeded_(model)
        if which == "zoo":
            ref = None
    return model, ref


def child(which: str, stage: str, batch: int, name: str, ref_path: Path | None) -> None:
    torch.set_num_threads(1)
    model, ref = build(which, name, ref_path)
    x = torch.rand(batch, 3, 256, 256, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.no_grad():
        if which == "zoo":
            inp = x if stage == "encode" else model.encode(x)
        else:
            inp = x if stage == "encode" else ref.encode(x)[2][2]
        if not reset_peak():
            print(json.dumps({"peak_above_build_mib": None}))
            return
        base = status_mib("VmRSS")
        if which == "zoo":
            out = model.encode(inp) if stage == "encode" else model.decode(inp)
        else:
            out = ref.encode(inp) if stage == "encode" else ref.decode_code(inp, shape=(batch, 8, 1, 256)).clamp(-1, 1)
        del out
    print(json.dumps({"peak_above_build_mib": round(status_mib("VmHWM") - base, 1)}))


def measure_memory(which, stage, batch, args) -> float | None:
    extra = ["--model", args.model] + (["--ref", str(args.ref)] if args.ref else [])
    return memory_child(__file__, which, stage, batch, extra)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ref", type=Path, default=None)
    p.add_argument("--model", default="gigatok.s_s")
    p.add_argument("--batch", type=int, nargs="+", default=[1, 8])
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument("--no-memory", action="store_true")
    p.add_argument("--child", nargs=3, default=None, help=argparse.SUPPRESS)
    add_results_option(p)
    args = p.parse_args()
    if args.child:
        child(args.child[0], args.child[1], int(args.child[2]), args.model, args.ref)
        return
    torch.set_num_threads(1)
    model, ref = build("both", args.model, args.ref)
    run = start("gigatok", title=f"GigaTok {args.model} encode/decode at 256x256", kind="tokenizer", threads=1,
                settings=vars(args), reference=args.ref if ref is not None else None, results=args.results)
    rows = []
    for b in args.batch:
        x = torch.rand(b, 3, 256, 256, generator=torch.Generator().manual_seed(b)) * 2 - 1
        with torch.no_grad():
            tok = model.encode(x)
        stages = {
            "encode": (lambda x=x: ref.encode(x)[2][2], lambda x=x: model.encode(x),
                       lambda r, z: f"ids equal {int((r.view(z.ids.shape) == z.ids).sum())}/{z.ids.numel()}"),
            "decode": (lambda t=tok, b=b: ref.decode_code(t.ids.flatten(), shape=(b, 8, 1, 256)).clamp(-1, 1),
                       lambda t=tok: model.decode(t), lambda r, z: f"max |diff| {float((r - z).abs().max()):.1e}"),
        }
        rows += stage_rows(stages, lambda stage, b=b: {"model": args.model, "stage": stage, "batch": b, "size": 256},
                           b, args.repeat, ref is not None,
                           None if args.no_memory else lambda who, stage, b=b: measure_memory(who, stage, b, args))
    run.write(rows, notes=["CPU seconds per call (time.process_time), one torch thread, median of --repeat after a "
                           "warm-up, reference and zoo interleaved, same seeded weights",
                           "peak MiB = a child process's peak RSS during the call above its RSS just before"])


if __name__ == "__main__":
    main()
