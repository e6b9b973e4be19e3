"""SNAC: encode and decode speed and peak memory, zoo vs the reference, same weights, one run.

    PYTHONPATH=/tmp/pylib python benchmarks/snac.py --ref /tmp/ref/snac [--config 24khz] [--seconds 10 60] [--threads 1]

``--ref`` is a checkout of github.com/hubertsiuzdak/snac (needs einops); without it only zoo is
timed. Both get the parity recipe's seeded weights at a published config
(``zoo_plugins.snac.testing``) and the same seeded audio. Times are CPU seconds (median of
``--repeats`` after a warm-up, zoo and reference interleaved); items/s at batch 1 (and batch 8
for the shortest clip); peak memory is the extra resident memory of one call in a forked child.
zoo runs in its default chunked mode (``chunk_seconds`` 30 s); ids and audio are checked
against the reference (decode with ``torch.manual_seed(0)`` there, a generator seeded 0 here).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from _audio_codec import median_cpu, peak_mib
from _record import add_results_option, start

ROOT = Path(__file__).resolve().parents[1]


def build_zoo(name: str):
    from zoo_plugins.snac.builder import SNACBuilder
    from zoo_plugins.snac.config import SNACConfig
    from zoo_plugins.snac.testing import PUBLISHED, parity_state_dict

    from zoo.testing.weights import load_manifest

    sd = parity_state_dict(load_manifest(ROOT / f"tests/fixtures/snac/manifest_{name}.json"))
    builder = SNACBuilder()
    config = SNACConfig.from_mapping(PUBLISHED[name])
    model = builder.build(config).eval()
    model.load_state_dict(builder.convert(sd, config), strict=True)
    return model, sd


def build_ref(ref_dir: Path, name: str, sd: dict):
    from zoo_plugins.snac.testing import PUBLISHED

    sys.path.insert(0, str(ref_dir))
    from snac import SNAC  # noqa: PLC0415  (reference code, from --ref)

    ref = SNAC(**PUBLISHED[name]).eval()
    ref.load_state_dict(sd)
    return ref


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ref", type=Path, default=None)
    p.add_argument("--config", choices=["24khz", "32khz", "44khz"], default="24khz")
    p.add_argument("--seconds", type=float, nargs="+", default=[10.0, 60.0])
    p.add_argument("--batch8", action="store_true", help="also time batch 8 at the shortest clip (record: <name>_batch8.json)")
    p.add_argument("--long", type=float, default=None, metavar="SECONDS",
                   help="zoo only: CPU seconds and peak memory of encode/decode of one clip this long (chunked), "
                        "and of the longest --seconds clip in one pass (chunk_seconds=0) for comparison")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=3)
    add_results_option(p)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    from zoo_plugins.snac.testing import test_signal

    model, sd = build_zoo(args.config)
    ref = build_ref(args.ref.resolve(), args.config, sd) if args.ref is not None and (args.ref / "snac").is_dir() else None
    if ref is None:
        print(f"reference not found ({args.ref}); timing zoo only")
    run = start("snac_batch8" if args.batch8 else "snac",
                title=f"SNAC {args.config} encode/decode" + (", batch 8" if args.batch8 else ""), kind="tokenizer", threads=args.threads,
                settings={k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
                reference=str(args.ref) if ref is not None else None, results=args.results)
    rows, checks = [], []
    cases = [(s, 1) for s in args.seconds] + ([(min(args.seconds), 8)] if args.batch8 else [])
    with torch.inference_mode():
        for seconds, batch in cases:
            wav = test_signal(int(seconds * model.sample_rate), seed=7, sample_rate=model.sample_rate, batch=batch)
            codes = model.encode_codes(wav)
            enc = {"zoo": lambda wav=wav: model.encode_codes(wav)}
            dec = {"zoo": lambda codes=codes: model.decode_codes(codes, generator=torch.Generator().manual_seed(0))}
            if ref is not None:
                rcodes = ref.encode(wav)
                same = min(float((a == b).float().mean()) for a, b in zip(rcodes, codes))
                torch.manual_seed(0)
                rout = ref.decode(rcodes)
                diff = float((rout - model.decode_codes(rcodes, generator=torch.Generator().manual_seed(0))).abs().max())
                checks.append({"audio_s": seconds, "batch": batch, "ids_equal_fraction": same, "max_abs_diff": diff})
                print(f"{seconds:g} s x{batch}: ids equal {same:.4f}, decode max|diff| {diff:.2e}")
                enc["ref"] = lambda wav=wav: ref.encode(wav)
                dec["ref"] = lambda rcodes=rcodes: ref.decode(rcodes)
            for what, fns in (("encode", enc), ("decode", dec)):
                t = median_cpu(fns, args.repeats)
                mem = {k: peak_mib(f) for k, f in fns.items()}
                rows.append({"model": f"snac.{args.config}", "op": what, "audio_s": seconds, "batch": batch,
                             "zoo_s": t["zoo"], "ref_s": t.get("ref"), "zoo_items_per_s": batch / t["zoo"],
                             "ref_items_per_s": batch / t["ref"] if "ref" in t else None,
                             "speedup": t["ref"] / t["zoo"] if "ref" in t else None,
                             "zoo_peak_mib": mem["zoo"], "ref_peak_mib": mem.get("ref")})
    if args.long:
        import resource

        with torch.inference_mode():
            for seconds, cs in ((max(args.seconds), 0), (max(args.seconds), None), (args.long, None)):
                w = test_signal(int(seconds * model.sample_rate), seed=7, sample_rate=model.sample_rate)
                c = model.encode_codes(w)
                for what, fn in (("encode", lambda w=w, cs=cs: model.encode_codes(w, chunk_seconds=cs)), ("decode", lambda c=c, cs=cs: model.decode_codes(c, generator=torch.Generator().manual_seed(0), chunk_seconds=cs))):
                    before = resource.getrusage(resource.RUSAGE_CHILDREN)
                    peak = peak_mib(fn)
                    after = resource.getrusage(resource.RUSAGE_CHILDREN)  # CPU seconds of the forked child
                    mode = "one pass" if cs == 0 else "chunked"
                    rows.append({"model": run.title, "op": f"{what} ({mode})", "audio_s": seconds, "batch": 1,
                                 "zoo_s": after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, "ref_s": None, "zoo_peak_mib": peak, "ref_peak_mib": None,
                                 "speedup": None, "zoo_items_per_s": None, "ref_items_per_s": None})
                    print(f"long audio: {what} {seconds:g} s {mode}: peak {peak:.0f} MiB")
    print(f"\nSNAC {args.config}, {args.threads} thread(s), CPU seconds (median of {args.repeats}), peak = extra RSS of one call")
    print("| op | audio | batch | ref s | zoo s | speedup | ref peak MiB | zoo peak MiB |")
    print("|----|-------|-------|-------|-------|---------|--------------|--------------|")
    for r in rows:
        f = (lambda v, fmt: fmt.format(v) if v is not None else "-")
        print(f"| {r['op']} | {r['audio_s']:g} s | {r['batch']} | {f(r['ref_s'], '{:.2f}')} | {r['zoo_s']:.2f} | "
              f"{f(r['speedup'], '{:.2f}x')} | {f(r['ref_peak_mib'], '{:.0f}')} | {f(r['zoo_peak_mib'], '{:.0f}')} |")
    run.write(rows, notes=["CPU seconds, median after warm-up; speedup = reference / zoo",
                           "peak = extra resident memory of one call in a forked child",
                           "zoo chunks audio longer than 30 s (exact: equal to one pass up to float rounding)"],
              extra={"checks": checks})


if __name__ == "__main__":
    main()
