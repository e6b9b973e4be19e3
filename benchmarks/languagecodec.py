"""Language-Codec: encode/decode speed and peak memory, zoo vs the reference, same weights, one run.

    PYTHONPATH=/tmp/pylib_lc python benchmarks/languagecodec.py --ref /tmp/ref/languagecodec [--seconds 10 60] [--threads 1]

``--ref`` is a checkout of github.com/jishengpeng/Languagecodec (it needs ``encodec`` and
``einops`` and a torchaudio stub on PYTHONPATH, see ``scripts/parity/record_languagecodec.py``);
without it only zoo is timed. Both get the published architecture with the same seeded weights
(``zoo_plugins.languagecodec.testing``: codebooks calibrated on each side's own encoder) and the
same seeded audio, batch 1. Timings are CPU seconds of this process (``time.process_time``),
median of ``--repeats`` after a warm-up, zoo and reference interleaved; RTF = CPU s / audio s.

* encode: ref ``encode_infer(wav, bandwidth_id=0)`` vs zoo ``encode_codes(wav)``;
* decode: ref ``decode(codes_to_features(codes), bandwidth_id=0)`` vs zoo ``decode_codes(codes)``.

Peak memory: each (implementation, op, length) runs once more in a child process that builds the
model alone (decode gets seeded ids, not the encoder's: an encode before it would leave freed
activations in the heap); the row reports the child's peak RSS during the call above its RSS
just before it (peak reset with ``/proc/self/clear_refs``), in MiB. zoo runs with its default
30 s chunks.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import torch
from _audio_codec import median_cpu
from _record import add_results_option, start

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "languagecodec"


def build(which: str, ref_dir: Path | None):
    """(zoo model, reference model or None) at the published config with the parity weights."""
    from zoo.testing.weights import load_manifest
    from zoo.weights import load_state_dict_strict
    from zoo_plugins.languagecodec.checkpoint import convert_state_dict
    from zoo_plugins.languagecodec.config import LanguageCodecConfig
    from zoo_plugins.languagecodec.model import LanguageCodec
    from zoo_plugins.languagecodec.testing import PUBLISHED, calibrate_codebooks, parity_state_dict

    sd = parity_state_dict(load_manifest(FIXTURES / "manifest_published.json"))
    zoo_model = ref = None
    if which in ("zoo", "both"):
        zoo_model = LanguageCodec(LanguageCodecConfig(**PUBLISHED)).eval()
        load_state_dict_strict(zoo_model, convert_state_dict(sd))
        zsd = calibrate_codebooks(dict(sd), lambda w: zoo_model.latents(w))
        load_state_dict_strict(zoo_model, convert_state_dict(zsd))
    if which in ("ref", "both") and ref_dir is not None:
        sys.path.insert(0, str(ROOT / "scripts" / "parity"))
        sys.path.insert(0, str(ref_dir))
        from record_languagecodec import build_reference  # noqa: PLC0415

        ref = build_reference(PUBLISHED)
        ref.load_state_dict(sd)
        with torch.inference_mode():
            rsd = calibrate_codebooks(dict(sd), lambda w: ref.feature_extractor.encodec.encoder(w[:, None]))
        ref.load_state_dict(rsd)
    return zoo_model, ref


def signal(seconds: float) -> torch.Tensor:
    from zoo_plugins.languagecodec.testing import test_signal

    return test_signal(int(seconds * 24000), seed=7)


def _status_mib(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def child(which: str, op: str, seconds: float, ref_dir: Path | None) -> None:
    """One call of one implementation in a fresh process; prints the activation peak in MiB as JSON."""
    torch.set_num_threads(1)
    zoo_model, ref = build(which, ref_dir)
    wav = signal(seconds)
    bw = torch.tensor([0])
    with torch.inference_mode():
        # decode input: seeded ids of the right shape (running the encoder first would leave its freed
        # activations in the heap and hide the decoder's peak)
        frames = -(-wav.shape[-1] // 320)
        ids = torch.randint(0, 1024, (1, 8, frames), generator=torch.Generator().manual_seed(0))
        codes = ids if which == "zoo" else ids.permute(1, 0, 2)
        try:
            Path("/proc/self/clear_refs").write_text("5")
        except OSError:
            print(json.dumps({"peak_mib": None}))
            return
        base = _status_mib("VmRSS")
        if which == "zoo":
            out = zoo_model.encode_codes(wav) if op == "encode" else zoo_model.decode_codes(codes)
        else:
            out = ref.encode_infer(wav, bandwidth_id=bw) if op == "encode" else ref.decode(ref.codes_to_features(codes), bandwidth_id=bw)
        del out
    print(json.dumps({"peak_mib": round(_status_mib("VmHWM") - base, 1)}))


def measure_memory(which: str, op: str, seconds: float, ref_dir: Path | None) -> float | None:
    cmd = [sys.executable, __file__, "--child", which, op, str(seconds)] + (["--ref", str(ref_dir)] if ref_dir else [])
    proc = subprocess.run(cmd, capture_output=True, text=True, env=os.environ.copy())
    try:
        return json.loads(proc.stdout.strip().splitlines()[-1])["peak_mib"]
    except (IndexError, ValueError, KeyError):
        print(f"memory child {which}/{op}/{seconds} failed: {proc.stderr[-500:]}", flush=True)
        return None


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ref", type=Path, default=None)
    p.add_argument("--seconds", type=float, nargs="+", default=[10.0, 60.0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--no-memory", action="store_true")
    p.add_argument("--child", nargs=3, metavar=("WHICH", "OP", "SECONDS"), help=argparse.SUPPRESS)
    add_results_option(p)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    ref_dir = args.ref.resolve() if args.ref is not None and (args.ref / "languagecodec_decoder").is_dir() else None
    if args.child:
        child(args.child[0], args.child[1], float(args.child[2]), ref_dir)
        return
    if ref_dir is None:
        print(f"reference not found ({args.ref}); timing zoo only")
    model, ref = build("both", ref_dir)
    run = start("languagecodec", title="Language-Codec encode/decode", kind="tokenizer", threads=args.threads,
                settings=vars(args), reference=ref_dir, results=args.results)
    bw = torch.tensor([0])
    rows, checks = [], []
    with torch.inference_mode():
        for seconds in args.seconds:
            wav = signal(seconds)
            codes = model.encode_codes(wav)
            enc = {"zoo": lambda wav=wav: model.encode_codes(wav)}
            dec = {"zoo": lambda codes=codes: model.decode_codes(codes)}
            if ref is not None:
                _, ref_codes = ref.encode_infer(wav, bandwidth_id=bw)
                same = float((ref_codes.permute(1, 0, 2) == codes).float().mean())
                diff = float((ref.decode(ref.codes_to_features(ref_codes), bandwidth_id=bw)
                              - model.decode_codes(ref_codes.permute(1, 0, 2))).abs().max())
                checks.append({"audio_s": seconds, "ids_equal_fraction": same, "decode_max_abs_diff": diff})
                print(f"{seconds:g} s: ids equal {same:.4f}, decode max|diff| {diff:.2e}", flush=True)
                enc["ref"] = lambda wav=wav: ref.encode_infer(wav, bandwidth_id=bw)
                dec["ref"] = lambda c=ref_codes: ref.decode(ref.codes_to_features(c), bandwidth_id=bw)
            for op, fns in (("encode", enc), ("decode", dec)):
                t = median_cpu(fns, args.repeats)
                row = {"model": "languagecodec.paper_8nq", "op": op, "audio_s": seconds, "unit": "audio s / CPU s",
                       "zoo_s": t["zoo"], "ref_s": t.get("ref"), "zoo_per_s": seconds / t["zoo"],
                       "ref_per_s": seconds / t["ref"] if "ref" in t else None, "zoo_rtf": t["zoo"] / seconds,
                       "ref_rtf": t["ref"] / seconds if "ref" in t else None,
                       "speedup": t["ref"] / t["zoo"] if "ref" in t else None}
                if not args.no_memory:
                    row["zoo_peak_mib"] = measure_memory("zoo", op, seconds, ref_dir)
                    if ref_dir is not None:
                        row["ref_peak_mib"] = measure_memory("ref", op, seconds, ref_dir)
                rows.append(row)
                print(f"{op:6} {seconds:5g} s  ref {row['ref_s'] or float('nan'):7.2f} s  zoo {row['zoo_s']:7.2f} s  "
                      f"speedup {row['speedup'] or float('nan'):5.2f}x  peak MiB ref {row.get('ref_peak_mib')} zoo {row.get('zoo_peak_mib')}",
                      flush=True)
    run.write(rows, notes=["24 kHz mono seeded signal, batch 1; RTF = CPU seconds / audio seconds (lower is better)",
                           "speedup = reference seconds / zoo seconds",
                           "peak MiB = a child process's peak RSS during the call above its RSS just before (VmHWM reset via clear_refs)"],
              extra={"checks": checks})


if __name__ == "__main__":
    main()
