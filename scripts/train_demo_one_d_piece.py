#!/usr/bin/env python3
"""Train a small One-D-Piece (TiTok) image demo, ``one_d_piece.demo_128`` -- an EXPERIMENT.

STATUS (issue 21, 2 December): on one thread of the shared 2-core CPU this recipe does NOT give a
usable demo, so no weights or card come from it and the headline demo stays ``flextok.demo_128``
(``scripts/train_demo_flextok.py``). It is kept so the comparison can be re-run, and re-tried on a
GPU (``--device cuda``), where 50 minutes buy ~100x the steps. What was measured (validation =
fresh views of the *training* images, PSNR per kept tokens 1 ... 64, EMA weights):

* the decoder learns to read the tokens very slowly: with the encoder + codebook frozen at their
  (k-means) initialisation, 1 -> 64 tokens rose from 0.15 dB (4 minutes, ~400 steps of 16) to
  0.5 dB (12 minutes, ~1200 steps), val PSNR ~13.6-14.1 dB; the equal-bit thumbnails of the same
  views are 16.4 dB (8 and 16 tokens), 18.0 (32) and 19.0 (64);
* as soon as the encoder trains (even at 0.1x the decoder's learning rate, with warm-up), its
  tokens collapse onto a few codebook directions within a few hundred steps (VQ loss -> 0, the
  tokens of two images at one position become equal or opposite) and the gain from extra tokens
  falls back to ~0 dB;
* the measured run below (36 minutes, 2520 steps) ends, on the 5 held-out images, at 15.97 dB
  with 1 token, 16.17 with 8, 15.98 with 64 (a rise of 0.0 dB; equal-bit thumbnails 17.16 /
  18.08 / 19.14 dB at 8-16 / 32 / 64 tokens): flat colour fields on the 16 px patch grid; only
  the rocket (dark grey -> blue from 8 tokens) and the flower (a pink blob from 2 tokens) change
  with more tokens. FlexTok's first demo release after 55 minutes: 16.54 -> 17.63 dB (its current one: 15.94 -> 19.97 dB);
* without the freeze, a continuous warm-up (no quantiser) collapses the same way (Adam's first
  steps move every weight of a wide layer by the learning rate, coherently, which swamps the ~1%
  image-dependent part of the latent tokens at init).

The pieces here: the real architecture of zoo_plugins.titok (TiTok's ViT encoder with 1D latent
tokens -> L2-normalised VQ -> ViT decoder straight to RGB, the non-legacy TiTok head) trained the
One-D-Piece way ("tail token drop": every batch group decodes only the first k of the 64 tokens, k
log-uniform, so every prefix 1..64 decodes: ``strict_length_assertion: false``); 128x128 pixels,
ViT "tiny" (width 256, 4 layers, 4 heads; zoo's own size), patches of 16, 64 tokens of 5 bits (32
codes; 64 x 5 = 320 bits faces a 3x3 thumbnail, 4x4 would be 384). MSE on pixels + VQ terms + an
anti-collapse "spread" term (the batch-mean L2-normalised token per position is pushed to 0);
data-dependent init so the tokens depend on the image from step 0 (:func:`init_token_spread`),
k-means codebook init, dead codes re-seeded from the batch every 100 steps, EMA weights.

Training data: the free-licence photographs and textures that Python packages ship (``SOURCES``
of scripts/train_demo_flextok.py, every image with its package and licence), as random
multi-scale crops, flips, channel permutations and duotone colourings (``ViewSampler``). Held-out
split (never used for training or model selection): ``HELDOUT`` (chelsea, coffee, rocket,
flower, moon; their centre squares are ``examples/images/*.png``), evaluated once, at the end.

Writes::

    OUT/tiny/model.safetensors    float16 weights, TiTok's own key names
    OUT/tiny/config.json          the official nested config layout (model.vq_model + dataset)
    OUT/train_stats.json          data, licences, durations, validation history, held-out metrics
    EXAMPLES/*.png                the held-out images (128x128 centre squares)

Release files are rewritten every ``--checkpoint-minutes`` (from the EMA weights). The measured
run (scikit-image, scikit-learn and matplotlib installed for the training data only)::

    python scripts/train_demo_one_d_piece.py --minutes 36 --freeze-encoder-frac 0.2 --out /tmp/odp --examples /tmp/odp_ex

``--minutes 1 --out /tmp/demo --examples /tmp/demo_ex`` runs the whole pipeline in about 2 minutes.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_demo_flextok import (  # noqa: E402  (the shared data section: sources, licences, split, views)
    HELDOUT,
    IMAGE_SIZE,
    SOURCES,
    TRAIN,
    Budget,
    ViewSampler,
    center_square,
    heldout_views,
    load_source,
    log,
    lr_at,
    psnr,
    save_safetensors,
    ssim,
    thumbnail_baseline,
)

N_TOKENS = 64
CODEBOOK = 32
TOKEN_SIZE = 12
PATCH = 16
VIT_SIZE = "tiny"
TOKENS_EVAL = (1, 2, 4, 8, 16, 32, 64)
VALIDATION = "64 fresh 128 px views of the training images (sampler seed 777), never the held-out images"


def demo_config():
    """The demo's :class:`TiTokConfig` (non-legacy RGB head, VQ, any prefix decodes)."""
    from zoo_plugins.titok.config import TiTokConfig

    return TiTokConfig(crop_size=IMAGE_SIZE, vit_enc_model_size=VIT_SIZE, vit_dec_model_size=VIT_SIZE,
                       vit_enc_patch_size=PATCH, vit_dec_patch_size=PATCH, num_latent_tokens=N_TOKENS,
                       token_size=TOKEN_SIZE, codebook_size=CODEBOOK, use_l2_norm=True, quantize_mode="vq",
                       is_legacy=False, finetune_decoder=False, strict_length_assertion=False)


