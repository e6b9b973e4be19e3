"""WavTokenizer: real-time factor of encode and decode, zoo vs the reference, same weights, one run.

    python benchmarks/wavtokenizer.py --ref /tmp/ref/wavtok [--seconds 10 60] [--config frame75] [--threads 1]

``--ref`` is a checkout of github.com/jishengpeng/WavTokenizer (its imports need torchaudio's
Python parts and einops on PYTHONPATH); without it only zoo is timed. Both models get the
same seeded weights (the parity recipe: ``zoo_plugins.wavtokenizer.testing``) and the same
seeded audio. Timings are CPU seconds of this process (``time.process_time``, robust to other
load on a shared machine), median of ``--repeats`` after a warm-up, zoo and reference
interleaved. RTF = compute seconds / audio seconds (lower is better); "speedup" = ref / zoo.

* encode: ref ``encode_infer(wav, bandwidth_id=0)`` vs zoo ``encode_ids(wav)`` (24 kHz mono);
* decode: ref ``decode(codes_to_features(ids), bandwidth_id=0)`` vs zoo ``decode_ids(ids)``.

``--bf16`` adds zoo with the whole model in bfloat16 (opt-in and inexact, what
``zoo.load("wavtokenizer", dtype="bf16")`` gives; the ISTFT stays float32), decoding the
float32 ids; its id agreement and waveform difference to float32 zoo are printed.
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

import torch
from _audio_codec import median_cpu
from _record import add_results_option, start

ROOT = Path(__file__).resolve().parents[1]
YAML = {
    "frame75": "configs/wavtokenizer_smalldata_frame75_3s_nq1_code4096_dim512_kmeans200_attn.yaml",
    "frame40": "configs/wavtokenizer_smalldata_frame40_3s_nq1_code4096_dim512_kmeans200_attn.yaml",
}


def build_zoo(config_name: str):
    from zoo.testing.weights import load_manifest
    from zoo_plugins.wavtokenizer.builder import WavTokenizerBuilder
    from zoo_plugins.wavtokenizer.config import WavTokenizerConfig, config_from_state_dict
    from zoo_plugins.wavtokenizer.testing import CODEBOOK_KEY, calibrated_codebook, parity_state_dict

    sd = parity_state_dict(load_manifest(ROOT / f"tests/fixtures/wavtokenizer/manifest_{config_name}.json"))
    builder = WavTokenizerBuilder()
    config = WavTokenizerConfig(**config_from_state_dict(sd))
    model = builder.build(config).eval()
    model.load_state_dict(builder.convert(sd, config))
    sd[CODEBOOK_KEY] = calibrated_codebook(lambda w: model.latents(w), sd[CODEBOOK_KEY].shape[0])
    model.load_state_dict(builder.convert(sd, config))
    return model, sd


def build_ref(ref_dir: Path, config_name: str, sd: dict):
    sys.path.insert(0, str(ref_dir))
    from decoder.pretrained import WavTokenizer  # noqa: PLC0415  (reference code, from --ref)

    ref = WavTokenizer.from_hparams0802(str(ref_dir / YAML[config_name])).eval()
    ref.load_state_dict(sd)
    return ref


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ref", type=Path, default=None)
    p.add_argument("--seconds", type=float, nargs="+", default=[10.0, 60.0])
    p.add_argument("--config", choices=sorted(YAML), default="frame75")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--bf16", action="store_true", help="also time zoo in bfloat16 (opt-in, inexact)")
    add_results_option(p)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    from zoo_plugins.wavtokenizer.testing import test_signal

    model, sd = build_zoo(args.config)
    ref = None
    if args.ref is not None and (args.ref / "decoder" / "pretrained.py").is_file():
        ref = build_ref(args.ref.resolve(), args.config, sd)
    else:
        print(f"reference not found ({args.ref}); timing zoo only")
    run = start("wavtokenizer", title=f"WavTokenizer {args.config} encode/decode", kind="tokenizer",
                threads=args.threads, settings=vars(args), reference=args.ref if ref is not None else None,
                results=args.results)
    checks = []
    bw = torch.tensor([0])
    m16 = copy.deepcopy(model).to(torch.bfloat16) if args.bf16 else None
    rows = []
    with torch.inference_mode():
        for seconds in args.seconds:
            wav = test_signal(int(seconds * model.sample_rate), seed=7)
            ids = model.encode_ids(wav)
            enc = {"zoo": lambda wav=wav: model.encode_ids(wav)}
            dec = {"zoo": lambda ids=ids: model.decode_ids(ids)}
            if m16 is not None:
                same16 = float((m16.encode_ids(wav) == ids).float().mean())
                diff16 = float((m16.decode_ids(ids).float() - model.decode_ids(ids)).abs().max())
                checks.append({"audio_s": seconds, "check": "bf16 vs float32 zoo", "ids_equal_fraction": same16,
                               "max_abs_diff": diff16})
                print(f"{seconds:g} s: bf16 ids equal to float32 {same16:.4f}, bf16 decode max|diff| {diff16:.2e} "
                      f"(float32 peak {float(model.decode_ids(ids).abs().max()):.2f})")
                enc["bf16"] = lambda wav=wav: m16.encode_ids(wav)
                dec["bf16"] = lambda ids=ids: m16.decode_ids(ids)
            if ref is not None:
                _, codes = ref.encode_infer(wav, bandwidth_id=bw)
                same = float((codes[0] == ids).float().mean())
                diff = float((ref.decode(ref.codes_to_features(codes), bandwidth_id=bw) - model.decode_ids(codes[0])).abs().max())
                checks.append({"audio_s": seconds, "check": "zoo vs reference", "ids_equal_fraction": same,
                               "max_abs_diff": diff})
                print(f"{seconds:g} s: ids equal {same:.4f}, decode max|diff| {diff:.2e}")
                enc["ref"] = lambda wav=wav: ref.encode_infer(wav, bandwidth_id=bw)
                dec["ref"] = lambda codes=codes: ref.decode(ref.codes_to_features(codes), bandwidth_id=bw)
            for what, fns in (("encode", enc), ("decode", dec)):
                t = median_cpu(fns, args.repeats)
                rows.append((what, seconds, t.get("ref"), t["zoo"], t.get("bf16")))
    print(f"\nWavTokenizer {args.config}, {args.threads} thread(s), CPU seconds (median of {args.repeats}); RTF = time / audio length")
    print(f"| {'op':6} | {'audio':>6} | {'ref s':>7} | {'zoo s':>7} | {'ref RTF':>8} | {'zoo RTF':>8} | {'speedup':>7} |"
          + (" bf16 s | bf16 speedup |" if m16 is not None else ""))
    print("|--------|--------|---------|---------|----------|----------|---------|" + ("--------|--------------|" if m16 is not None else ""))
    for what, seconds, tr, tz, tb in rows:
        extra = "" if tb is None else f" {tb:6.2f} | " + (f"{tr / tb:11.2f}x |" if tr is not None else "           - |")
        ref_s = f"{tr:7.2f}" if tr is not None else "      -"
        ref_rtf = f"{tr / seconds:8.4f}" if tr is not None else "       -"
        speed = f"{tr / tz:6.2f}x" if tr is not None else "      -"
        print(f"| {what:6} | {seconds:5g}s | {ref_s} | {tz:7.2f} | {ref_rtf} | {tz / seconds:8.4f} | {speed} |" + extra)
    run.write([{"model": f"wavtokenizer {args.config}", "op": what, "audio_s": seconds, "unit": "audio s / CPU s",
                "zoo_s": tz, "ref_s": tr, "zoo_per_s": seconds / tz, "ref_per_s": seconds / tr if tr else None,
                "zoo_rtf": tz / seconds, "ref_rtf": tr / seconds if tr else None,
                "speedup": tr / tz if tr else None, "bf16_s": tb} for what, seconds, tr, tz, tb in rows],
              notes=["24 kHz mono test signal; RTF = CPU seconds / audio seconds (lower is better)",
                     "speedup = reference seconds / zoo seconds"], extra={"checks": checks})


if __name__ == "__main__":
    main()
