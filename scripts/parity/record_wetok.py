"""Record WeTok parity fixtures by running the reference implementation.

    PYTHONPATH=/tmp/pylib python scripts/parity/record_wetok.py --ref /tmp/ref/wetok [--out tests/fixtures/wetok]

``--ref`` is a checkout of github.com/zhuangshaobin/WeTok (not part of zoo). Its model module
imports ``lightning`` and ``einops`` (install them outside the project, e.g.
``pip install --no-deps --target /tmp/pylib lightning lightning-utilities torchmetrics einops``)
and, through torchvision, needs the ``torchvision::nms`` op schema defined (a
``sitecustomize.py`` on ``PYTHONPATH``; see docs/REFERENCES). The script writes:

* ``manifests.json.gz`` -- key/shape manifests of the reference ``VQModel`` state dict
  (``encoder.*``, ``decoder.*``, ``model_ema.*``; built on the meta device) at every config in
  ``configs/WeToK/Inference`` (the ``*_imagenet.yaml`` ones; the ``*_mscoco.yaml`` twins are the
  same architectures), and ``reference_configs.json`` -- the values read from those files;
* ``<case>.safetensors`` for the small configs of ``zoo_plugins.wetok.testing.PARITY_CONFIGS``:
  inputs, encoder latents, LFQ codes and ids, decode of the quantised latents, and decode of
  the reference's ids through ``LFQ.decode``, all computed inside ``VQModel.ema_scope()`` after
  loading a release-style state dict (training weights, different EMA shadows, ``loss.*``) the
  way ``reconstruct_image.py`` does. The generative decoder's noise is ``torch.randn_like``
  after ``torch.manual_seed(NOISE_SEED)`` and is stored (``noise`` for the encoder's quantised
  latent, which is channels-last in memory, so ``randn_like`` lays the same draws out differently
  than for the contiguous codes of ``LFQ.decode``: ``noise_ids``).

Weights are never written: both sides regenerate them with ``zoo_plugins.wetok.testing``.
Without ``--ref`` (or if it is missing) the script says so and exits 0.
"""

from __future__ import annotations

import argparse
import gzip
import json
import subprocess
import sys
from pathlib import Path

import torch
import yaml

NOISE_SEED = 1234
BATCH, SIZE, IMAGE_SEED = 2, 32, 0


def _init_args(cfg: dict, loss_target: str = "torch.nn.Identity") -> dict:
    ddconfig = {"double_z": False, "z_channels": cfg["z_channels"], "resolution": 128, "in_channels": 3, "out_ch": 3,
                "ch": cfg["ch"], "ch_mult": list(cfg["ch_mult"]), "num_res_blocks": cfg["num_res_blocks"]}
    return {"ddconfig": ddconfig, "lossconfig": {"target": loss_target}, "n_embed": cfg["n_embed"],
            "embed_dim": cfg["z_channels"], "num_codebooks": cfg["num_codebooks"], "sample_minimization_weight": 1.0,
            "batch_maximization_weight": 1.0, "use_ema": True, "gan_decoder": bool(cfg.get("gan_decoder", False)),
            "scheduler_type": "None"}


def published_configs(ref: Path) -> dict[str, dict]:
    out = {}
    for path in sorted((ref / "configs/WeToK/Inference").glob("*_imagenet.yaml")):
        args = yaml.safe_load(path.read_text())["model"]["init_args"]
        dd = args["ddconfig"]
        out[path.stem.removesuffix("_imagenet")] = {
            "ch": dd["ch"], "ch_mult": list(dd["ch_mult"]), "num_res_blocks": dd["num_res_blocks"],
            "z_channels": dd["z_channels"], "n_embed": args["n_embed"], "num_codebooks": args.get("num_codebooks", 1),
            "gan_decoder": bool(args.get("gan_decoder", False)), "use_GFQ": bool(args.get("use_GFQ", False)),
            "embed_dim": args["embed_dim"], "yaml": str(path.relative_to(ref))}
    return out


