"""WeTok: reference vs zoo, encode and decode images/s at 256x256, same weights, one run.

    PYTHONPATH=/tmp/refsite:/tmp/pylib python benchmarks/wetok.py --ref /tmp/ref/wetok \\
        [--model wetok.imagenet_f16] [--batch 1 8] [--repeat 2]

``--ref`` is a checkout of github.com/zhuangshaobin/WeTok (its ``VQModel`` needs ``lightning`` and
``einops``, and torchvision's op schemas defined; see ``scripts/parity/record_wetok.py``); without
it only zoo is timed. The reference ``VQModel`` is built from the card's values (``use_ema``
off: ``ema_scope`` only swaps weights, it adds no compute) with seeded weights, and zoo's model
runs on the *same parameter tensors* (``load_state_dict(assign=True)``). Timings are CPU seconds
of this process (``time.process_time``, one torch thread), median of ``--repeat`` after one
warm-up, reference and zoo interleaved. Outputs are compared on every run (ids equal, max |diff|
of the decoded images).

* encode: ref ``VQModel.encode(x)`` (encoder + LFQ) vs zoo ``encode(x)`` (input checks, encoder,
  LFQ, ids ``[B, G, N]``);
* decode: ref ``VQModel.decode(quant).clamp(-1, 1)`` vs zoo ``decode(tokens)`` (ids -> codes ->
  decoder, clamped).

Peak memory: each (implementation, stage, batch) runs once more in a child process that builds
the model alone; the row reports the child's peak RSS during the call above its RSS just before
it (peak reset with ``/proc/self/clear_refs``), i.e. the activations' peak, in MiB.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
from _image_codec import memory_child, reset_peak, stage_rows, status_mib
from _record import add_results_option, start

ROOT = Path(__file__).resolve().parents[1]


def card_config(name: str):
    from zoo.catalogue import load_catalogue
    from zoo.config import merge_config
    from zoo_plugins.wetok.config import WeTokConfig

    cards = {c.name: c for c in load_catalogue()}
    if name not in cards or cards[name].plugin != "wetok":
        raise SystemExit(f"{name!r} is not a WeTok card; choose from {sorted(n for n, c in cards.items() if c.plugin == 'wetok')}")
    return merge_config(WeTokConfig, [("card", cards[name].config)])


def reference_class(path: Path | None):
    if path is None or not (Path(path) / "src/WeTok/models/lfqgan.py").exists():
        return None
    sys.path.insert(0, str(path))
    from src.WeTok.models.lfqgan import VQModel  # reference code, from --ref

    return VQModel


def _seeded_(module: torch.nn.Module, seed: int = 0) -> None:
    """Fill every parameter with seeded N(0, 1/fan_in) (norm weights near 1): fast, same on both sides."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if p.dim() == 1:
                p.normal_(1.0 if name.endswith("weight") or name.endswith("gamma.bias") else 0.0, 0.05, generator=g)
            else:
                p.normal_(0.0, (p[0].numel()) ** -0.5, generator=g)


def build(which: str, name: str, ref_path: Path | None):
    """The reference VQModel or zoo's WeTok, seeded; for "both", zoo shares the reference's tensors."""
    from zoo.weights import no_init
    from zoo_plugins.wetok.model import WeTok

    cfg = card_config(name)
    ref = None
    if which in ("ref", "both"):
        cls = reference_class(ref_path)
        if cls is not None:
            args = {"ddconfig": {"double_z": False, "z_channels": cfg.z_channels, "resolution": 128, "in_channels": 3,
                                 "out_ch": 3, "ch": cfg.ch, "ch_mult": list(cfg.ch_mult), "num_res_blocks": cfg.num_res_blocks},
                    "lossconfig": {"target": "torch.nn.Identity"}, "n_embed": cfg.n_embed, "embed_dim": cfg.z_channels,
                    "num_codebooks": cfg.num_codebooks, "sample_minimization_weight": 1.0, "batch_maximization_weight": 1.0,
                    "use_ema": False, "gan_decoder": cfg.gan_decoder, "scheduler_type": "None"}
            with no_init():  # skips torch's default init; the seeded fill below sets every parameter
                ref = cls(**args).eval()
            _seeded_(ref)
    model = None
    if which in ("zoo", "both"):
        if ref is not None:
            with no_init():
                model = WeTok(cfg)
            sd = {k: v for k, v in ref.state_dict().items() if k.startswith(("encoder.", "decoder."))}
            model.load_state_dict(sd, strict=True, assign=True)
        else:
            with no_init():
                model = WeTok(cfg)
            _seeded_(model)
        model.eval()
    return model, ref


