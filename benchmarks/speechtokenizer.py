"""SpeechTokenizer: encode and decode speed and peak memory, zoo vs the reference, same weights, one run.

    PYTHONPATH=/tmp/pylib python benchmarks/speechtokenizer.py --ref /tmp/ref/st [--seconds 10 60] [--threads 1]

``--ref`` is a checkout of github.com/ZhangXInFD/SpeechTokenizer (needs einops; its package
``__init__``, which imports the trainer, is bypassed); without it only zoo is timed. Both get the
parity recipe's seeded weights at the published hubert_avg config with calibrated codebooks
(``zoo_plugins.speechtokenizer.testing``) and the same seeded 16 kHz audio. Times are CPU
seconds (median of ``--repeats`` after a warm-up, interleaved); peak memory is the extra resident
memory of one call in a forked child. zoo runs in its default chunked mode (10 s tiles).
"""

from __future__ import annotations

import argparse
import importlib
import sys
import types
from pathlib import Path

import torch
from _audio_codec import median_cpu, peak_mib
from _record import add_results_option, start

ROOT = Path(__file__).resolve().parents[1]


def build_zoo():
    sys.path.insert(0, str(ROOT))
    from tests.plugins.speechtokenizer.conftest import build_parity_model, release_state_dict

    return build_parity_model("hubert_avg"), release_state_dict("hubert_avg")


def build_ref(ref_dir: Path, sd: dict):
    from zoo_plugins.speechtokenizer.testing import PUBLISHED

    pkg = types.ModuleType("speechtokenizer")
    pkg.__path__ = [str(ref_dir / "speechtokenizer")]
    sys.modules["speechtokenizer"] = pkg
    ref = importlib.import_module("speechtokenizer.model").SpeechTokenizer(PUBLISHED["hubert_avg"]).eval()
    ref.load_state_dict(sd)
    return ref


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ref", type=Path, default=None)
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
    from zoo_plugins.speechtokenizer.testing import test_signal

    model, sd = build_zoo()
    ref = build_ref(args.ref.resolve(), sd) if args.ref is not None and (args.ref / "speechtokenizer").is_dir() else None
    if ref is None:
        print(f"reference not found ({args.ref}); timing zoo only")
    run = start("speechtokenizer_batch8" if args.batch8 else "speechtokenizer",
                title="SpeechTokenizer hubert_avg encode/decode" + (", batch 8" if args.batch8 else ""), kind="tokenizer", threads=args.threads,
                settings={k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
                reference=str(args.ref) if ref is not None else None, results=args.results)
    rows, checks = [], []
    cases = [(s, 1) for s in args.seconds] + ([(min(args.seconds), 8)] if args.batch8 else [])
    with torch.inference_mode():
        for seconds, batch in cases:
            wav = test_signal(int(seconds * 16000), seed=7, batch=batch)
            codes = model.encode_codes(wav)
            enc = {"zoo": lambda wav=wav: model.encode_codes(wav)}
            dec = {"zoo": lambda codes=codes: model.decode_codes(codes)}
            if ref is not None:
                rcodes = ref.encode(wav)
                same = float((rcodes.transpose(0, 1) == codes).float().mean())
                diff = float((ref.decode(rcodes) - model.decode_codes(rcodes.transpose(0, 1))).abs().max())
                checks.append({"audio_s": seconds, "batch": batch, "ids_equal_fraction": same, "max_abs_diff": diff})
                print(f"{seconds:g} s x{batch}: ids equal {same:.4f}, decode max|diff| {diff:.2e}")
                enc["ref"] = lambda wav=wav: ref.encode(wav)
                dec["ref"] = lambda rcodes=rcodes: ref.decode(rcodes)
            for what, fns in (("encode", enc), ("decode", dec)):
                t = median_cpu(fns, args.repeats)
                mem = {k: peak_mib(f) for k, f in fns.items()}
                rows.append({"model": "speechtokenizer.hubert_avg", "op": what, "audio_s": seconds, "batch": batch,
                             "zoo_s": t["zoo"], "ref_s": t.get("ref"), "zoo_items_per_s": batch / t["zoo"],
                             "ref_items_per_s": batch / t["ref"] if "ref" in t else None,
                             "speedup": t["ref"] / t["zoo"] if "ref" in t else None,
                             "zoo_peak_mib": mem["zoo"], "ref_peak_mib": mem.get("ref")})
    if args.long:
        import resource

        with torch.inference_mode():
            for seconds, cs in ((max(args.seconds), 0), (max(args.seconds), None), (args.long, None)):
                w = test_signal(int(seconds * 16000), seed=7)
                c = model.encode_codes(w)
                for what, fn in (("encode", lambda w=w, cs=cs: model.encode_codes(w, chunk_seconds=cs)), ("decode", lambda c=c, cs=cs: model.decode_codes(c, chunk_seconds=cs))):
                    before = resource.getrusage(resource.RUSAGE_CHILDREN)
                    peak = peak_mib(fn)
                    after = resource.getrusage(resource.RUSAGE_CHILDREN)  # CPU seconds of the forked child
                    mode = "one pass" if cs == 0 else "chunked"
                    rows.append({"model": run.title, "op": f"{what} ({mode})", "audio_s": seconds, "batch": 1,
                                 "zoo_s": after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, "ref_s": None, "zoo_peak_mib": peak, "ref_peak_mib": None,
                                 "speedup": None, "zoo_items_per_s": None, "ref_items_per_s": None})
                    print(f"long audio: {what} {seconds:g} s {mode}: peak {peak:.0f} MiB")
    print(f"\nSpeechTokenizer hubert_avg, {args.threads} thread(s), CPU seconds (median of {args.repeats}), peak = extra RSS of one call")
    print("| op | audio | batch | ref s | zoo s | speedup | ref peak MiB | zoo peak MiB |")
    print("|----|-------|-------|-------|-------|---------|--------------|--------------|")
    for r in rows:
        f = (lambda v, fmt: fmt.format(v) if v is not None else "-")
        print(f"| {r['op']} | {r['audio_s']:g} s | {r['batch']} | {f(r['ref_s'], '{:.2f}')} | {r['zoo_s']:.2f} | "
              f"{f(r['speedup'], '{:.2f}x')} | {f(r['ref_peak_mib'], '{:.0f}')} | {f(r['zoo_peak_mib'], '{:.0f}')} |")
    run.write(rows, notes=["CPU seconds, median after warm-up; speedup = reference / zoo",
                           "peak = extra resident memory of one call in a forked child",
                           "zoo tiles the convolutions of audio longer than 10 s (exact); the bidirectional LSTM runs once"],
              extra={"checks": checks})


if __name__ == "__main__":
    main()
