"""Record parity fixtures of OmniTokenizer's factorised space-time transformer (``zoo.nn.spacetime``).

    PYTHONPATH=/tmp/pylib python scripts/parity/record_spacetime.py --ref /tmp/ref/OmniTokenizer --commit SHA

``--ref`` is a checkout of github.com/FoundationVision/OmniTokenizer. Only its
``OmniTokenizer/modules/attention.py`` is imported (``beartype`` and ``fairscale`` are replaced by
no-op stand-ins: a type-checking decorator and an activation-checkpoint wrapper it does not use
at inference; timm must be importable). Writes ``tests/fixtures/omnitokenizer/spacetime.safetensors``
and ``spacetime.json``: for each case, the reference ``Transformer``'s key/shape manifest, the
seed of its per-key seeded weights (the window attention's integer ``relative_position_index``
keeps its computed value), the input and the output.

Without ``--ref`` (or if it is missing) the script says so and exits 0.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import types
from pathlib import Path

import torch

SEED = 11
B, T, H, W, D = 2, 3, 4, 4, 32
CASES = {
    "spatial_rel_window": ({"dim": D, "depth": 3, "block": "twt", "dim_head": 8, "heads": 4, "peg": True, "peg_causal": True,
                            "window_size": 2, "spatial_pos": "rel"}, "spatial"),
    "temporal_causal": ({"dim": D, "depth": 2, "block": "tt", "dim_head": 8, "heads": 4, "peg": True, "peg_causal": True,
                         "causal": True}, "temporal"),
    "spatial_rope": ({"dim": D, "depth": 2, "block": "tt", "dim_head": 8, "heads": 4, "spatial_pos": "rope"}, "spatial"),
}


def _reference(ref: Path):
    bt = types.ModuleType("beartype")
    bt.beartype = lambda f: f
    fs, fsnn = types.ModuleType("fairscale"), types.ModuleType("fairscale.nn")
    fsnn.checkpoint_wrapper = lambda m, *a, **k: m
    fs.nn = fsnn
    sys.modules.update({"beartype": bt, "fairscale": fs, "fairscale.nn": fsnn})
    from zoo.compat.torchvision import ensure_torchvision  # noqa: PLC0415

    ensure_torchvision()
    spec = importlib.util.spec_from_file_location("omni_attention", ref / "OmniTokenizer/modules/attention.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def record(ref: Path, out: Path, commit: str) -> None:
    from safetensors.torch import save_file  # noqa: PLC0415
    from zoo.testing.weights import seeded_state_dict, state_manifest  # noqa: PLC0415

    attn = _reference(ref)
    torch.set_num_threads(1)
    out.mkdir(parents=True, exist_ok=True)
    tensors, meta = {}, {"commit": commit, "seed": SEED, "video_shape": [B, T, H, W], "cases": {}}
    g = torch.Generator().manual_seed(SEED)
    for name, (kwargs, kind) in CASES.items():
        model = attn.Transformer(**kwargs).eval()
        manifest = state_manifest(model)
        own = model.state_dict()  # integer index buffers keep their computed values (seeding gives zeros)
        sd = {k: (own[k] if k.endswith("relative_position_index") else v) for k, v in seeded_state_dict(manifest, seed=SEED).items()}
        model.load_state_dict(sd, strict=True)
        x = torch.randn((B * T, H * W, D) if kind == "spatial" else (B * H * W, T, D), generator=g)
        with torch.no_grad():
            y = model(x, video_shape=(B, T, H, W), is_spatial=kind == "spatial")
        tensors[f"{name}.input"], tensors[f"{name}.output"] = x, y.contiguous()
        meta["cases"][name] = {"kwargs": kwargs, "kind": kind, "manifest": {k: [list(s), d] for k, (s, d) in manifest.items()}}
        print(f"{name}: {len(manifest)} keys, output std {float(y.std()):.3f}")
    save_file(tensors, str(out / "spacetime.safetensors"))
    (out / "spacetime.safetensors").chmod(0o644)
    (out / "spacetime.json").write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ref", type=Path, default=None, help="checkout of github.com/FoundationVision/OmniTokenizer")
    parser.add_argument("--commit", default="unknown")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[2] / "tests/fixtures/omnitokenizer")
    args = parser.parse_args()
    if args.ref is None or not (args.ref / "OmniTokenizer/modules/attention.py").is_file():
        print("no OmniTokenizer checkout given (--ref); nothing recorded")
        return
    record(args.ref, args.out, args.commit)


if __name__ == "__main__":
    main()
