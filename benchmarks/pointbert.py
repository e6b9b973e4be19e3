"""Point-BERT dVAE: reference vs zoo, encode and decode of 1024-point clouds, same weights, one run.

    PYTHONPATH=/tmp/pylib python benchmarks/pointbert.py --ref /tmp/ref/pointbert [--batch 1 16] [--repeat 5]

``--ref`` is a checkout of github.com/lulutang0608/Point-BERT; without it only zoo is timed. The
reference's CUDA ops cannot run here: as in the parity fixtures it runs with zoo's pure-torch
FPS / kNN in their place (``scripts/parity/record_pointbert.py``), so the FPS and kNN cost is the
same on both sides and the comparison measures the rest of the model. Both run the released
config (``cfgs/ShapeNet55_models/dvae.yaml``) on one seeded state dict. Timings are CPU seconds of
this process (``time.process_time``, one torch thread), median of ``--repeat`` after a warm-up,
reference and zoo interleaved; outputs are compared on every run.

* encode: ref ``group_divider`` + ``encoder`` + ``dgcnn_1`` + argmax vs zoo ``encode(x)``;
* decode: ref codebook rows (hard one-hot) + ``dgcnn_2`` + ``decoder`` (+ centres) vs zoo ``decode(tokens)``.

Peak memory: each (implementation, stage, batch) runs once more in a child process (peak RSS
during the call above the RSS just before it, MiB).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
from pathlib import Path

import torch
import yaml
from _image_codec import memory_child, reset_peak, stage_rows, status_mib
from _record import add_results_option, start

ROOT = Path(__file__).resolve().parents[1]


def _patched_reference(ref_path: Path):
    spec = importlib.util.spec_from_file_location("record_pointbert", ROOT / "scripts/parity/record_pointbert.py")
    rec = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(rec)
    return rec._patched_reference(ref_path)


def build(which: str, ref_path: Path | None):
    import zoo
    from zoo.testing.weights import state_manifest
    from zoo.weights import load_state_dict_strict, no_init
    from zoo_plugins.pointbert.config import PointBERTConfig
    from zoo_plugins.pointbert.model import PointBERTdVAE
    from zoo_plugins.pointbert.testing import release_state_dict

    cfg = PointBERTConfig(**zoo.get_card("point_bert.dvae_shapenet").config)
    ref = None
    if ref_path is not None and (ref_path / "models/dvae.py").exists():
        DiscreteVAE, EasyDict = _patched_reference(ref_path)
        released = yaml.safe_load((ref_path / "cfgs/ShapeNet55_models/dvae.yaml").read_text())["model"]
        with no_init():
            ref = DiscreteVAE(EasyDict(released)).eval()
        ref.load_state_dict(release_state_dict(state_manifest(ref)), strict=True)
    model = None
    if which in ("zoo", "both"):
        with no_init():
            model = PointBERTdVAE(cfg).eval()
        load_state_dict_strict(model, ref.state_dict() if ref is not None else release_state_dict(state_manifest(model)))
        if which == "zoo":
            ref = None
    return model, ref


def ref_encode(ref, x):
    neighborhood, center = ref.group_divider(x)
    return ref.dgcnn_1(ref.encoder(neighborhood), center).argmax(-1), center


def ref_decode(ref, ids, center):
    onehot = torch.nn.functional.one_hot(ids, ref.num_tokens).float()
    coarse, fine = ref.decoder(ref.dgcnn_2(torch.einsum("b g n, n c -> b g c", onehot, ref.codebook), center))
    return (fine + center.unsqueeze(2)).reshape(ids.shape[0], -1, 3)


def clouds(batch: int) -> torch.Tensor:
    from zoo_plugins.pointbert.testing import test_clouds

    return test_clouds(batch, 1024, seed=batch)


def child(which: str, stage: str, batch: int, ref_path: Path | None) -> None:
    torch.set_num_threads(1)
    model, ref = build(which, ref_path)
    x = clouds(batch)
    with torch.no_grad():
        inp = (x if stage == "encode" else model.encode(x)) if which == "zoo" else (x if stage == "encode" else ref_encode(ref, x))
        if not reset_peak():
            print(json.dumps({"peak_above_build_mib": None}))
            return
        base = status_mib("VmRSS")
        if which == "zoo":
            out = model.encode(inp) if stage == "encode" else model.decode(inp)
        else:
            out = ref_encode(ref, inp) if stage == "encode" else ref_decode(ref, *inp)
        del out
    print(json.dumps({"peak_above_build_mib": round(status_mib("VmHWM") - base, 1)}))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ref", type=Path, default=None)
    p.add_argument("--batch", type=int, nargs="+", default=[1, 16])
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--no-memory", action="store_true")
    p.add_argument("--child", nargs=3, default=None, help=argparse.SUPPRESS)
    add_results_option(p)
    args = p.parse_args()
    if args.child:
        child(args.child[0], args.child[1], int(args.child[2]), args.ref)
        return
    torch.set_num_threads(1)
    model, ref = build("both", args.ref)
    run = start("pointbert", title="Point-BERT dVAE encode/decode of 1024-point clouds", kind="tokenizer", threads=1,
                settings=vars(args), reference=args.ref if ref is not None else None, results=args.results)
    extra = ["--ref", str(args.ref)] if args.ref else []
    rows = []
    for b in args.batch:
        x = clouds(b)
        with torch.no_grad():
            tok = model.encode(x)
        stages = {
            "encode": (lambda x=x: ref_encode(ref, x)[0], lambda x=x: model.encode(x),
                       lambda r, z: f"ids equal {int((r == z.ids).sum())}/{z.ids.numel()}"),
            "decode": (lambda t=tok: ref_decode(ref, t.ids, t.meta["centers"]), lambda t=tok: model.decode(t),
                       lambda r, z: f"max |diff| {float((r - z).abs().max()):.1e}"),
        }
        rows += stage_rows(stages, lambda stage, b=b: {"model": "point_bert.dvae_shapenet", "stage": stage, "batch": b, "points": 1024},
                           b, args.repeat, ref is not None,
                           None if args.no_memory else lambda who, stage, b=b: memory_child(__file__, who, stage, b, extra))
    run.write(rows, notes=["CPU seconds per call (time.process_time), one torch thread, median of --repeat after a "
                           "warm-up, reference and zoo interleaved, same seeded weights; img_per_cpu_s counts clouds",
                           "the reference runs with zoo's FPS / kNN in place of its CUDA ops (both sides pay the same for them)",
                           "peak MiB = a child process's peak RSS during the call above its RSS just before"])


if __name__ == "__main__":
    main()
