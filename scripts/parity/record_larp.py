"""Record LARP parity fixtures by running the reference implementation.

    PYTHONPATH=/tmp/pylib python scripts/parity/record_larp.py --ref /tmp/ref/larp --commit SHA

``--ref`` is a checkout of github.com/hywang66/LARP (not part of zoo). Its tokenizer needs
``einops`` and ``easydict`` (``pip install --no-deps --target /tmp/pylib einops easydict``) and a
``sitecustomize.py`` there calling ``zoo.compat.torchvision.ensure_torchvision()`` (timm). The
reference's training-only imports (``lpips``, its ``utils`` package with FVD/tensorboard) are
replaced by empty modules: the tokenizer's inference path uses neither. timm >= 1.0.2x builds
``vision_transformer.Block`` with ``timm.layers.LayerNorm`` (eps 1e-6); the timm LARP was trained
with (2024, ``norm_layer=nn.LayerNorm``) used eps 1e-5, which zoo follows, so the script sets the
blocks' norms back to eps 1e-5 (:func:`_timm_2024_norms`). Writes to
``tests/fixtures/larp``:

* ``manifests.json.gz`` -- the key/shape manifest of ``LARPTokenizer`` at the published config
  (``scripts/train_larp_tokenizer_reproduce.sh``: 768 wide, 12+12 blocks, 1024 tokens, 8192
  codes, gptc-S prior), built on the meta device;
* ``case.safetensors`` + ``cases.json`` -- a small model of the same classes (32x32x8 clips,
  64 wide, 2+2 blocks, 16 tokens, 64 codes, gptc-XXS prior) on per-key seeded weights with a
  calibrated codebook: input clips (uint8), ``projected_z``, deterministic ids
  (``set_vq_eval_deterministic``), the probability gap between the two best codes, decode of
  those ids (``decode_from_bottleneck``), the full ``encode`` -> ``decode`` output of the first
  clip (``decoded_first``), and ids
  sampled at temperature 0.03 after ``torch.manual_seed(SAMPLE_SEED)`` (the reference draws from
  the global RNG).

Weights are never written: the tests regenerate them with ``zoo.testing.weights.seeded_state_dict``.
Without ``--ref`` (or if it is missing) the script says so and exits 0.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import types
from pathlib import Path

import torch

SEED, CLIP_SEED, SAMPLE_SEED, BATCH = 22, 7, 1234, 2
CASE = {"bottleneck_token_num": 16, "input_size": 32, "frame_num": 8, "temporal_patch_size": 4, "patch_size": 8,
        "decoder_temporal_patch_size": 4, "decoder_patch_size": 8, "encoder_hidden_size": 64, "decoder_hidden_size": 64,
        "encoder_num_heads": 4, "decoder_num_heads": 4, "encoder_depth": 2, "decoder_depth": 2,
        "bottleneck_dim": 8, "codebook_size": 64}


def _reference(ref: Path):
    for name in ("lpips", "utils"):  # training-only imports of models/loss.py and larp_tokenizer.py
        sys.modules.setdefault(name, types.ModuleType(name))
    sys.path.insert(0, str(ref))
    from easydict import EasyDict  # noqa: PLC0415
    from models.larp_tokenizer import LARPTokenizer  # noqa: PLC0415

    return LARPTokenizer, EasyDict


def _timm_2024_norms(model) -> None:
    """The LayerNorm eps of timm's ``Block`` when LARP was trained (``nn.LayerNorm``: 1e-5)."""
    for stack in (model.encoder, model.decoder):
        for block in stack.blocks:
            block.norm1.eps = block.norm2.eps = 1e-5


def _kwargs(cfg: dict, prior: str, EasyDict) -> dict:
    from zoo_plugins.larp.config import LARPConfig, to_reference_config  # noqa: PLC0415

    kw = to_reference_config(LARPConfig(**cfg))
    kw["prior_model"]["name"] = prior
    return EasyDict(kw) if prior else kw


