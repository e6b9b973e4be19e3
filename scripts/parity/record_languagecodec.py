"""Record Language-Codec parity fixtures by running the reference (jishengpeng/Languagecodec).

    PYTHONPATH=/tmp/pylib_lc python scripts/parity/record_languagecodec.py --ref /tmp/ref/languagecodec [--out tests/fixtures/languagecodec]

``--ref`` is a checkout of github.com/jishengpeng/Languagecodec (not part of zoo). It imports
``encodec`` (PyPI, for its ``EncodecModel`` container), ``einops`` and ``torchaudio`` at module
level; torchaudio's compiled ops do not load with torch 2.13, so a stub package that defines
the names imported at module level (unused by inference) on ``PYTHONPATH`` is enough.

Writes the key/shape manifest of the reference at the published config
(``configs/languagecodec_mm.yaml``: what ``from_pretrained0802`` loads) and at the small
parity config (published encoder and quantizer -- the reference hard-codes them -- with a
small Vocos backbone), and for the small one ``small.safetensors`` with, for a seeded batch:
a channel subset of the encoder latents, the codes of the inference path (``encode_infer``,
``[8, B, T]``), the features it returns, and the decode of ``codes_to_features(codes)``. Weights
are never written: both sides regenerate them (``zoo_plugins.languagecodec.testing``).
Without ``--ref`` it exits 0 with a note.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import torch

WEIGHT_SEED = 0
BATCH, SAMPLES = 2, 9637
LATENT_CHANNELS = slice(0, None, 8)


def build_reference(backbone: dict):
    from languagecodec_decoder.feature_extractors import EncodecFeatures  # noqa: PLC0415  (reference code)
    from languagecodec_decoder.heads import ISTFTHead  # noqa: PLC0415
    from languagecodec_decoder.models import VocosBackbone  # noqa: PLC0415
    from languagecodec_decoder.pretrained import Vocos  # noqa: PLC0415

    fe = EncodecFeatures(encodec_model="encodec_24khz", bandwidths=[6.6, 6.6, 6.6, 6.6], train_codebooks=True)
    bb = VocosBackbone(input_channels=128, dim=backbone["backbone_dim"], intermediate_dim=backbone["intermediate_dim"],
                       num_layers=backbone["num_layers"], adanorm_num_embeddings=4)
    head = ISTFTHead(dim=backbone["backbone_dim"], n_fft=1280, hop_length=320, padding="same")
    return Vocos(feature_extractor=fe, backbone=bb, head=head).eval()


def record(ref_dir: Path, out_dir: Path) -> None:
    sys.path.insert(0, str(ref_dir))
    from safetensors.torch import save_file  # noqa: PLC0415
    from zoo_plugins.languagecodec.testing import PUBLISHED, SMALL, calibrate_codebooks, parity_state_dict, test_signal  # noqa: PLC0415

    from zoo.testing.weights import save_manifest, state_manifest  # noqa: PLC0415

    torch.set_num_threads(1)
    commit = subprocess.run(["git", "-C", str(ref_dir), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    out_dir.mkdir(parents=True, exist_ok=True)
    save_manifest(state_manifest(build_reference(PUBLISHED)), out_dir / "manifest_published.json")
    ref = build_reference(SMALL)
    manifest = state_manifest(ref)
    save_manifest(manifest, out_dir / "manifest_small.json")
    sd = parity_state_dict(manifest, seed=WEIGHT_SEED)
    ref.load_state_dict(sd)
    with torch.inference_mode():
        sd = calibrate_codebooks(sd, lambda w: ref.feature_extractor.encodec.encoder(w[:, None]), seed=WEIGHT_SEED)
    ref.load_state_dict(sd)
    wav = test_signal(SAMPLES, seed=1, batch=BATCH)
    bw = torch.tensor([0])
    with torch.inference_mode():
        latents = ref.feature_extractor.encodec.encoder(wav[:, None])
        features, codes = ref.encode_infer(wav, bandwidth_id=bw)
        audio = ref.decode(ref.codes_to_features(codes), bandwidth_id=bw)
        audio_q4 = ref.decode(ref.codes_to_features(codes[:4]), bandwidth_id=bw)
    tensors = {"input": wav, "latents": latents[:, LATENT_CHANNELS].contiguous(), "codes": codes, "features": features,
               "audio": audio, "audio_q4": audio_q4}
    meta = {"reference": f"jishengpeng/Languagecodec@{commit or 'unknown'}", "config": json.dumps(SMALL), "weight_seed": str(WEIGHT_SEED),
            "latent_channels": "0::8"}
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(out_dir / "small.safetensors"), metadata=meta)
    print(f"small: codes {tuple(codes.shape)} ({codes.unique().numel()} distinct), audio {tuple(audio.shape)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ref", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=Path("tests/fixtures/languagecodec"))
    args = parser.parse_args()
    if args.ref is None or not (args.ref / "languagecodec_decoder").is_dir():
        print("no reference checkout given (--ref /path/to/Languagecodec); nothing recorded")
        return
    record(args.ref, args.out)


if __name__ == "__main__":
    main()
