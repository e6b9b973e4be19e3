"""Record Kaldi filterbank fixtures with torchaudio and transformers' X-Codec 2 feature extractor.

    PYTHONPATH=/tmp/torchaudio_py python scripts/parity/record_kaldi_fbank.py [--out tests/fixtures]

``/tmp/torchaudio_py`` holds torchaudio's wheel unpacked (``pip download --no-deps torchaudio``,
unzip) with its compiled ``.so`` files moved out: with torch 2.13 they do not load, and the
pure-Python ``torchaudio.compliance.kaldi`` (and transformers' ``Xcodec2FeatureExtractor``,
which calls it) then run. Writes

* ``kaldi/fbank.safetensors``: a seeded 0.3 s signal at int16 scale and
  ``torchaudio.compliance.kaldi.fbank`` of it for each option set in ``OPTIONS`` (stored in the
  file's metadata, so the test reads the cases from the fixture);
* ``hf_codecs/xcodec2_features.safetensors``: ``Xcodec2FeatureExtractor()`` (defaults: 16 kHz,
  hop 320, 80 mel bins, stride 2) outputs for single clips of several lengths and one ragged batch
  (``input_features``, both masks, the shape of ``input_values``; the clips are regenerated from
  :func:`signal` and checked against the sums in the metadata).

Without torchaudio it exits 0 with a note (zoo needs none of it at run time).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]

#: Option sets: X-Codec 2 / SeamlessM4T's, torchaudio's defaults, and each other branch once.
OPTIONS = {
    "xcodec2": dict(num_mel_bins=80, frame_length=25.0, frame_shift=10.0, sample_frequency=16000, window_type="povey",
                    preemphasis_coefficient=0.97, remove_dc_offset=True, use_log_fbank=True, use_energy=False,
                    dither=0.0, snip_edges=True, low_freq=20, high_freq=8000),
    "defaults": dict(num_mel_bins=23),
    "hamming_reflect_energy": dict(num_mel_bins=40, snip_edges=False, window_type="hamming", use_energy=True),
    "hanning_windowed_energy_htk": dict(num_mel_bins=40, window_type="hanning", use_energy=True, raw_energy=False,
                                        htk_compat=True, energy_floor=0.0),
    "blackman_magnitude_no_pow2": dict(num_mel_bins=30, window_type="blackman", round_to_power_of_two=False,
                                       frame_length=20.0, use_power=False, remove_dc_offset=False,
                                       preemphasis_coefficient=0.0),
    "rectangular_8k_mean": dict(num_mel_bins=24, window_type="rectangular", subtract_mean=True,
                                sample_frequency=8000, high_freq=-200, low_freq=60),
    "reflect_odd_shift": dict(num_mel_bins=80, snip_edges=False, frame_shift=12.5, frame_length=30.0),
}
XCODEC2_LENGTHS = (3000, 6400, 7001)  # not a multiple of the hop, an exact multiple, odd
XCODEC2_BATCH = (7001, 3000)


def signal(n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(n) / 16000
    x = 0.3 * torch.sin(2 * torch.pi * 440 * t) + 0.1 * torch.randn(n, generator=g)
    return x.clamp(-1, 1).float()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=ROOT / "tests" / "fixtures")
    args = p.parse_args()
    try:
        import torchaudio.compliance.kaldi as kaldi  # noqa: PLC0415
    except Exception as exc:  # noqa: BLE001 -- any failure: nothing to record here
        print(f"torchaudio.compliance.kaldi does not import ({exc}); nothing recorded")
        return
    from safetensors.torch import save_file  # noqa: PLC0415

    torch.set_num_threads(1)
    wav = signal(4800, 0) * 32768
    tensors = {"waveform": wav}
    for name, opts in OPTIONS.items():
        tensors[name] = kaldi.fbank(wav[None], **opts).contiguous()
    out = args.out / "kaldi"
    out.mkdir(parents=True, exist_ok=True)
    meta = {"options": json.dumps(OPTIONS), "recorded_with": f"torchaudio {getattr(sys.modules.get('torchaudio'), '__version__', '?')}"}
    save_file(tensors, str(out / "fbank.safetensors"), metadata=meta)
    print(f"wrote {out / 'fbank.safetensors'}: {', '.join(OPTIONS)}")

    sys.path.insert(0, str(ROOT / "plugins"))
    from zoo.compat.torchvision import ensure_torchvision  # noqa: PLC0415

    ensure_torchvision()
    import transformers  # noqa: PLC0415

    fe = transformers.Xcodec2FeatureExtractor()
    feats: dict[str, torch.Tensor] = {}
    sums: dict[str, list[float]] = {}
    cases = [(f"single_{n}", (n,)) for n in XCODEC2_LENGTHS] + [("batch", XCODEC2_BATCH)]
    for key, lengths in cases:
        clips = [signal(n, 10 + i) for i, n in enumerate(lengths)]
        res = fe([c.numpy() for c in clips], sampling_rate=16000, return_tensors="pt")
        sums[key] = [float(c.double().sum()) for c in clips]  # the test regenerates the clips and checks these
        feats[f"{key}.input_values_shape"] = torch.tensor(res["input_values"].shape)
        feats[f"{key}.padding_mask"] = res["padding_mask"].to(torch.int8).contiguous()
        feats[f"{key}.input_features"] = res["input_features"].contiguous()
        feats[f"{key}.input_features_mask"] = res["input_features_mask"].to(torch.int8).contiguous()
    out = args.out / "hf_codecs"
    out.mkdir(parents=True, exist_ok=True)
    save_file(feats, str(out / "xcodec2_features.safetensors"),
              metadata={"cases": json.dumps({k: list(v) for k, v in cases}), "sums": json.dumps(sums),
                        "recorded_with": f"transformers {transformers.__version__}, "
                                         f"torchaudio {getattr(sys.modules.get('torchaudio'), '__version__', '?')}"})
    print(f"wrote {out / 'xcodec2_features.safetensors'}")


if __name__ == "__main__":
    main()
