"""Record GigaTok parity fixtures by running the reference implementation.

    PYTHONPATH=/tmp/pylib python scripts/parity/record_gigatok.py --ref /tmp/ref/gigatok --commit SHA

``--ref`` is a checkout of github.com/SilentView/GigaTok (not part of zoo; it needs ``einops``,
e.g. ``pip install --no-deps --target /tmp/pylib einops``). The script writes to
``tests/fixtures/gigatok``:

* ``manifests.json.gz`` -- key/shape manifests of the reference ``VQVitModelPlus`` (the
  release's ``"model"`` / ``"ema"`` layout) at every published config (``configs/vq/VQ_*256.yaml``
  of the five releases; built on the meta device), and ``reference_configs.json``;
* ``parity_manifest.json`` -- the key/shape manifest of the small model below (release names);
* ``case.safetensors`` + ``cases.json`` -- a small model of the same classes (``ViTEncoder`` /
  ``ViTDecoder`` at 32x32 with "tiny" Q-Formers, CNN ``ch`` 32, f4, 16 tokens, 64 codes) on seeded
  weights with a calibrated codebook: inputs, CNN features, pre-quantisation latents, ids, the
  cosine gap between the two nearest codewords per token, the rotation-trick output, decode of
  the quantised latents and decode of the ids (``decode_code``).

Weights are never written: both sides regenerate them with ``zoo_plugins.gigatok.testing``.
Without ``--ref`` (or if it is missing) the script says so and exits 0.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
from pathlib import Path

import torch
import yaml

RELEASES = {"VQ_SS256": "gigatok.s_s", "VQ_SB256": "gigatok.s_b", "VQ_BL256": "gigatok.b_l",
            "VQ_BL256_dino_disc": "gigatok.b_l_dino", "VQ_XLXXL256": "gigatok.xl_xxl"}
BATCH, IMAGE_SEED = 2, 0


def record(ref: Path, out: Path, commit: str) -> None:
    sys.path.insert(0, str(ref))
    from tokenizer.tokenizer_image.vq.blocks import Decoder, Encoder, ViTDecoder, ViTEncoder  # noqa: PLC0415
    from tokenizer.tokenizer_image.vq.vq_vit_model import VQVitModelPlus, VQVitModelPlusArgs  # noqa: PLC0415

    from safetensors.torch import save_file  # noqa: PLC0415
    from zoo.testing.weights import state_manifest  # noqa: PLC0415
    from zoo_plugins.gigatok.testing import CODEBOOK_KEY, PARITY_CASE, calibrated_codebook, release_state_dict, test_images  # noqa: PLC0415

    torch.set_num_threads(1)
    out.mkdir(parents=True, exist_ok=True)
    manifests, configs = {}, {}
    for stem in RELEASES:
        path = ref / "configs/vq" / f"{stem}.yaml"
        args = yaml.safe_load(path.read_text())["model"]["init_args"]
        configs[stem] = {**args, "yaml": str(path.relative_to(ref))}
        with torch.device("meta"):
            model = VQVitModelPlus(VQVitModelPlusArgs(**args))
        manifests[stem] = {k: [list(s), d] for k, (s, d) in state_manifest(model).items()}
        n = sum(v.numel() for v in model.state_dict().values())
        print(f"manifest {stem}: {len(manifests[stem])} keys, {n / 1e6:.1f}M values")
    (out / "manifests.json.gz").write_bytes(gzip.compress(json.dumps(manifests, sort_keys=True).encode(), mtime=0))
    (out / "reference_configs.json").write_text(json.dumps(configs, indent=1, sort_keys=True) + "\n")

    c = PARITY_CASE
    args = VQVitModelPlusArgs(codebook_size=c["codebook_size"], codebook_embed_dim=c["codebook_embed_dim"],
                              codebook_l2_norm=True, encoder_ch_mult=c["encoder_ch_mult"], decoder_ch_mult=c["decoder_ch_mult"],
                              model_size=None, encoder_size=c["encoder_size"], decoder_size=c["decoder_size"],
                              num_latent_tokens=c["num_latent_tokens"], z_channels=c["z_channels"], multi_level_query_init=True,
                              adaptive_gn=True, d2s_up=True, rot=True, use_attn=False, distill_depth=3)
    model = VQVitModelPlus(args)
    patch = 2 ** (len(c["encoder_ch_mult"]) - 1)
    # the same classes at a small size: VQVitModelPlus fixes image_size 256 and ch 128
    model.encoder = Encoder(ch=c["ch"], ch_mult=c["encoder_ch_mult"], z_channels=c["z_channels"], use_attn=False)
    model.decoder = Decoder(ch=c["ch"], ch_mult=c["decoder_ch_mult"], z_channels=c["z_channels"], adaptive_gn=True,
                            d2s_up=True, use_attn=False)
    model.s2to1encoder = ViTEncoder(image_size=c["image_size"], patch_size=patch, model_size=c["encoder_size"],
                                    num_latent_tokens=c["num_latent_tokens"], token_size=c["z_channels"], multi_level_query_init=True)
    model.s1to2decoder = ViTDecoder(image_size=c["image_size"], patch_size=patch, model_size=c["decoder_size"],
                                    num_latent_tokens=c["num_latent_tokens"], token_size=c["z_channels"],
                                    out_inner_feat=True, out_inner_depth=3, out_inner_dim=768)
    model.eval()
    manifest = state_manifest(model)
    (out / "parity_manifest.json").write_text(json.dumps({k: [list(s), d] for k, (s, d) in manifest.items()}, sort_keys=True) + "\n")
    sd = release_state_dict(manifest)
    model.load_state_dict(sd)
    with torch.no_grad():
        sd[CODEBOOK_KEY] = calibrated_codebook(lambda x: model.quant_conv(model.s2to1encoder(model.encoder(x))),
                                               c["codebook_size"], c["image_size"])
    model.load_state_dict(sd)
    x = test_images(BATCH, c["image_size"], seed=IMAGE_SEED)
    with torch.no_grad():
        feats = model.encoder(x)
        latents = model.quant_conv(model.s2to1encoder(feats))
        quant, _, info = model.quantize(latents)
        ids = info[2].view(BATCH, -1)
        z = torch.nn.functional.normalize(latents.permute(0, 2, 3, 1).reshape(-1, latents.shape[1]).double(), dim=-1)
        e = torch.nn.functional.normalize(sd[CODEBOOK_KEY].double(), dim=-1)
        two = (2 - 2 * z @ e.T).topk(2, dim=-1, largest=False).values
        gap = (two[:, 1] - two[:, 0]).view(BATCH, -1).float()
        rec, spatial = model.decode(quant)
        rec_ids = model.decode_code(info[2], shape=quant.shape)
    t = {"images": x, "cnn_features": feats, "latents": latents, "ids": ids, "gap": gap, "quant": quant,
         "qformer_2d": spatial, "reconstruction": rec, "decode_of_ids": rec_ids}
    save_file({k: v.contiguous() for k, v in t.items()}, str(out / "case.safetensors"))
    meta = {"reference": f"SilentView/GigaTok@{commit or 'unknown'}", "torch": torch.__version__, "config": c,
            "batch": BATCH, "image_seed": IMAGE_SEED, "distinct_ids": int(ids.unique().numel()),
            "min_gap": float(gap.min()), "releases": RELEASES}
    (out / "cases.json").write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n")
    print(f"case: ids {tuple(ids.shape)} ({meta['distinct_ids']} distinct), min top-2 gap {meta['min_gap']:.2e}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ref", type=Path, default=None, help="checkout of SilentView/GigaTok")
    parser.add_argument("--commit", default="", help="the reference's commit")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[2] / "tests/fixtures/gigatok")
    args = parser.parse_args()
    if args.ref is None or not (args.ref / "tokenizer/tokenizer_image/vq/vq_vit_model.py").exists():
        print("reference not given or not found (--ref /path/to/GigaTok); nothing recorded")
        return
    record(args.ref, args.out, args.commit)


if __name__ == "__main__":
    main()