def record(ref: Path, out: Path, commit: str = "") -> None:
    sys.path.insert(0, str(ref))
    from src.WeTok.models.lfqgan import VQModel  # noqa: PLC0415  (reference code, from --ref)

    from safetensors.torch import save_file  # noqa: PLC0415
    from zoo.testing.weights import state_manifest  # noqa: PLC0415
    from zoo_plugins.wetok.testing import PARITY_CONFIGS, release_state_dict, test_images  # noqa: PLC0415

    torch.set_num_threads(1)
    commit = commit or subprocess.run(["git", "-C", str(ref), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    out.mkdir(parents=True, exist_ok=True)
    configs = published_configs(ref)
    manifests = {}
    for name, cfg in configs.items():
        with torch.device("meta"):
            model = VQModel(**_init_args(cfg))
        manifests[name] = {k: [list(s), d] for k, (s, d) in state_manifest(model).items()}
        n = sum(v.numel() for k, v in model.state_dict().items() if k.startswith(("encoder.", "decoder.")))
        print(f"manifest {name}: {len(manifests[name])} keys, {n / 1e6:.1f}M generator values")
    (out / "manifests.json.gz").write_bytes(gzip.compress(json.dumps(manifests, sort_keys=True).encode(), mtime=0))
    (out / "reference_configs.json").write_text(json.dumps(configs, indent=1, sort_keys=True) + "\n")

    cases = {}
    for name, cfg in PARITY_CONFIGS.items():
        model = VQModel(**_init_args(cfg)).eval()
        sd = release_state_dict(state_manifest(model))
        missing, unexpected = model.load_state_dict(sd)  # strict=False, as reconstruct_image.py loads
        assert not missing and sorted(unexpected) == sorted(k for k in sd if k.startswith("loss.")), (missing, unexpected)
        x = test_images(BATCH, SIZE, seed=IMAGE_SEED)
        t = {"images": x}
        with torch.no_grad(), model.ema_scope():
            latents = model.encoder(x)
            quant, _, indices, _ = model.encode(x)
            b, c, h, w = quant.shape
            torch.manual_seed(NOISE_SEED)
            noise = torch.randn_like(quant)
            torch.manual_seed(NOISE_SEED)
            rec = model.decode(quant)
            codes_from_ids = model.quantize.decode(indices.view(b, h * w, -1))  # [B, N, G*K]
            codes_from_ids = codes_from_ids.view(b, h, w, c).permute(0, 3, 1, 2).contiguous()
            torch.manual_seed(NOISE_SEED)
            noise_ids = torch.randn_like(codes_from_ids)  # contiguous: other values than `noise`
            torch.manual_seed(NOISE_SEED)
            rec_ids = model.decode(codes_from_ids)
        with torch.no_grad():  # outside ema_scope: the training weights (what a loader without EMA gives)
            torch.manual_seed(NOISE_SEED)
            rec_train = model.decode(model.encode(x)[0])
        t.update({"latents": latents, "codes": quant.contiguous(), "ids_flat": indices.contiguous(), "reconstruction": rec,
                  "decode_of_ids": rec_ids, "noise": noise, "noise_ids": noise_ids,
                  "reconstruction_training_weights": rec_train})
        save_file({k: v.contiguous() for k, v in t.items()}, str(out / f"{name}.safetensors"))
        cases[name] = {**cfg, "batch": BATCH, "size": SIZE, "image_seed": IMAGE_SEED, "noise_seed": NOISE_SEED,
                       "min_abs_latent": float(latents.abs().min()),
                       "bit_balance": float((latents > 0).float().mean())}
        print(f"case {name}: latents {tuple(latents.shape)}, ids {tuple(indices.shape)} "
              f"({int(indices.unique().numel())} distinct), min |z| {cases[name]['min_abs_latent']:.2e}")
    meta = {"reference": f"zhuangshaobin/WeTok@{commit or 'unknown'}", "torch": torch.__version__, "cases": cases}
    (out / "cases.json").write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ref", type=Path, default=None, help="checkout of zhuangshaobin/WeTok")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[2] / "tests/fixtures/wetok")
    parser.add_argument("--commit", default="", help="the reference's commit, when --ref is an unpacked archive")
    args = parser.parse_args()
    if args.ref is None or not (args.ref / "src/WeTok/models/lfqgan.py").exists():
        print("reference not given or not found (--ref /path/to/WeTok); nothing recorded")
        return
    record(args.ref, args.out, args.commit)


if __name__ == "__main__":
    main()
