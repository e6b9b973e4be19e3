"""Record TiTok / One-D-Piece parity fixtures by running the reference implementations.

Runs the official code (bytedance/1d-tokenizer and turingmotors/One-D-Piece, mirrored under
/tmp, never committed) on deterministic per-key random weights and writes small data fixtures
to ``tests/fixtures/titok/``:

* ``manifests.json.gz``: key/shape manifests of the reference model at every published config,
  and ``reference_configs.json``: those configs as the repos' yaml files give them;
* ``<case>.safetensors`` + ``cases.json``: inputs, the VQ codebook set from encoder outputs,
  pre-quantisation latents, ids, top-2 distance gaps and decoded images for small configs.

Usage:
    python scripts/parity/record_titok.py --ref /tmp/ref/1d-tokenizer --ref-odp /tmp/ref/one-d-piece

Either reference may be absent: that part is skipped with a message.
"""

from __future__ import annotations

import argparse
import copy
import gzip
import json
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "tests" / "fixtures" / "titok"
SEED = 1234

# Published configs: the repos' yaml files (the same trees as the hub config.json), by zoo card.
PUBLISHED = {
    "titok.l_32": "configs/infer/TiTok/titok_l32.yaml",
    "titok.b_64": "configs/infer/TiTok/titok_b64.yaml",
    "titok.s_128": "configs/infer/TiTok/titok_s128.yaml",
    "titok.bl_64_vq8k": "configs/infer/TiTok/titok_bl64_vq8k.yaml",
    "titok.bl_128_vq8k": "configs/infer/TiTok/titok_bl128_vq8k.yaml",
    "titok.sl_256_vq8k": "configs/infer/TiTok/titok_sl256_vq8k.yaml",
    "titok.ll_32_vae": "configs/infer/TiTok/titok_ll32_vae_c16.yaml",
    "titok.bl_64_vae": "configs/infer/TiTok/titok_bl64_vae_c16.yaml",
    "titok.bl_128_vae": "configs/infer/TiTok/titok_bl128_vae_c16.yaml",
    "one_d_piece.s_256": "configs/one-d-piece_s256.yaml",
    "one_d_piece.b_256": "configs/one-d-piece_b256.yaml",
    "one_d_piece.l_256": "configs/one-d-piece_l256.yaml",
}

_LEGACY = dict(codebook_size=4096, token_size=12, use_l2_norm=True, commitment_cost=0.25,
               vit_enc_patch_size=16, vit_dec_patch_size=16, finetune_decoder=True)
_VQ8K = dict(codebook_size=8192, token_size=64, use_l2_norm=False, commitment_cost=0.25,
             vit_enc_patch_size=16, vit_dec_patch_size=16, finetune_decoder=False, is_legacy=False)
_VAE = dict(quantize_mode="vae", token_size=16, vit_enc_patch_size=16, vit_dec_patch_size=16,
            finetune_decoder=False, is_legacy=False)


def _sizes(enc: str, dec: str, n: int) -> dict:
    return dict(vit_enc_model_size=enc, vit_dec_model_size=dec, num_latent_tokens=n)


# Small parity cases: published arithmetic at a small crop (grid 3x3) and small codebooks.
CASES = {
    "legacy_vq": dict(ref="titok", crop=48, batch=2, vq={**_LEGACY, **_sizes("small", "small", 16), "codebook_size": 64}),
    "vq8k": dict(ref="titok", crop=48, batch=2, vq={**_VQ8K, **_sizes("small", "small", 16), "codebook_size": 96}),
    "vae": dict(ref="titok", crop=48, batch=2, vq={**_VAE, **_sizes("small", "small", 16)}),
    "one_d_piece": dict(ref="odp", crop=48, batch=2, prefixes=[1, 7, 24],
                        vq={**_LEGACY, **_sizes("small", "small", 24), "codebook_size": 64,
                            "strict_length_assertion": False}),
}


