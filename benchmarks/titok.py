"""TiTok / One-D-Piece: reference vs zoo, encode and decode images/s, same weights, one run.

Both implementations get the same per-key seeded weights (official key names and shapes of the
card's config) and the same images; the runs are interleaved and the medians of CPU seconds
(``time.process_time``, robust on a shared machine) and wall seconds are reported, with the
outputs compared (ids equal, max abs image difference) so a speed-up never hides a change.

Usage:
    python benchmarks/titok.py --ref /tmp/ref/1d-tokenizer --ref-odp /tmp/ref/one-d-piece \\
        --models titok.s_128 one_d_piece.s_256 --batch 1 8 --repeat 3

Without ``--ref`` (or with a path that lacks the reference) only zoo is timed.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def card_config(name: str):
    from zoo_plugins.titok.config import TiTokConfig

    from zoo.catalogue import load_catalogue
    from zoo.config import merge_config

    cards = {c.name: c for c in load_catalogue()}
    if name not in cards or cards[name].plugin != "titok":
        raise SystemExit(f"{name!r} is not a TiTok-family card; choose from "
                         f"{sorted(n for n, c in cards.items() if c.plugin == 'titok')}")
    return merge_config(TiTokConfig, [("card", cards[name].config)])


def import_reference(path: Path | None, odp: bool):
    """The reference class from a checkout, or None (skipped) when absent."""
    if path is None or not (Path(path) / "modeling").is_dir():
        return None
    for mod in [m for m in sys.modules if m == "modeling" or m.startswith("modeling.")]:
        del sys.modules[mod]
    sys.path.insert(0, str(path))
    try:
        if odp:
            from modeling.one_d_piece import OneDPiece as cls
        else:
            from modeling.titok import TiTok as cls
    finally:
        sys.path.remove(str(path))
    return cls


def timed(fn):
    c0, w0 = time.process_time(), time.perf_counter()
    out = fn()
    return out, time.process_time() - c0, time.perf_counter() - w0


def build_pair(name: str, ref_cls):
    """(zoo model, reference model or None, load seconds) with identical weights."""
    from omegaconf import OmegaConf
    from zoo_plugins.titok.config import to_reference_config
    from zoo_plugins.titok.model import TiTok

    from zoo.testing.weights import seeded_state_dict, state_manifest
    from zoo.weights import load_state_dict_strict, no_init

    cfg = card_config(name)
    with torch.device("meta"):
        manifest = state_manifest(TiTok(cfg))
    sd = seeded_state_dict(manifest, seed=0)
    if "quantize.embedding.weight" in sd:  # a spread codebook, so ids vary with the input
        shape = sd["quantize.embedding.weight"].shape
        sd["quantize.embedding.weight"] = torch.randn(shape, generator=torch.Generator().manual_seed(1))

    def load_zoo():
        with no_init():
            m = TiTok(cfg)
        load_state_dict_strict(m, sd)
        return m.eval()

    model, zoo_c, zoo_w = timed(load_zoo)
    ref, ref_c, ref_w = None, float("nan"), float("nan")
    if ref_cls is not None:
        def load_ref():
            r = ref_cls(OmegaConf.create(to_reference_config(cfg)))
            r.load_state_dict(sd, strict=True)
            return r.eval()

        ref, ref_c, ref_w = timed(load_ref)
    return model, ref, {"load": (ref_c, zoo_c, ref_w, zoo_w)}


def run_model(name: str, ref_cls, batches, repeat: int, prefixes) -> list[dict]:
    model, ref, load = build_pair(name, ref_cls)
    rows = [dict(model=name, stage="load (build + weights)", batch=1, ref_cpu=load["load"][0], zoo_cpu=load["load"][1],
                 ref_wall=load["load"][2], zoo_wall=load["load"][3], check="same state dict")]
    print(_fmt(rows[-1]), flush=True)
    vae = model.config.quantize_mode == "vae"
    odp = model.variable_length
    g = torch.Generator().manual_seed(0)
    for b in batches:
        x01 = torch.rand(b, 3, model.image_size, model.image_size, generator=g)
        x = x01 * 2 - 1
        cases = {}  # stage -> (ref_fn, zoo_fn, check_fn)
        if vae:
            cases["encode"] = (lambda x01=x01: ref.encoder(pixel_values=x01, latent_tokens=ref.latent_tokens),
                               lambda x=x: model.encode(x), None)
        else:
            cases["encode"] = (lambda x01=x01: ref.encode(x01)[1]["min_encoding_indices"], lambda x=x: model.encode(x),
                               lambda r, z, b=b: f"ids equal {int((r.reshape(b, -1) == z.ids).sum())}/{z.ids.numel()}")
        with torch.no_grad():
            tok = model.encode(x)
        lengths = prefixes if odp else [None]
        for n in lengths:
            label = "decode" if n is None else f"decode {n} tok"
            if vae:
                z = tok
                zr = z.transpose(1, 2).unsqueeze(2)
                ref_fn = lambda zr=zr: ref.decode(zr).clamp(0, 1)
                zoo_fn = lambda z=z: model.decode(z)
            else:
                ids = tok.ids[:, None]  # the reference's [B, 1, N]
                if n is None:
                    ref_fn = lambda ids=ids: ref.decode_tokens(ids).clamp(0, 1)
                    zoo_fn = lambda tok=tok: model.decode(tok)
                else:
                    ref_fn = lambda ids=ids, n=n: ref.decode_tokens(ids, length=n).clamp(0, 1)
                    zoo_fn = lambda n=n, tok=tok: model.decode(tok.truncate(n))
            cases[label] = (ref_fn, zoo_fn, lambda r, z: f"max |diff| {float((r * 2 - 1 - z).abs().max()):.1e}")
        for stage, (ref_fn, zoo_fn, check) in cases.items():
            rc, zc, rw, zw, note = [], [], [], [], ""
            with torch.no_grad():
                for i in range(repeat + 1):  # first round warms up
                    out_z, c, w = timed(zoo_fn)
                    if i:
                        zc.append(c), zw.append(w)
                    if ref is not None:
                        out_r, c, w = timed(ref_fn)
                        if i:
                            rc.append(c), rw.append(w)
                        if i == 1 and check is not None:
                            note = check(out_r, out_z)
            med = statistics.median
            rows.append(dict(model=name, stage=stage, batch=b, ref_cpu=med(rc) if rc else float("nan"), zoo_cpu=med(zc),
                             ref_wall=med(rw) if rw else float("nan"), zoo_wall=med(zw), check=note))
            print(_fmt(rows[-1]), flush=True)
    return rows


def _fmt(r: dict) -> str:
    n = r["batch"] if r["stage"] != "load (build + weights)" else 1
    ref_ips = n / r["ref_cpu"] if r["ref_cpu"] == r["ref_cpu"] else float("nan")
    zoo_ips = n / r["zoo_cpu"]
    ratio = r["ref_cpu"] / r["zoo_cpu"]
    unit = "s" if r["stage"].startswith("load") else "img/s"
    a, b = (r["ref_cpu"], r["zoo_cpu"]) if unit == "s" else (ref_ips, zoo_ips)
    return (f"| {r['model']} | {r['stage']} | {r['batch']} | {a:.3g} {unit} | {b:.3g} {unit} | {ratio:.2f}x "
            f"| {r['ref_wall'] / r['zoo_wall']:.2f}x | {r['check']} |")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ref", type=Path, help="checkout of bytedance/1d-tokenizer")
    p.add_argument("--ref-odp", type=Path, help="checkout of turingmotors/One-D-Piece")
    p.add_argument("--models", nargs="+", default=["titok.s_128", "one_d_piece.s_256"])
    p.add_argument("--batch", nargs="+", type=int, default=[1, 8])
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--prefixes", nargs="+", type=int, default=[32, 256])
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} thread(s); ratios are reference / zoo "
          "(CPU seconds; wall-clock ratio beside it); medians of", args.repeat)
    print("| model | stage | batch | reference | zoo | speed-up (cpu) | speed-up (wall) | outputs |")
    print("|---|---|---|---|---|---|---|---|")
    for name in args.models:
        odp = name.startswith("one_d_piece")
        ref_cls = import_reference(args.ref_odp if odp else args.ref, odp)
        if ref_cls is None:
            print(f"(reference for {name} not given or not found: timing zoo only)")
        run_model(name, ref_cls, args.batch, args.repeat, args.prefixes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
