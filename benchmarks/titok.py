"""TiTok / One-D-Piece: reference vs zoo, encode and decode images/s, same weights, one run.

Both implementations get the same per-key seeded weights (official key names and shapes of the
card's config) and the same images; the runs are interleaved and the medians of CPU seconds
(``time.process_time``, robust on a shared machine) and wall seconds are reported, with the
outputs compared (ids equal, max abs image difference) so a speed-up never hides a change.

Each model runs in its own child process, one after the other, so the memory of one size is
given back before the next starts. Within a size at most two copies of the weights exist at a
time (load timing), and the timed zoo model then runs on the reference's own parameter tensors
(``load_state_dict(assign=True)``): ~2.4 GB of weights for TiTok-L-32 instead of 7.2. A size whose
estimate does not fit ``MemAvailable`` is skipped with the numbers, and a child that dies (e.g.
killed for memory) is reported, not fatal.

Usage:
    nice -n 5 python benchmarks/titok.py --ref /tmp/ref/1d-tokenizer --ref-odp /tmp/ref/one-d-piece \\
        --models titok.l_32 titok.b_64 titok.s_128 one_d_piece.s_256 one_d_piece.b_256 one_d_piece.l_256 \\
        --batch 1 8 --repeat 3

Without ``--ref`` (or with a path that lacks the reference) only zoo is timed.
"""

from __future__ import annotations

import argparse
import gc
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
from _record import add_results_option, start

ROOT = Path(__file__).resolve().parents[1]
ROWS_ENV = "ZOO_TITOK_BENCH_ROWS"  # children append their rows here (JSON lines) for the parent's record


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


def _free() -> None:
    """Collect garbage and hand freed heap memory back to the OS (glibc keeps it otherwise:
    the RSS of a TiTok-L run stayed at two copies of the weights after one was freed)."""
    gc.collect()
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def timed(fn):
    c0, w0 = time.process_time(), time.perf_counter()
    out = fn()
    return out, time.process_time() - c0, time.perf_counter() - w0


def build_pair(name: str, ref_cls, repeat: int = 1):
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

    def load_ref():
        r = ref_cls(OmegaConf.create(to_reference_config(cfg)))
        r.load_state_dict(sd, strict=True)
        return r.eval()

    times = {"zoo": [], "ref": []}
    model = ref = None
    for _ in range(max(1, repeat)):  # interleaved; at most two copies of the weights at a time
        for who, fn in (("zoo", load_zoo), ("ref", load_ref if ref_cls is not None else None)):
            if fn is None:
                continue
            model = ref = None
            _free()
            out, c, w = timed(fn)
            times[who].append((c, w))
            model, ref = (out, None) if who == "zoo" else (None, out)
            del out  # else it keeps the last model alive while the next one loads
    med = statistics.median
    zoo_c, zoo_w = med(t[0] for t in times["zoo"]), med(t[1] for t in times["zoo"])
    ref_c, ref_w = float("nan"), float("nan")
    if ref_cls is not None:
        ref_c, ref_w = med(t[0] for t in times["ref"]), med(t[1] for t in times["ref"])
        sd.clear()
        _free()
        # zoo runs on the reference's own parameter tensors (same keys and shapes): identical
        # weights by construction, and one copy in memory instead of two
        with torch.device("meta"):
            model = TiTok(cfg)
        model.load_state_dict(ref.state_dict(), strict=True, assign=True)
        model.eval()
    return model, ref, {"load": (ref_c, zoo_c, ref_w, zoo_w)}


def weight_bytes(name: str) -> int:
    """float32 bytes of the model's weights (from the meta-device manifest, nothing allocated)."""
    from zoo_plugins.titok.model import TiTok

    with torch.device("meta"):
        m = TiTok(card_config(name))
    return sum(p.numel() * 4 for p in m.state_dict().values())