def tree(vq: dict, crop: int = 256) -> dict:
    """The official nested config layout."""
    return {"model": {"vq_model": dict(vq)}, "dataset": {"preprocessing": {"crop_size": crop}}}


def import_reference(path: Path, odp: bool):
    """Import the reference's model classes from ``path`` (fresh module cache per repo)."""
    for name in [m for m in sys.modules if m == "modeling" or m.startswith("modeling.")]:
        del sys.modules[name]
    sys.path.insert(0, str(path))
    try:
        if odp:
            from modeling.one_d_piece import OneDPiece as cls
        else:
            from modeling.titok import TiTok as cls
        quantizer = __import__("modeling.quantizer.quantizer", fromlist=["_"])
    finally:
        sys.path.remove(str(path))
    return cls, getattr(quantizer, "DiagonalGaussianDistribution", None)  # absent in One-D-Piece


def build_reference(cls, cfg: dict, device: str = "cpu"):
    from omegaconf import OmegaConf

    with torch.device(device):
        return cls(OmegaConf.create(copy.deepcopy(cfg)))


def images(n: int, size: int, seed: int) -> torch.Tensor:
    """Smooth-ish random images in [0, 1], exactly representable as uint8/255."""
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(n, 3, size // 8, size // 8, generator=g)
    x = torch.nn.functional.interpolate(low, size=(size, size), mode="bilinear", align_corners=False)
    x = (x + 0.25 * torch.rand(n, 3, size, size, generator=g)).clamp(0, 1)
    return (x * 255).round().to(torch.uint8)


def record_manifests(ref: Path | None, ref_odp: Path | None) -> None:
    """Manifests of the reference model at every published config, plus those configs."""
    from omegaconf import OmegaConf

    from zoo.testing.weights import state_manifest

    manifests, configs = {}, {}
    for name, rel in PUBLISHED.items():
        odp = name.startswith("one_d_piece")
        path = ref_odp if odp else ref
        if path is None:
            print(f"skip manifest {name}: reference not given")
            continue
        conf = OmegaConf.to_container(OmegaConf.load(path / rel), resolve=True)
        # keep what describes the model (the rest are training paths and schedules)
        configs[name] = {"source": rel, "model": {"vq_model": conf["model"]["vq_model"]},
                         "dataset": {"preprocessing": conf["dataset"]["preprocessing"]}}
        cls, _ = import_reference(path, odp=odp)
        model = build_reference(cls, conf, device="meta")
        manifests[name] = {k: [list(s), d] for k, (s, d) in state_manifest(model).items()}
        print(f"manifest {name} ({rel}): {len(manifests[name])} keys")
    if manifests:
        path = OUT / "manifests.json.gz"
        old = json.loads(gzip.decompress(path.read_bytes())) if path.exists() else {}
        old.update(manifests)
        path.write_bytes(gzip.compress(json.dumps(old, sort_keys=True).encode(), mtime=0))
        cpath = OUT / "reference_configs.json"
        old = json.loads(cpath.read_text()) if cpath.exists() else {}
        old.update(configs)
        cpath.write_text(json.dumps(old, indent=1, sort_keys=True) + "\n")


def record_case(name: str, spec: dict, path: Path) -> dict:
    from safetensors.torch import save_file

    from zoo.testing.weights import seeded_state_dict, state_manifest

    cls, gaussian = import_reference(path, odp=spec["ref"] == "odp")
    cfg = tree(spec["vq"], spec["crop"])
    model = build_reference(cls, cfg).eval()
    manifest = state_manifest(model)
    sd = seeded_state_dict(manifest, seed=SEED)
    model.load_state_dict(sd, strict=True)
    crop, batch = spec["crop"], spec["batch"]
    tensors: dict[str, torch.Tensor] = {}
    with torch.no_grad():
        if "quantize" in dict(model.named_children()):
            # Codebook from encoder outputs of seeded calibration images (+ noise against ties).
            calib = images(8, crop, seed=SEED + 1).float() / 255
            zc = model.encoder(pixel_values=calib, latent_tokens=model.latent_tokens)
            pool = zc.permute(0, 2, 3, 1).reshape(-1, zc.shape[1])
            g = torch.Generator().manual_seed(SEED + 2)
            k = model.quantize.embedding.weight.shape[0]
            pick = torch.randint(0, pool.shape[0], (k,), generator=g)
            cb = pool[pick] + 0.05 * pool.std() * torch.randn(k, pool.shape[1], generator=g)
            model.quantize.embedding.weight.copy_(cb)
            tensors["codebook"] = cb.clone()
        x8 = images(batch, crop, seed=SEED + 3)
        x = x8.float() / 255
        tensors["images_uint8"] = x8
        z = model.encoder(pixel_values=x, latent_tokens=model.latent_tokens)
        tensors["latents"] = z
        if spec["vq"].get("quantize_mode", "vq") == "vq":
            _, res = model.quantize(z)
            ids = res["min_encoding_indices"]  # [B, 1, N]
            tensors["ids"] = ids.reshape(batch, -1)
            # top-2 distance gap (as the reference computes distances) to flag near-ties
            zf = torch.nn.functional.normalize(z.permute(0, 2, 3, 1).reshape(-1, z.shape[1]), dim=-1) \
                if model.quantize.use_l2_norm else z.permute(0, 2, 3, 1).reshape(-1, z.shape[1])
            e = model.quantize.embedding.weight
            e = torch.nn.functional.normalize(e, dim=-1) if model.quantize.use_l2_norm else e
            d = (zf**2).sum(1, keepdim=True) + (e**2).sum(1) - 2 * zf @ e.t()
            top2 = d.topk(2, dim=1, largest=False).values
            tensors["gap"] = (top2[:, 1] - top2[:, 0]).reshape(batch, -1)
            if spec["ref"] == "odp":
                for n in spec["prefixes"]:
                    tensors[f"decoded_{n}"] = model.decode_tokens(ids, length=n)
            else:
                tensors["decoded"] = model.decode_tokens(ids)
        else:
            mean = gaussian(z).mode()
            tensors["mean"] = mean
            tensors["decoded"] = model.decode(mean)
    tensors = {k: v.contiguous() for k, v in tensors.items()}
    save_file(tensors, str(OUT / f"{name}.safetensors"))
    print(f"case {name}: " + ", ".join(f"{k}{tuple(v.shape)}" for k, v in tensors.items()))
    return {"config": cfg, "seed": SEED, "batch": batch, "prefixes": spec.get("prefixes"),
            "manifest": {k: [list(s), d] for k, (s, d) in manifest.items()}}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ref", type=Path, help="checkout of bytedance/1d-tokenizer")
    p.add_argument("--ref-odp", type=Path, help="checkout of turingmotors/One-D-Piece")
    p.add_argument("--only", nargs="*", help="record only these cases / 'manifests'")
    args = p.parse_args(argv)
    for label, path in (("--ref", args.ref), ("--ref-odp", args.ref_odp)):
        if path is not None and not (path / "modeling").is_dir():
            print(f"{label} {path}: no modeling/ package there; skipping that reference")
            setattr(args, "ref" if label == "--ref" else "ref_odp", None)
    if args.ref is None and args.ref_odp is None:
        print("no reference given (--ref / --ref-odp): nothing to record")
        return 0
    torch.set_num_threads(1)
    OUT.mkdir(parents=True, exist_ok=True)
    if not args.only or "manifests" in args.only:
        record_manifests(args.ref, args.ref_odp)
    index_path = OUT / "cases.json"
    index = json.loads(index_path.read_text()) if index_path.exists() else {}
    for name, spec in CASES.items():
        if args.only and name not in args.only:
            continue
        path = args.ref_odp if spec["ref"] == "odp" else args.ref
        if path is None:
            print(f"skip case {name}: reference not given")
            continue
        index[name] = record_case(name, spec, path)
    index_path.write_text(json.dumps(index, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
