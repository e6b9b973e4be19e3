"""Record SNAC parity fixtures by running the reference implementation (hubertsiuzdak/snac).

    PYTHONPATH=/tmp/pylib python scripts/parity/record_snac.py --ref /tmp/ref/snac [--out tests/fixtures/snac]

``--ref`` is a checkout of github.com/hubertsiuzdak/snac (not part of zoo; it needs einops).
For every published config (``zoo_plugins.snac.testing.PUBLISHED``) this writes the key/shape
manifest of the reference model (what ``SNAC.from_pretrained`` loads); for the small configs
and the 24 and 32 kHz published ones it writes ``<cfg>.safetensors`` with, for a seeded input:
a channel subset of the encoder latents, the ids of every level, and the reference decode of
the reference ids after ``torch.manual_seed(s)`` for two seeds. Weights are never written:
both sides regenerate them with ``parity_state_dict``. Without ``--ref`` it exits 0 with a note.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import torch

WEIGHT_SEED = 0
NOISE_SEEDS = (0, 7)
CASES = {"attn": (2, 1500), "plain": (2, 1100), "24khz": (1, 5000), "32khz": (1, 13000)}  # config: (batch, samples)
LATENT_CHANNELS = slice(0, None, 16)


def record(ref_dir: Path, out_dir: Path) -> None:
    sys.path.insert(0, str(ref_dir))
    from safetensors.torch import save_file  # noqa: PLC0415
    from snac import SNAC  # noqa: PLC0415  (reference code, from --ref)
    from zoo_plugins.snac.testing import PUBLISHED, SMALL, parity_state_dict, test_signal  # noqa: PLC0415

    from zoo.testing.weights import save_manifest, state_manifest  # noqa: PLC0415

    torch.set_num_threads(1)
    commit = subprocess.run(["git", "-C", str(ref_dir), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    out_dir.mkdir(parents=True, exist_ok=True)
    configs = {**SMALL, **PUBLISHED}
    for name, cfg in configs.items():
        ref = SNAC(**cfg).eval()
        manifest = state_manifest(ref)
        save_manifest(manifest, out_dir / f"manifest_{name}.json")
        if name not in CASES:
            continue
        ref.load_state_dict(parity_state_dict(manifest, seed=WEIGHT_SEED))
        batch, n = CASES[name]
        wav = test_signal(n, seed=1, sample_rate=cfg["sampling_rate"], batch=batch)
        tensors = {"input": wav}
        with torch.inference_mode():
            z = ref.encoder(ref.preprocess(wav))
            tensors["latents"] = z[:, LATENT_CHANNELS].contiguous()
            codes = ref.encode(wav)
            for level, c in enumerate(codes):
                tensors[f"codes_{level}"] = c
            for s in NOISE_SEEDS:
                torch.manual_seed(s)
                tensors[f"decode_seed{s}"] = ref.decode(codes)
        meta = {"reference": f"hubertsiuzdak/snac@{commit or 'unknown'}", "config": json.dumps(cfg), "weight_seed": str(WEIGHT_SEED),
                "noise_seeds": json.dumps(NOISE_SEEDS), "latent_channels": "0::16"}
        save_file({k: v.contiguous() for k, v in tensors.items()}, str(out_dir / f"{name}.safetensors"), metadata=meta)
        print(f"{name}: levels {[tuple(c.shape) for c in codes]}, audio {tuple(tensors['decode_seed0'].shape)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ref", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=Path("tests/fixtures/snac"))
    args = parser.parse_args()
    if args.ref is None or not (args.ref / "snac").is_dir():
        print("no reference checkout given (--ref /path/to/snac); nothing recorded")
        return
    record(args.ref, args.out)


if __name__ == "__main__":
    main()