def child(which: str, stage: str, batch: int, name: str, ref_path: Path | None, size: int) -> None:
    """One forward of one implementation in a fresh process; prints JSON with the activation peak
    (VmHWM after the call minus VmRSS before it, the peak being reset just before the call)."""
    torch.set_num_threads(1)
    model, ref = build(which, name, ref_path)
    x = torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.no_grad():
        inp = x
        if stage == "decode":
            inp = model.encode(x) if which == "zoo" else ref.encode(x)[0]
        if not reset_peak():
            print(json.dumps({"peak_above_build_mib": None}))
            return
        base = status_mib("VmRSS")
        if stage == "encode":
            out = model.encode(inp) if which == "zoo" else ref.encode(inp)
        else:
            out = model.decode(inp) if which == "zoo" else ref.decode(inp).clamp(-1, 1)
        del out
    print(json.dumps({"peak_above_build_mib": round(status_mib("VmHWM") - base, 1)}))


def measure_memory(which, stage, batch, args) -> float | None:
    extra = ["--model", args.model, "--size", str(args.size)] + (["--ref", str(args.ref)] if args.ref else [])
    return memory_child(__file__, which, stage, batch, extra)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ref", type=Path, default=None)
    p.add_argument("--model", default="wetok.imagenet_f16")
    p.add_argument("--batch", type=int, nargs="+", default=[1, 8])
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory child processes")
    p.add_argument("--child", nargs=3, default=None, help=argparse.SUPPRESS)
    add_results_option(p)
    args = p.parse_args()
    if args.child:
        child(args.child[0], args.child[1], int(args.child[2]), args.model, args.ref, args.size)
        return
    torch.set_num_threads(1)
    model, ref = build("both", args.model, args.ref)
    run = start("wetok", title=f"WeTok {args.model} encode/decode at {args.size}x{args.size}", kind="tokenizer",
                threads=1, settings=vars(args), reference=args.ref if ref is not None else None, results=args.results)
    rows = []
    for b in args.batch:
        x = torch.rand(b, 3, args.size, args.size, generator=torch.Generator().manual_seed(b)) * 2 - 1
        with torch.no_grad():
            tok = model.encode(x)
            quant = ref.encode(x)[0] if ref is not None else None
        stages = {
            "encode": (lambda x=x: ref.encode(x), lambda x=x: model.encode(x),
                       lambda r, z, b=b: f"ids equal {int((r[2] == z.ids.permute(0, 2, 1).reshape(-1)).sum())}/{z.ids.numel()}"),
            "decode": (lambda q=quant: ref.decode(q).clamp(-1, 1), lambda t=tok: model.decode(t),
                       lambda r, z: f"max |diff| {float((r - z).abs().max()):.1e}"),
        }
        rows += stage_rows(stages, lambda stage, b=b: {"model": args.model, "stage": stage, "batch": b, "size": args.size},
                           b, args.repeat, ref is not None,
                           None if args.no_memory else lambda who, stage, b=b: measure_memory(who, stage, b, args))
    notes = ["CPU seconds per call (time.process_time), one torch thread, median of --repeat after a warm-up, "
             "reference and zoo interleaved on the same parameter tensors",
             "peak MiB = a child process's peak RSS during the call above its RSS just before (VmHWM reset via clear_refs)"]
    run.write(rows, notes=notes)


if __name__ == "__main__":
    main()
