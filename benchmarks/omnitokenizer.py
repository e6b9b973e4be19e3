"""OmniTokenizer: reference vs zoo, encode and decode of a 17-frame 256x256 clip, same weights, one run.

    PYTHONPATH=/tmp/pylib python benchmarks/omnitokenizer.py --ref /tmp/ref/OmniTokenizer [--batch 1 2] [--repeat 2]

``--ref`` is a checkout of github.com/FoundationVision/OmniTokenizer; without it only zoo is timed.
The reference's tokenizer parts are built as in the parity fixtures
(``scripts/parity/record_omnitokenizer.py``: encoder, decoder, codebook and the pre/post VQ maps
at the released ``imagenet_k600`` config, no Lightning module, no LPIPS) on one seeded state dict.
Timings are CPU seconds of this process (``time.process_time``, one torch thread), median of
``--repeat`` after a warm-up, reference and zoo interleaved; outputs compared on every run.

* encode: ref ``VQGAN.encode(x, is_image=False)`` vs zoo ``encode(x)`` (ids);
* decode: ref ``VQGAN.decode(ids, is_image=False)`` vs zoo ``decode(tokens)``.

The reference computes its continuous position bias MLP in every spatial attention call and then
does not use it (its SDPA path drops the bias); zoo skips that computation.

Peak memory: each (implementation, stage, batch) runs once more in a child process (peak RSS
during the call above the RSS just before it, MiB).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
from pathlib import Path

import torch
from _image_codec import memory_child, reset_peak, stage_rows, status_mib
from _record import add_results_option, start

ROOT = Path(__file__).resolve().parents[1]
FRAMES, SIZE = 17, 256


def _recorder():
    spec = importlib.util.spec_from_file_location("record_omnitokenizer", ROOT / "scripts/parity/record_omnitokenizer.py")
    rec = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(rec)
    return rec


def build(which: str, ref_path: Path | None):
    import zoo
    from zoo.testing.weights import seeded_state_dict, state_manifest
    from zoo.weights import load_state_dict_strict, no_init
    from zoo_plugins.omnitokenizer.config import OmniTokenizerConfig, from_hparams
    from zoo_plugins.omnitokenizer.model import OmniTokenizer

    cfg = OmniTokenizerConfig(**from_hparams(zoo.get_card("omnitokenizer.imagenet_k600").config))
    ref = omni = None
    with no_init():
        model = OmniTokenizer(cfg).eval()
    own = model.state_dict()
    if ref_path is not None and (ref_path / "OmniTokenizer/omnitokenizer.py").exists():
        rec = _recorder()
        omni = rec._reference(ref_path)
        with no_init():
            ref = rec._container(omni, rec.RELEASED["joint"])
    man = state_manifest(ref if ref is not None else model)
    sd = {k: (own[k] if k.endswith("relative_position_index") else v) for k, v in seeded_state_dict(man).items()}
    sd["codebook.embeddings"] = torch.nn.functional.normalize(torch.randn(cfg.n_codes, cfg.codebook_dim, generator=torch.Generator().manual_seed(1)), dim=1)
    if ref is not None:
        ref.load_state_dict(sd, strict=True)
    load_state_dict_strict(model, sd)
    if which == "zoo":
        ref = None
    if which == "ref":
        model = None
    return model, ref, omni


def clip(batch: int) -> torch.Tensor:
    return torch.rand(batch, 3, FRAMES, SIZE, SIZE, generator=torch.Generator().manual_seed(batch)) * 2 - 1


def child(which: str, stage: str, batch: int, ref_path: Path | None) -> None:
    torch.set_num_threads(1)
    model, ref, omni = build(which, ref_path)
    x = clip(batch)
    with torch.no_grad():
        if which == "zoo":
            inp = x if stage == "encode" else model.encode(x)
        else:
            inp = x / 2 if stage == "encode" else omni.VQGAN.encode(ref, x / 2, False)
        if not reset_peak():
            print(json.dumps({"peak_above_build_mib": None}))
            return
        base = status_mib("VmRSS")
        if which == "zoo":
            out = model.encode(inp) if stage == "encode" else model.decode(inp)
        else:
            out = omni.VQGAN.encode(ref, inp, False) if stage == "encode" else omni.VQGAN.decode(ref, inp, False)
        del out
    print(json.dumps({"peak_above_build_mib": round(status_mib("VmHWM") - base, 1)}))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ref", type=Path, default=None)
    p.add_argument("--batch", type=int, nargs="+", default=[1, 2])
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument("--no-memory", action="store_true")
    p.add_argument("--child", nargs=3, default=None, help=argparse.SUPPRESS)
    add_results_option(p)
    args = p.parse_args()
    if args.child:
        child(args.child[0], args.child[1], int(args.child[2]), args.ref)
        return
    torch.set_num_threads(1)
    model, ref, omni = build("both", args.ref)
    run = start("omnitokenizer", title="OmniTokenizer imagenet_k600 encode/decode of 17x256x256 clips", kind="tokenizer",
                threads=1, settings=vars(args), reference=args.ref if ref is not None else None, results=args.results)
    extra = ["--ref", str(args.ref)] if args.ref else []
    rows = []
    for b in args.batch:
        x = clip(b)
        with torch.no_grad():
            tok = model.encode(x)
        ids = tok.ids.view(b, *tok.meta["grid"])
        stages = {
            "encode": (lambda x=x: omni.VQGAN.encode(ref, x / 2, False), lambda x=x: model.encode(x),
                       lambda r, z: f"ids equal {int((r.flatten(1) == z.ids).sum())}/{z.ids.numel()}"),
            "decode": (lambda i=ids: (omni.VQGAN.decode(ref, i, False) * 2).clamp(-1, 1), lambda t=tok: model.decode(t),
                       lambda r, z: f"max |diff| {float((r - z).abs().max()):.1e}"),
        }
        rows += stage_rows(stages, lambda stage, b=b: {"model": "omnitokenizer.imagenet_k600", "stage": stage, "batch": b,
                                                      "frames": FRAMES, "size": SIZE},
                           b, args.repeat, ref is not None,
                           None if args.no_memory else lambda who, stage, b=b: memory_child(__file__, who, stage, b, extra))
    run.write(rows, notes=["CPU seconds per call (time.process_time), one torch thread, median of --repeat after a "
                           "warm-up, reference and zoo interleaved, same seeded weights; img_per_cpu_s counts clips",
                           "peak MiB = a child process's peak RSS during the call above its RSS just before"])


if __name__ == "__main__":
    main()