def mem_available() -> int | None:
    """``MemAvailable`` of /proc/meminfo in bytes (None where there is none)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def run_model(name: str, ref_cls, batches, repeat: int, prefixes, warmup: int = 1) -> list[dict]:
    model, ref, load = build_pair(name, ref_cls, repeat)
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
            cases["encode"] = (  # the reference's encode samples the posterior: compare its mean
                lambda x01=x01: ref.encoder(pixel_values=x01, latent_tokens=ref.latent_tokens).chunk(2, 1)[0],
                lambda x=x: model.encode(x),
                lambda r, z: f"mean max |diff| {float((r.flatten(2).transpose(1, 2) - z.values).abs().max()):.1e}")
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
                zr = z.values.transpose(1, 2).unsqueeze(2)
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
                for i in range(repeat + warmup):  # the first `warmup` rounds are not timed
                    out_z, c, w = timed(zoo_fn)
                    if i >= warmup:
                        zc.append(c), zw.append(w)
                    if ref is not None:
                        out_r, c, w = timed(ref_fn)
                        if i >= warmup:
                            rc.append(c), rw.append(w)
                        if i == warmup and check is not None:
                            note = check(out_r, out_z)
            med = statistics.median
            rows.append(dict(model=name, stage=stage, batch=b, ref_cpu=med(rc) if rc else float("nan"), zoo_cpu=med(zc),
                             ref_wall=med(rw) if rw else float("nan"), zoo_wall=med(zw), check=note))
            print(_fmt(rows[-1]), flush=True)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB on Linux
    print(f"| {name} | peak memory (ref + zoo) | | | | | | {peak:.1f} GiB |", flush=True)
    for r in rows:
        r["peak_rss_gib"] = peak
    _share_rows(rows)
    return rows


def _share_rows(rows: list[dict]) -> None:
    """Append a child's rows to the parent's JSON-lines file (when the parent asked for them)."""
    path = os.environ.get(ROWS_ENV)
    if path:
        import json
        import math

        with open(path, "a") as f:
            f.writelines(json.dumps({k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()}) + "\n"
                         for r in rows)


def record_rows(rows: list[dict]) -> list[dict]:
    """The printed rows in the common record shape (zoo/ref seconds, per-second throughput, speed-up)."""
    out = []
    for r in rows:
        load = r["stage"].startswith("load")
        n = 1 if load else r["batch"]
        zoo_s, ref_s = r["zoo_cpu"], r["ref_cpu"]
        out.append({"model": r["model"], "op": r["stage"], "batch": r["batch"], "unit": "s" if load else "img/s",
                    "zoo_s": zoo_s, "ref_s": ref_s, "zoo_per_s": None if load else n / zoo_s,
                    "ref_per_s": None if load or not ref_s else n / ref_s,
                    "speedup": ref_s / zoo_s if ref_s else None, "zoo_wall_s": r["zoo_wall"],
                    "check": r["check"] or None, "peak_rss_gib": r.get("peak_rss_gib")})
    return out


def run_children(args, argv) -> int:
    """Each model in a fresh process, sequentially: memory is returned between sizes."""
    import json
    import tempfile

    ok = True
    have_ref = any(p is not None and (Path(p) / "modeling").is_dir() for p in (args.ref, args.ref_odp))
    run = start("titok", title="TiTok / One-D-Piece encode/decode", kind="tokenizer", threads=args.threads,
                settings=vars(args), reference=(f"{args.ref} {args.ref_odp}" if have_ref else None),
                results=args.results)
    rows_file = Path(tempfile.mkstemp(prefix="titok_rows_", suffix=".jsonl")[1])
    skipped = []
    for name in args.models:
        need = 2 * weight_bytes(name) + 2**30  # two copies of the weights while loading, + activations
        have = mem_available()
        if have is not None and need > have:
            print(f"| {name} | skipped | | | | | | needs ~{need / 2**30:.1f} GiB (2 x weights + 1 GiB), "
                  f"{have / 2**30:.1f} GiB available |", flush=True)
            skipped.append({"model": name, "why": f"needs ~{need / 2**30:.1f} GiB, {have / 2**30:.1f} GiB available"})
            ok = False
            continue
        child = [sys.executable, __file__, "--child", name] + _strip_models(argv)
        env = {"MALLOC_MMAP_THRESHOLD_": str(1 << 20), **os.environ,  # big tensors mmapped: freed = returned
               ROWS_ENV: str(rows_file)}
        rc = subprocess.run(child, check=False, env=env).returncode
        if rc:
            why = "killed (out of memory?)" if rc in (-9, 137) else f"exit status {rc}"
            print(f"| {name} | failed | | | | | | child process {why} |", flush=True)
            skipped.append({"model": name, "why": f"child process {why}"})
            ok = False
        gc.collect()
    rows = [json.loads(line) for line in rows_file.read_text().splitlines() if line.strip()]
    rows_file.unlink()
    run.write(record_rows(rows), notes=["speedup = reference CPU seconds / zoo CPU seconds; load rows are seconds",
                                        "each model ran in its own process, one after the other"],
              extra={"skipped": skipped})
    return 0 if ok else 1


def _strip_models(argv: list[str]) -> list[str]:
    """``argv`` without the values of ``--models`` (a child gets one model by ``--child``)."""
    out, skipping = [], False
    for a in argv:
        if a.startswith("--"):
            skipping = False
        if a.startswith("--models"):
            skipping = "=" not in a
            continue
        if not skipping:
            out.append(a)
    return out


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
    p.add_argument("--models", nargs="+", default=["titok.l_32", "titok.b_64", "titok.s_128",
                                                   "one_d_piece.s_256", "one_d_piece.b_256", "one_d_piece.l_256"])
    p.add_argument("--child", help=argparse.SUPPRESS)  # internal: run one model in this process
    p.add_argument("--batch", nargs="+", type=int, default=[1, 8])
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--warmup", type=int, default=1, help="untimed rounds before the timed ones")
    p.add_argument("--prefixes", nargs="+", type=int, default=[32, 256])
    p.add_argument("--threads", type=int, default=1)
    add_results_option(p)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.child:
        name = args.child
        odp = name.startswith("one_d_piece")
        ref_cls = import_reference(args.ref_odp if odp else args.ref, odp)
        if ref_cls is None:
            print(f"(reference for {name} not given or not found: timing zoo only)", flush=True)
        run_model(name, ref_cls, args.batch, args.repeat, args.prefixes, args.warmup)
        return 0
    print(f"torch {torch.__version__}, {args.threads} thread(s); ratios are reference / zoo "
          f"(CPU seconds; wall-clock ratio beside it); medians of {args.repeat} after {args.warmup} warm-up", flush=True)
    print("| model | stage | batch | reference | zoo | speed-up (cpu) | speed-up (wall) | outputs |")
    print("|---|---|---|---|---|---|---|---|", flush=True)
    return run_children(args, sys.argv[1:] if argv is None else list(argv))


if __name__ == "__main__":
    sys.exit(main())