# ---------------------------------------------------------------------------------------- training


def quantize_ste(model, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """TiTok's L2-normalised VQ with a straight-through gradient: ``(codes, ids, vq_loss)``.

    ``codes`` equal ``model.quantize.decode(model.quantize.encode(z))`` in value; ``vq_loss`` is
    the reference's codebook term + 0.25 x commitment term."""
    zn = F.normalize(z, dim=1)  # [B, C, 1, N]
    cb = F.normalize(model.quantize.embedding.weight, dim=1)  # [K, C]
    flat = zn.squeeze(2).transpose(1, 2)  # [B, N, C]
    ids = (flat @ cb.T).argmax(-1)  # [B, N]
    zq = cb[ids].transpose(1, 2).unsqueeze(2)
    vq_loss = F.mse_loss(zq, zn.detach()) + 0.25 * F.mse_loss(zn, zq.detach())
    return zn + (zq - zn).detach(), ids, vq_loss


def sample_keeps(groups: int, n: int, g: torch.Generator) -> list[int]:
    """Tail token drop: one kept-prefix length per batch group, log-uniform on 1..n (short
    prefixes are as frequent as long ones on a log scale); the last group always keeps all n."""
    ks = [int(round(math.exp(float(torch.rand((), generator=g)) * math.log(n)))) for _ in range(groups - 1)]
    return [max(1, min(n, k)) for k in ks] + [n]


@torch.no_grad()
def reseed_dead_codes(model, usage: torch.Tensor, z: torch.Tensor, g: torch.Generator) -> int:
    """Codes unused since the last call get a random current encoder output (normalised)."""
    dead = (usage == 0).nonzero().flatten()
    if len(dead):
        pool = F.normalize(z.detach(), dim=1).squeeze(2).transpose(1, 2).reshape(-1, z.shape[1])
        pick = torch.randint(0, pool.shape[0], (len(dead),), generator=g)
        model.quantize.embedding.weight[dead] = pool[pick].to(model.quantize.embedding.weight.dtype)
    usage.zero_()
    return len(dead)


@torch.no_grad()
def init_token_spread(model, sampler: ViewSampler, batch: int, device: str, shrink: float = 0.05) -> float:
    """Data-dependent initialisation so that the tokens depend on the image from step 0.

    At random init TiTok's latent-token outputs are dominated by their own learnt embeddings
    (across-image variance ~1% of across-position variance) plus a common offset, so after L2
    normalisation every image gets the same vectors and a codebook fitted to them carries no
    information. Here the 64 latent tokens start as one shared vector plus ``shrink`` x their
    random init (the order still breaks the symmetry), and ``conv_out``'s bias removes the mean
    output over a batch. Returns the mean cosine between two images' tokens at the same position."""
    enc = model.encoder
    base = model.latent_tokens[:1].clone()
    model.latent_tokens.copy_(base + shrink * model.latent_tokens)
    enc.latent_token_positional_embedding.mul_(shrink)
    z = model.encode_latents((sampler(batch).to(device) + 1) / 2).squeeze(2)  # [B, C, N]
    enc.conv_out.bias.sub_(z.mean((0, 2)))
    zn = F.normalize(model.encode_latents((sampler(batch).to(device) + 1) / 2).squeeze(2), dim=1)
    return float((zn[0::2] * zn[1::2]).sum(1).mean())


@torch.no_grad()
def kmeans_codebook(model, sampler: ViewSampler, batches: int, batch: int, device: str, g: torch.Generator,
                    iters: int = 25) -> float:
    """Spherical k-means of the encoder's normalised outputs (every token position pooled) into the
    codebook, at the switch from continuous to quantised tokens. Returns the mean cosine to the
    nearest centre."""
    model.eval()
    pool = torch.cat([F.normalize(model.encode_latents((sampler(batch).to(device) + 1) / 2), dim=1)
                      .squeeze(2).transpose(1, 2).reshape(-1, TOKEN_SIZE) for _ in range(batches)])
    model.train()
    centres = pool[torch.randperm(pool.shape[0], generator=g)[:CODEBOOK]].clone()
    for _ in range(iters):
        sim = pool @ centres.T
        assign = sim.argmax(1)
        for c in range(CODEBOOK):
            members = pool[assign == c]
            centres[c] = F.normalize(members.mean(0), dim=0) if len(members) else pool[int(torch.randint(0, len(pool), (1,), generator=g))]
    model.quantize.embedding.weight.copy_(centres.to(model.quantize.embedding.weight.dtype))
    return float((pool @ centres.T).max(1).values.mean())


@torch.no_grad()
def ema_update(ema, model, decay: float) -> None:
    for pe, pm in zip(ema.parameters(), model.parameters()):
        pe.lerp_(pm, 1 - decay)


@torch.no_grad()
def quick_eval(model, views: torch.Tensor) -> dict[int, float]:
    """PSNR per kept-token count on ``views`` (in [-1, 1])."""
    model.eval()
    ids = model.quantize_latents(model.encode_latents((views + 1) / 2))
    out = {}
    for k in TOKENS_EVAL:
        rec = model.decode_latents(model.ids_to_latents(ids[:, :k])) * 2 - 1
        out[k] = round(float(psnr(rec, views).mean()), 2)
    return out


def train(model, sampler: ViewSampler, val: torch.Tensor, args: argparse.Namespace, t0: float, out: Path) -> dict[str, Any]:
    """MSE on pixels (+ VQ terms) with tail token drop; EMA weights are what gets written."""
    log(f"init: tokens of two images at the same position have mean cosine "
        f"{init_token_spread(model, sampler, args.batch, args.device):.3f}", t0)
    model.train()
    ema = copy.deepcopy(model).eval()
    enc_names = ("encoder.", "latent_tokens", "quantize.")
    groups_ = []
    for part in ("encoder", "decoder"):
        named = [(n, p) for n, p in model.named_parameters() if n.startswith(enc_names) == (part == "encoder")]
        groups_.append({"params": [p for n, p in named if p.dim() >= 2 and "embedding" not in n], "weight_decay": 0.02, "part": part})
        groups_.append({"params": [p for n, p in named if not (p.dim() >= 2 and "embedding" not in n)], "weight_decay": 0.0, "part": part})
    opt = torch.optim.AdamW(groups_, lr=args.lr, betas=(0.9, 0.95))
    enc_params = [p for gr in opt.param_groups if gr["part"] == "encoder" for p in gr["params"]]
    g = torch.Generator().manual_seed(args.seed + 11)
    usage = torch.zeros(CODEBOOK)
    budget, step, last_ck, ema_loss, history = Budget(args.minutes), 0, time.perf_counter(), None, []
    thumbs = {k: round(float(psnr(thumbnail_baseline(val, k * math.log2(CODEBOOK))[0], val).mean()), 2) for k in TOKENS_EVAL}
    log(f"validation: equal-bit thumbnails {thumbs}", t0)
    groups, quantized, switch_step = args.groups, args.continuous_frac <= 0, 0
    if quantized:
        log(f"codebook: k-means init, mean cosine {kmeans_codebook(model, sampler, 8, args.batch, args.device, g):.3f}", t0)
    while not budget.done(step):
        frac = budget.frac(step)
        frozen = frac < args.freeze_encoder_frac  # the decoder first learns to read the random encoder's codes
        for p in enc_params:
            p.requires_grad_(not frozen)
        for gr in opt.param_groups:
            gr["lr"] = lr_at(frac, args.lr)
            if gr["part"] == "encoder":  # its own warm-up after the freeze (no first-step Adam jolt)
                gr["lr"] *= args.encoder_lr_scale * min(1.0, max(0.0, frac - args.freeze_encoder_frac) / 0.05)
        if not quantized and frac >= args.continuous_frac:
            # the encoder has learnt to say something: its outputs seed the codebook, VQ from now on
            cos = kmeans_codebook(model, sampler, 8, args.batch, args.device, g)
            log(f"step {step}: switch to VQ; k-means codebook, mean cosine {cos:.3f}", t0)
            quantized, switch_step = True, step
            ema.load_state_dict(model.state_dict())
            usage.zero_()
        x = sampler(args.batch).to(args.device)
        x01 = (x + 1) / 2
        z = model.encode_latents(x01)
        if quantized:
            codes, ids, vq_loss = quantize_ste(model, z)
            usage += torch.bincount(ids.flatten().cpu(), minlength=CODEBOOK).float()
        else:  # continuous warm-up: the normalised encoder outputs go straight to the decoder
            codes, vq_loss = F.normalize(z, dim=1), z.new_zeros(())
        keeps = sample_keeps(groups, N_TOKENS, g)
        rec_loss = 0.0
        for chunk, k in zip(torch.arange(args.batch).chunk(groups), keeps):
            y = model.decode_latents(codes[chunk][..., :k])
            rec_loss = rec_loss + F.mse_loss(y, x01[chunk]) / groups
        zn_all = F.normalize(z, dim=1)  # spread: the tokens' mean direction over the batch (per position) -> 0
        spread_loss = (zn_all.mean(0) ** 2).sum(0).mean()
        loss = rec_loss + args.vq_weight * vq_loss + args.spread_weight * spread_loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        ema_update(ema, model, args.ema if step - switch_step > 200 else 0.9)
        r = float(rec_loss.detach())
        ema_loss = r if ema_loss is None else 0.98 * ema_loss + 0.02 * r
        if quantized and not frozen and step % 100 == 99:
            dead = reseed_dead_codes(model, usage, z, g)
        else:
            dead = None
        if step % 50 == 0:
            with torch.no_grad():
                zn = F.normalize(z.detach(), dim=1)
                spread = float((zn[0::2] * zn[1::2]).sum(1).mean())
            log(f"cos(img, img') {spread:.3f}  step {step:5d}  lr {opt.param_groups[0]['lr']:.2e}  mse {ema_loss:.5f} "
                f"(~{-10 * math.log10(max(ema_loss, 1e-10)):.2f} dB)  vq {float(vq_loss.detach()):.4f}"
                + (f"  reseeded {dead}" if dead else ""), t0)
        if quantized and time.perf_counter() - last_ck > args.checkpoint_minutes * 60:
            row = {"minutes": round((time.perf_counter() - t0) / 60, 1), "step": step, "val_psnr": quick_eval(ema, val)}
            history.append(row)
            log(f"checkpoint: validation PSNR (EMA) {row['val_psnr']}", t0)
            write_release(ema, out)
            last_ck = time.perf_counter()
        step += 1
    row = {"minutes": round((time.perf_counter() - t0) / 60, 1), "step": step, "val_psnr": quick_eval(ema, val)}
    history.append(row)
    log(f"end: validation PSNR (EMA) {row['val_psnr']}", t0)
    write_release(ema, out)
    return {"steps": step, "history": history}


# ---------------------------------------------------------------------------------------- release files


def write_release(model, out: Path) -> None:
    """``tiny/model.safetensors`` (float16, TiTok's key names) + ``tiny/config.json`` (official layout)."""
    from zoo_plugins.titok.config import to_reference_config

    tdir = out / "tiny"
    tdir.mkdir(parents=True, exist_ok=True)
    save_safetensors({k: v.half() for k, v in model.state_dict().items()}, tdir / "model.safetensors")
    (tdir / "config.json").write_text(json.dumps(to_reference_config(model.config), indent=2) + "\n")


def load_release(out: Path):
    """Load the written files exactly as ``zoo.load`` does: builder -> config merge -> strict load."""
    from zoo.builders import CheckpointFiles
    from zoo.config import merge_config
    from zoo.weights import load_state_dict_strict
    from zoo_plugins.titok.builder import TiTokBuilder

    tdir = out / "tiny"
    files = CheckpointFiles({n: tdir / n for n in ("model.safetensors", "config.json")}, origin=str(tdir))
    builder = TiTokBuilder()
    ck = builder.read_checkpoint(files)
    config = merge_config(builder.config_class, [("checkpoint", ck.config)])
    model = builder.build(config)
    load_state_dict_strict(model, builder.convert(ck.state_dict, config), what="demo release")
    return model.eval()


# ---------------------------------------------------------------------------------------- evaluation


@torch.no_grad()
def evaluate(model, views: torch.Tensor) -> dict[str, Any]:
    """PSNR / SSIM per kept-token count through the zoo interface, and of the equal-bit thumbnails."""
    tokens = model.encode(views)
    bits_per_token = math.log2(model.codebook_size)
    table = []
    for k in TOKENS_EVAL:
        rec = model.decode(tokens.truncate(k))
        base, s = thumbnail_baseline(views, k * bits_per_token)
        table.append({"tokens": k, "bits": round(k * bits_per_token, 1),
                      "psnr": round(float(psnr(rec, views).mean()), 2), "ssim": round(float(ssim(rec, views).mean()), 3),
                      "baseline": f"{s}x{s} thumbnail" if s else "mid-grey",
                      "baseline_psnr": round(float(psnr(base, views).mean()), 2),
                      "baseline_ssim": round(float(ssim(base, views).mean()), 3)})
    return {"n_views": int(views.shape[0]), "per_tokens": table}


# ---------------------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=Path("plugins/titok/demo"))
    ap.add_argument("--examples", type=Path, default=Path("examples/images"))
    ap.add_argument("--device", default="cpu", help="cpu (as used for the committed weights) or cuda")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1, help="1 is fastest on a contended CPU (no OpenMP spinning)")
    ap.add_argument("--minutes", type=float, default=82.0, help="wall-clock budget; the LR schedule follows it")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--groups", type=int, default=4, help="tail-drop groups per batch (one prefix length each)")
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--vq-weight", type=float, default=0.05)
    ap.add_argument("--spread-weight", type=float, default=0.1,
                    help="weight of the anti-collapse term: squared norm of the batch-mean L2-normalised token, per position")
    ap.add_argument("--encoder-lr-scale", type=float, default=0.1,
                    help="encoder + codebook learning rate relative to --lr (a fast encoder collapses the tokens)")
    ap.add_argument("--freeze-encoder-frac", type=float, default=0.25,
                    help="fraction of the budget with the encoder + codebook frozen at their (k-means) init")
    ap.add_argument("--continuous-frac", type=float, default=0.0,
                    help="fraction of the budget trained with continuous (unquantised) tokens before k-means + VQ")
    ap.add_argument("--ema", type=float, default=0.998)
    ap.add_argument("--checkpoint-minutes", type=float, default=5.0)
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    t0 = time.perf_counter()
    train_imgs = {n: load_source(n) for n in TRAIN}
    held = {n: load_source(n) for n in HELDOUT}
    args.examples.mkdir(parents=True, exist_ok=True)
    from PIL import Image

    for n, arr in held.items():
        Image.fromarray(center_square(arr, IMAGE_SIZE)).save(args.examples / f"{n}.png", optimize=True)
    log(f"data: {len(train_imgs)} training images, {len(held)} held out -> {args.examples}", t0)
    args.out.mkdir(parents=True, exist_ok=True)

    from zoo_plugins.titok.model import TiTok

    sampler = ViewSampler(list(train_imgs.values()), IMAGE_SIZE, seed=args.seed)
    val = ViewSampler(list(train_imgs.values()), IMAGE_SIZE, seed=777)(64)
    model = TiTok(demo_config()).to(args.device)
    n_params = sum(p.numel() for p in model.parameters())
    log(f"model: {n_params / 1e6:.2f} M parameters", t0)
    t1 = time.perf_counter()
    info = train(model, sampler, val.to(args.device), args, t0, args.out)
    minutes = (time.perf_counter() - t1) / 60

    released = load_release(args.out).to("cpu")
    from zoo.media.image import load_images

    examples = load_images(sorted(args.examples.glob("*.png")))
    results = {"examples": evaluate(released, examples), "views": evaluate(released, heldout_views(held))}
    for name, r in results.items():
        log(f"held-out ({name}, {r['n_views']} views): " + "  ".join(
            f"{row['tokens']}:{row['psnr']} ({row['baseline']} {row['baseline_psnr']})" for row in r["per_tokens"]), t0)
    stats = {
        "model": "one_d_piece.demo_128", "parameters": n_params, "device": args.device, "threads": args.threads,
        "train_minutes": round(minutes, 1), "steps": info["steps"], "batch": args.batch, "groups": args.groups,
        "lr": args.lr, "ema": args.ema, "continuous_frac": args.continuous_frac, "spread_weight": args.spread_weight, "freeze_encoder_frac": args.freeze_encoder_frac, "encoder_lr_scale": args.encoder_lr_scale, "seed": args.seed, "validation": VALIDATION, "history": info["history"],
        "train_images": {n: {"package": SOURCES[n][0], "load": SOURCES[n][1], "licence": SOURCES[n][2]} for n in TRAIN},
        "heldout_images": {n: {"package": SOURCES[n][0], "load": SOURCES[n][1], "licence": SOURCES[n][2]} for n in HELDOUT},
        "heldout": results,
    }
    (args.out / "train_stats.json").write_text(json.dumps(stats, indent=1) + "\n")
    log(f"wrote {args.out}", t0)


if __name__ == "__main__":
    main()
