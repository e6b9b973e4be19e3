"""Record SpeechTokenizer / DM-Codec parity fixtures by running the reference implementations.

    PYTHONPATH=/tmp/pylib python scripts/parity/record_speechtokenizer.py --ref /tmp/ref/st \
        [--dmcodec /tmp/ref/dmc] [--out tests/fixtures/speechtokenizer]

``--ref`` is a checkout of github.com/ZhangXInFD/SpeechTokenizer, ``--dmcodec`` one of
github.com/mubtasimahasan/DM-Codec (neither part of zoo; they need einops). The package
``__init__`` (which imports the trainer) is bypassed: only ``model.py`` and its modules load.
Writes key/shape manifests of the reference at every published config (and of DM-Codec's
``Model`` at its repo config.json), and for the small configs and ``hubert_avg`` a
``<cfg>.safetensors`` with, for a seeded input: a channel subset of the encoder latents, the codes
``[B, n_q, T]``, the reference decode of the reference codes with all levels, with level 0 only
and with 2 levels, and the semantic feature of ``forward``. Weights are never written (both sides
regenerate them with ``zoo_plugins.speechtokenizer.testing``). Without ``--ref`` it exits 0.
"""

from __future__ import annotations

import argparse
import importlib
import json
import subprocess
import sys
import types
from pathlib import Path

import torch

WEIGHT_SEED = 0
CASES = {"elu": (2, 3000), "snake_small": (2, 2100), "hubert_avg": (1, 8000)}  # config: (batch, samples)
LATENT_CHANNELS = slice(0, None, 8)


def _load_model_module(root: Path, package: str, module: str):
    """Import ``package.module`` from ``root`` without running the package's ``__init__``."""
    pkg = types.ModuleType(package)
    pkg.__path__ = [str(root / package)]
    sys.modules[package] = pkg
    return importlib.import_module(f"{package}.{module}")


def record(ref_dir: Path, dm_dir: Path | None, out_dir: Path) -> None:
    from safetensors.torch import save_file  # noqa: PLC0415
    from zoo_plugins.speechtokenizer.testing import PUBLISHED, SMALL, calibrated_codebooks, codebook_key, parity_state_dict, test_signal  # noqa: PLC0415

    from zoo.testing.weights import save_manifest, state_manifest  # noqa: PLC0415

    torch.set_num_threads(1)
    ref_cls = _load_model_module(ref_dir, "speechtokenizer", "model").SpeechTokenizer
    commit = subprocess.run(["git", "-C", str(ref_dir), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, cfg in {**SMALL, **PUBLISHED}.items():
        ref = ref_cls(cfg).eval()
        manifest = state_manifest(ref)
        save_manifest(manifest, out_dir / f"manifest_{name}.json")
        if name not in CASES:
            continue
        sd = parity_state_dict(manifest, seed=WEIGHT_SEED)
        ref.load_state_dict(sd)
        with torch.inference_mode():
            books = calibrated_codebooks(ref.encoder, cfg["codebook_size"], cfg["n_q"], seed=WEIGHT_SEED)
        for level, book in enumerate(books):
            sd[codebook_key(level)] = book
        ref.load_state_dict(sd)
        batch, n = CASES[name]
        wav = test_signal(n, seed=1, batch=batch)
        t: dict[str, torch.Tensor] = {"input": wav}
        with torch.inference_mode():
            t["latents"] = ref.encoder(wav)[:, LATENT_CHANNELS].contiguous()
            codes = ref.encode(wav)  # [n_q, B, T]
            t["codes"] = codes.transpose(0, 1).contiguous()
            t["decode_all"] = ref.decode(codes)
            t["decode_q1"] = ref.decode(codes[:1])
            t["decode_q2"] = ref.decode(codes[:2])
            t["feature"] = ref(wav)[2]
        meta = {"reference": f"ZhangXInFD/SpeechTokenizer@{commit or 'unknown'}", "config": json.dumps(cfg),
                "weight_seed": str(WEIGHT_SEED), "latent_channels": "0::8"}
        save_file(t, str(out_dir / f"{name}.safetensors"), metadata=meta)
        print(f"{name}: codes {tuple(t['codes'].shape)}, audio {tuple(t['decode_all'].shape)}")
    if dm_dir is not None:
        dm_cls = _load_model_module(dm_dir, "codec", "model").Model
        dm_cfg = json.loads((dm_dir / "config.json").read_text())
        save_manifest(state_manifest(dm_cls(dm_cfg)), out_dir / "manifest_dm_codec.json")
        print("dm_codec: manifest written")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ref", type=Path, default=None)
    parser.add_argument("--dmcodec", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=Path("tests/fixtures/speechtokenizer"))
    args = parser.parse_args()
    if args.ref is None or not (args.ref / "speechtokenizer").is_dir():
        print("no reference checkout given (--ref /path/to/SpeechTokenizer); nothing recorded")
        return
    record(args.ref, args.dmcodec if args.dmcodec and (args.dmcodec / "codec").is_dir() else None, args.out)


if __name__ == "__main__":
    main()
