"""Record WavTokenizer parity fixtures by running the reference implementation.

    python scripts/parity/record_wavtokenizer.py --ref /tmp/ref/wavtok [--out tests/fixtures/wavtokenizer]

``--ref`` is a checkout of github.com/jishengpeng/WavTokenizer (not part of zoo; its imports need
torchaudio's Python parts and einops on PYTHONPATH). For each published architecture (the repo's
frame40 and frame75 yaml; every release uses one of the two) this writes:

* ``manifest_<cfg>.json`` -- key/shape manifest of the reference generator (what
  ``from_pretrained0802`` loads from a release ``.ckpt``);
* ``<cfg>.safetensors`` -- for seeded inputs: a channel subset of the pre-quantisation latents,
  token ids, the top-2 codebook distance gap per frame, and the reference decode of the
  reference ids; plus ids of a stereo 16 kHz input run through the reference's
  ``convert_audio`` (torchaudio resample + channel mean). Metadata: seeds, lengths, commit;
* ``resample_torchaudio.safetensors`` -- torchaudio's resampler on seeded stereo inputs, the
  ground truth for ``zoo.media.audio.resample``.

Weights are never written: both sides regenerate them with ``zoo_plugins.wavtokenizer.testing``.
Without ``--ref`` (or if it is missing) the script says so and exits 0.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import torch

CONFIGS = {
    "frame75": "configs/wavtokenizer_smalldata_frame75_3s_nq1_code4096_dim512_kmeans200_attn.yaml",
    "frame40": "configs/wavtokenizer_smalldata_frame40_3s_nq1_code4096_dim512_kmeans200_attn.yaml",
}
CASES = {"a": (12000, 1), "b": (9001, 2)}  # name: (samples at 24 kHz, signal seed)
STEREO = (8000, 3, 16000)  # samples at 16 kHz, seed, rate
WEIGHT_SEED = 0
LATENT_CHANNELS = slice(0, None, 8)  # 64 of 512 channels keep the fixture small


def top2_gap(latents: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    """Per-frame gap between the two smallest squared distances (float64), ``[B, T]``."""
    x = latents.transpose(1, 2).double()
    e = codebook.double()
    d = x.pow(2).sum(-1, keepdim=True) - 2 * x @ e.T + e.pow(2).sum(-1)
    two = d.topk(2, dim=-1, largest=False).values
    return (two[..., 1] - two[..., 0]).float()


def record(ref_dir: Path, out_dir: Path) -> None:
    sys.path.insert(0, str(ref_dir))
    from decoder.pretrained import WavTokenizer  # noqa: PLC0415  (reference code, from --ref)
    from encoder.utils import convert_audio  # noqa: PLC0415

    from safetensors.torch import save_file  # noqa: PLC0415
    from zoo.testing.weights import save_manifest, state_manifest  # noqa: PLC0415
    from zoo_plugins.wavtokenizer.testing import CODEBOOK_KEY, calibrated_codebook, parity_state_dict, test_signal  # noqa: PLC0415

    torch.set_num_threads(1)
    commit = subprocess.run(["git", "-C", str(ref_dir), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    out_dir.mkdir(parents=True, exist_ok=True)
    bw = torch.tensor([0])
    for name, yaml_path in CONFIGS.items():
        ref = WavTokenizer.from_hparams0802(str(ref_dir / yaml_path)).eval()
        manifest = state_manifest(ref)
        save_manifest(manifest, out_dir / f"manifest_{name}.json")
        sd = parity_state_dict(manifest, seed=WEIGHT_SEED)
        ref.load_state_dict(sd)
        encoder = ref.feature_extractor.encodec.encoder
        with torch.inference_mode():
            sd[CODEBOOK_KEY] = calibrated_codebook(lambda w, encoder=encoder: encoder(w[:, None]), sd[CODEBOOK_KEY].shape[0], seed=WEIGHT_SEED)
        ref.load_state_dict(sd)
        tensors: dict[str, torch.Tensor] = {}
        meta = {"reference": f"jishengpeng/WavTokenizer@{commit or 'unknown'}", "yaml": Path(yaml_path).name,
                "weight_seed": WEIGHT_SEED, "cases": {}, "latent_channels": "0::8"}
        with torch.inference_mode():
            for case, (n, seed) in CASES.items():
                wav = test_signal(n, seed=seed)
                latents = encoder(wav[:, None])
                features, codes = ref.encode_infer(wav, bandwidth_id=bw)
                audio = ref.decode(features, bandwidth_id=bw)
                tensors[f"{case}.latents"] = latents[:, LATENT_CHANNELS].contiguous()
                tensors[f"{case}.ids"] = codes[0].contiguous()
                tensors[f"{case}.gap"] = top2_gap(latents, sd[CODEBOOK_KEY]).contiguous()
                tensors[f"{case}.audio"] = audio.contiguous()
                meta["cases"][case] = {"samples": n, "seed": seed}
            n, seed, rate = STEREO
            stereo = test_signal(n, seed=seed, sample_rate=rate, channels=2)
            mono24 = convert_audio(stereo, rate, 24000, 1)
            features, codes = ref.encode_infer(mono24, bandwidth_id=bw)
            tensors["stereo.ids"] = codes[0].contiguous()
            tensors["stereo.gap"] = top2_gap(encoder(mono24[:, None]), sd[CODEBOOK_KEY]).contiguous()
            meta["stereo"] = {"samples": n, "seed": seed, "sample_rate": rate, "channels": 2}
        save_file(tensors, str(out_dir / f"{name}.safetensors"), metadata={"meta": json.dumps(meta)})
        ids = tensors["a.ids"]
        print(f"{name}: {len(manifest)} keys; case a: {ids.shape[-1]} ids, {ids.unique().numel()} distinct")


RESAMPLE_LENGTH = 1500  # + 7 * case index; inputs are regenerated from test_signal, only outputs are stored
RESAMPLE_CASES = [(44100, 24000), (16000, 24000), (48000, 24000), (22050, 24000), (24000, 16000), (8000, 24000)]


def record_resample(out_dir: Path) -> None:
    """torchaudio.functional.resample (the reference's resampler) outputs for zoo.media.audio tests."""
    import torchaudio.functional as AF  # noqa: PLC0415  (pure-Python part of torchaudio)

    from safetensors.torch import save_file  # noqa: PLC0415
    from zoo_plugins.wavtokenizer.testing import test_signal  # noqa: PLC0415

    tensors = {}
    for i, (orig, new) in enumerate(RESAMPLE_CASES):
        x = test_signal(RESAMPLE_LENGTH + 7 * i, seed=100 + i, sample_rate=orig, channels=2)
        tensors[f"{orig}_{new}.out"] = AF.resample(x, orig, new).contiguous()
    save_file(tensors, str(out_dir / "resample_torchaudio.safetensors"),
              metadata={"meta": json.dumps({"torchaudio": "functional.resample defaults (sinc_interp_hann, width 6, rolloff 0.99)",
                                             "length": RESAMPLE_LENGTH, "seed": 100, "channels": 2})})
    print(f"resample: {len(RESAMPLE_CASES)} cases")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ref", type=Path, help="checkout of jishengpeng/WavTokenizer")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[2] / "tests/fixtures/wavtokenizer")
    args = parser.parse_args()
    if args.ref is None or not (args.ref / "decoder" / "pretrained.py").is_file():
        print(f"reference checkout not found ({args.ref}); nothing recorded")
        return
    record(args.ref.resolve(), args.out)
    record_resample(args.out)


if __name__ == "__main__":
    main()