def clips(cfg: dict) -> torch.Tensor:
    """Smooth random uint8 clips [B, 3, T, S, S] (low-frequency colour fields plus noise)."""
    g = torch.Generator().manual_seed(CLIP_SEED)
    t, s = cfg["frame_num"], cfg["input_size"]
    base = torch.rand(BATCH, 3, max(2, t // 4), 4, 4, generator=g)
    x = torch.nn.functional.interpolate(base, size=(t, s, s), mode="trilinear", align_corners=False)
    x = x + 0.1 * torch.randn(x.shape, generator=g)
    return (x.clamp(0, 1) * 255).round().to(torch.uint8)


def record(ref: Path, out: Path, commit: str) -> None:
    from safetensors.torch import save_file  # noqa: PLC0415
    from zoo.testing.weights import seeded_state_dict, state_manifest  # noqa: PLC0415

    LARPTokenizer, EasyDict = _reference(ref)
    torch.set_num_threads(1)
    out.mkdir(parents=True, exist_ok=True)

    with torch.device("meta"):
        full = LARPTokenizer(**_kwargs({}, "gptc-S", EasyDict))
    manifest = {k: [list(s), d] for k, (s, d) in state_manifest(full).items()}
    print(f"manifest larp.l_long: {len(manifest)} keys, {sum(torch.Size(s).numel() for s, _ in manifest.values()) / 1e6:.1f}M values")
    (out / "manifests.json.gz").write_bytes(gzip.compress(json.dumps({"larp.l_long": manifest}, sort_keys=True).encode(), mtime=0))

    torch.manual_seed(0)
    model = LARPTokenizer(**_kwargs(CASE, "gptc-XXS", EasyDict)).eval()
    _timm_2024_norms(model)
    case_manifest = state_manifest(model)
    sd = seeded_state_dict(case_manifest, seed=SEED)
    model.load_state_dict(sd, strict=True)
    x = clips(CASE)
    x01 = x.float() / 255
    with torch.no_grad():
        z = model.bottleneck.project_in(model.encoder(model.x_embedder(x01) + model.get_encoder_patch_pe(),
                                                      model.get_encoder_latent_query_embed().repeat(BATCH, 1, 1)))
        # calibrated codebook: normalised encoder outputs of these clips and of shifted copies, plus noise
        zs = [z]
        for shift in range(1, 4):
            zz = model.bottleneck.project_in(model.encoder(model.x_embedder(x01.roll(shift, dims=-1)) + model.get_encoder_patch_pe(),
                                                           model.get_encoder_latent_query_embed().repeat(BATCH, 1, 1)))
            zs.append(zz)
        pool = torch.cat(zs).reshape(-1, CASE["bottleneck_dim"])
        g = torch.Generator().manual_seed(SEED)
        pick = torch.randperm(pool.shape[0], generator=g)[: CASE["codebook_size"]]
        codebook = pool[pick] + 0.05 * pool.std() * torch.randn(CASE["codebook_size"], CASE["bottleneck_dim"], generator=g)
        sd["bottleneck.regularizer.embedding.weight"] = codebook
        model.load_state_dict(sd, strict=True)

        model.set_vq_eval_deterministic(True)
        enc = model.encode(x01)
        ids = enc["bottleneck_rep"]
        zn = torch.nn.functional.normalize(enc["projected_z"].float(), dim=-1)
        probs = torch.softmax(zn @ torch.nn.functional.normalize(codebook, dim=-1).t() / 0.03, dim=-1)
        top2 = probs.topk(2, dim=-1).values
        decoded_ids = model.decode_from_bottleneck(ids)
        decoded = model.decode(enc["encoded"])
        model.set_vq_eval_deterministic(False)
        sampled = []
        for s in range(2):
            torch.manual_seed(SAMPLE_SEED + s)
            sampled.append(model.encode(x01)["bottleneck_rep"])
    tensors = {"clips_uint8": x, "codebook": codebook.contiguous(), "projected_z": enc["projected_z"].contiguous(),
               "ids": ids.contiguous(), "gap": (top2[..., 0] - top2[..., 1]).contiguous(),
               "decoded_ids": decoded_ids.contiguous(), "decoded_first": decoded[:1].contiguous(),
               "sampled_0": sampled[0].contiguous(), "sampled_1": sampled[1].contiguous()}
    save_file(tensors, str(out / "case.safetensors"))
    (out / "case.safetensors").chmod(0o644)
    cases = {"commit": commit, "seed": SEED, "sample_seeds": [SAMPLE_SEED, SAMPLE_SEED + 1], "config": CASE,
             "manifest": {k: [list(s), d] for k, (s, d) in case_manifest.items()}}
    (out / "cases.json").write_text(json.dumps(cases, indent=1, sort_keys=True) + "\n")
    print(f"case: {len(set(ids.flatten().tolist()))} distinct ids of {ids.numel()}; min gap {float(tensors['gap'].min()):.2e}; "
          f"sampled differs from argmax at {int((sampled[0] != ids).sum())} tokens")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ref", type=Path, default=None, help="checkout of github.com/hywang66/LARP")
    parser.add_argument("--commit", default="unknown", help="the reference commit (recorded in cases.json)")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[2] / "tests/fixtures/larp")
    args = parser.parse_args()
    if args.ref is None or not (args.ref / "models/larp_tokenizer.py").is_file():
        print("no LARP checkout given (--ref); nothing recorded")
        return
    record(args.ref, args.out, args.commit)


if __name__ == "__main__":
    main()
