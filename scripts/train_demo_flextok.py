#!/usr/bin/env python3
"""Train zoo's embedded demo FlexTok (``flextok.demo_tiny`` + ``flextok_vae.demo_tiny``) on CPU.

Demo weights, not for research: a tiny FlexTok (the real architecture of zoo_plugins.flextok:
f8 KL-VAE -> 2x2 patches + sincos posemb | nested registers -> prefix-LM encoder -> FSQ
8-8-8-5-5-5 -> rectified-flow decoder with nested dropout and a learned null condition) at
64x64 pixels, trained on the free-licence sample photographs that scikit-image ships
(``skimage.data``, see TRAIN / HELDOUT below for each image's licence), augmented with random
rescaled crops, flips and channel permutations.

Stages (deterministic: fixed seed, fixed thread count, fixed step counts):

1. VAE (diffusers AutoencoderKL layout, f8, 16 latent channels) on 32x32 crops (it is fully
   convolutional; 64x64 inputs work unchanged), L1 + MSE + small KL;
2. ``scaling_factor`` = 1 / std of the VAE latents of training crops;
3. FlexTok (VAE frozen) on 64x64 crops: rectified flow ``x_t = (1 - t) x + t n``, target
   ``n - x``, t ~ sigmoid(N(1, 1)) (shifted towards noise, where the tokens matter); nested dropout keeps k in {1, 2, 4, ..., 32} registers; the
   null condition replaces the registers with probability 0.1 (for CFG); FSQ with a
   straight-through estimator;
4. evaluation on held-out photographs (PSNR per kept-token count vs baselines) through the
   release files, loaded exactly as ``zoo.load`` loads them (``FlexTokBuilder``, strict).

Writes release-format files (what ``zoo.load("flextok.demo_tiny")`` reads)::

    OUT/tiny/model.safetensors                       FlexTok, Hydra config in the metadata (no VAE weights)
    OUT/vae_tiny/config.json                         diffusers AutoencoderKL config
    OUT/vae_tiny/diffusion_pytorch_model.safetensors
    OUT/train_stats.json                             data, licences, durations, PSNR table
    EXAMPLES/*.png                                   the held-out photographs (128x128 centre crops)

Commands (as used for the committed weights; about 30 minutes of training in all, one thread of a
shared 2-core CPU: VAE 15.8 min + FlexTok 11.4 min, then FlexTok 2.9 min)::

    pip install scikit-image    # the training data; zoo itself does not need it
    # phase 1: VAE + FlexTok (t ~ sigmoid(N(1, 1)))
    python scripts/train_demo_flextok.py --out /tmp/demo_phase1 --examples examples/images
    # phase 2: FlexTok only, more weight on noisy t (where the tokens matter), fresh optimizer
    python scripts/train_demo_flextok.py --resume /tmp/demo_phase1 --out plugins/flextok/demo \
        --examples examples/images --tok-steps 900 --tok-lr 2e-3 --t-shift 2.5 --bank 8192

``--vae-steps 20 --tok-steps 20 --out /tmp/demo`` runs the whole pipeline in a minute (smoke test).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

# ---------------------------------------------------------------------------------------- data

# (skimage.data function, licence as stated in scikit-image's docstrings)
TRAIN: dict[str, str] = {
    "astronaut": "public domain (NASA Great Images database)",
    "retina": "CC0 1.0",
    "hubble_deep_field": "public domain (NASA)",
    "immunohistochemistry": "no known copyright restrictions (CMMI)",
    "camera": "CC0 (Lav Varshney)",
    "coins": "no known copyright restrictions",
    "brick": "CC0 (CC0Textures)",
    "grass": "CC0 (CC0Textures)",
    "gravel": "CC0 (CC0Textures)",
    "cell": "CC0",
    "microaneurysms": "CC0 (Andreas Maier)",
    "clock": "public domain (Stefan van der Walt)",
    "horse": "CC0 (Andreas Preuss)",
    "text": "public domain (Wikipedia)",
}
HELDOUT: dict[str, str] = {
    "chelsea": "CC0 (Stefan van der Walt)",
    "coffee": "CC0 (Rachel Michetti)",
    "rocket": "public domain (SpaceX)",
}
IMAGE_SIZE = 64
TOKENS_EVAL = (1, 2, 4, 8, 16, 32)


def load_skimage(name: str) -> np.ndarray:
    """``skimage.data.<name>()`` as a uint8 ``[H, W, 3]`` array (gray / bool images replicated)."""
    import skimage.data

    arr = np.asarray(getattr(skimage.data, name)())
    if arr.dtype == bool:
        arr = arr.astype(np.uint8) * 255
    if arr.dtype != np.uint8:
        arr = (np.clip(arr, 0, 1) * 255).astype(np.uint8) if arr.max() <= 1 else arr.astype(np.uint8)
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=-1)
    return arr[..., :3]


def pyramid(arr: np.ndarray, min_side: int) -> list[torch.Tensor]:
    """The image at several scales (shorter side 1x, 1/2, 1/4 ... down to ``min_side``), each a
    ``[3, H, W]`` tensor in [-1, 1]: random crops of these are the training samples."""
    from PIL import Image

    img = Image.fromarray(arr)
    out = []
    short = min(img.size)
    s = short
    while s >= min_side:
        w, h = round(img.width * s / short), round(img.height * s / short)
        out.append(torch.from_numpy(np.asarray(img.resize((w, h), Image.BICUBIC)).copy()).permute(2, 0, 1).float() / 127.5 - 1)
        s //= 2
    return out


class CropSampler:
    """Random crops of a multi-scale pool: flips and (with probability ``p_perm``) a channel
    permutation, all from one seeded generator."""

    def __init__(self, images: list[np.ndarray], size: int, seed: int, p_perm: float = 0.3):
        self.size = size
        self.pool = [lvl for arr in images for lvl in pyramid(arr, min_side=max(size, 48))]
        # sample scales in proportion to their area^0.5 so small levels are not drowned
        w = torch.tensor([math.sqrt(t.shape[1] * t.shape[2]) for t in self.pool])
        self.weights = w / w.sum()
        self.g = torch.Generator().manual_seed(seed)
        self.p_perm = p_perm

    def __call__(self, batch: int) -> torch.Tensor:
        g, s = self.g, self.size
        idx = torch.multinomial(self.weights, batch, replacement=True, generator=g)
        out = []
        for i in idx.tolist():
            img = self.pool[i]
            top = int(torch.randint(0, img.shape[1] - s + 1, (1,), generator=g))
            left = int(torch.randint(0, img.shape[2] - s + 1, (1,), generator=g))
            x = img[:, top : top + s, left : left + s]
            if float(torch.rand((), generator=g)) < 0.5:
                x = x.flip(-1)
            if float(torch.rand((), generator=g)) < self.p_perm:
                x = x[torch.randperm(3, generator=g)]
            out.append(x)
        return torch.stack(out)


def center_square(arr: np.ndarray, size: int) -> np.ndarray:
    """Resize (shorter side) + centre-crop a uint8 image to ``size x size``."""
    from PIL import Image

    img = Image.fromarray(arr)
    s = size / min(img.size)
    img = img.resize((max(size, round(img.width * s)), max(size, round(img.height * s))), Image.BICUBIC)
    left, top = (img.width - size) // 2, (img.height - size) // 2
    return np.asarray(img.crop((left, top, left + size, top + size)))


def eval_views(images: torch.Tensor, size: int = IMAGE_SIZE) -> torch.Tensor:
    """Held-out evaluation views of ``[B, 3, 2s, 2s]`` images: the whole image downsized to
    ``s`` plus its four ``s x s`` corner crops (5 views per image). The test uses the same views."""
    whole = F.interpolate(images, size=(size, size), mode="bicubic", align_corners=False, antialias=True).clamp(-1, 1)
    s = size
    corners = [images[..., :s, :s], images[..., :s, s:], images[..., s:, :s], images[..., s:, s:]]
    return torch.cat([whole] + corners)


# ---------------------------------------------------------------------------------------- configs


def vae_config(latent_channels: int) -> dict[str, Any]:
    """diffusers ``config.json`` of the demo VAE (f8: four blocks)."""
    widths = [16, 16, 32, 64]
    return {
        "_class_name": "AutoencoderKL",
        "act_fn": "silu",
        "block_out_channels": widths,
        "down_block_types": ["DownEncoderBlock2D"] * len(widths),
        "up_block_types": ["UpDecoderBlock2D"] * len(widths),
        "in_channels": 3,
        "out_channels": 3,
        "latent_channels": latent_channels,
        "layers_per_block": 1,
        "norm_num_groups": 8,
        "sample_size": IMAGE_SIZE,
    }


def flextok_config(latent_channels: int, scaling_factor: float, n_registers: int, dim: int, depth: int):
    """The demo FlexTok config: the published layout at 64x64 (8x8 latents -> 4x4 patches)."""
    from zoo_plugins.flextok.config import DecoderConfig, EncoderConfig, FlexTokConfig, TransformerConfig, VAEConfig

    grid = IMAGE_SIZE // 8 // 2
    vae = VAEConfig(latent_channels=latent_channels, scaling_factor=scaling_factor,
                    block_out_channels=vae_config(latent_channels)["block_out_channels"], layers_per_block=1,
                    norm_num_groups=8)
    enc = EncoderConfig(posemb_max_sizes=[grid, grid], n_registers=n_registers,
                        transformer=TransformerConfig(dim=dim, depth=depth, head_dim=32))
    dec = DecoderConfig(registers_posemb_max_sizes=[n_registers], posemb_max_sizes=[grid, grid],
                        transformer=TransformerConfig(dim=dim, depth=depth, head_dim=32, adaln_expansion=2))
    return FlexTokConfig(vae=vae, encoder=enc, decoder=dec)


# ---------------------------------------------------------------------------------------- helpers


def lr_at(step: int, total: int, peak: float, warmup: int) -> float:
    """Linear warmup then cosine decay to 5% of ``peak``."""
    if step < warmup:
        return peak * (step + 1) / warmup
    p = (step - warmup) / max(1, total - warmup)
    return peak * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * p)))


def psnr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR (dB) of images in [-1, 1] (compared on [0, 1], clamped)."""
    a, b = (a.clamp(-1, 1) + 1) / 2, (b.clamp(-1, 1) + 1) / 2
    mse = ((a - b) ** 2).flatten(1).mean(1)
    return -10 * torch.log10(mse.clamp_min(1e-10))


def log(msg: str, t0: float) -> None:
    print(f"[{(time.perf_counter() - t0) / 60:6.2f} min] {msg}", flush=True)


def save_safetensors(state: dict[str, torch.Tensor], path: Path, metadata: dict[str, str] | None = None) -> None:
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().contiguous() for k, v in state.items()}, str(path), metadata=metadata)


# ---------------------------------------------------------------------------------------- stage 1: VAE


def train_vae(sampler: CropSampler, latent_channels: int, steps: int, batch: int, t0: float):
    from zoo_plugins.flextok.vae import AutoencoderKL

    vae = AutoencoderKL.from_config(vae_config(latent_channels))
    vae.channels_last = False
    opt = torch.optim.AdamW(vae.parameters(), lr=2e-3, betas=(0.9, 0.99), weight_decay=0.0)
    ema = None
    for step in range(steps):
        for gr in opt.param_groups:
            gr["lr"] = lr_at(step, steps, 2e-3, max(1, steps // 20))
        x = sampler(batch)
        mean, logvar = vae.encode_moments(x)
        z = mean + torch.exp(0.5 * logvar) * torch.randn_like(mean)
        y = vae.decode(z)
        rec = (y - x).abs().mean() + ((y - x) ** 2).mean()
        kl = 0.5 * (mean**2 + logvar.exp() - 1 - logvar).mean()
        loss = rec + 1e-4 * kl
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        opt.step()
        r = float(rec.detach())
        ema = r if ema is None else 0.98 * ema + 0.02 * r
        if step % 50 == 0 or step == steps - 1:
            with torch.no_grad():
                p = float(psnr(y, x).mean())
            log(f"vae step {step:5d}/{steps}  rec {ema:.4f}  kl {float(kl.detach()):.3f}  psnr(batch) {p:.2f} dB", t0)
    return vae.eval()


# ---------------------------------------------------------------------------------------- stage 2: FlexTok


def fsq_ste(fsq, z: torch.Tensor) -> torch.Tensor:
    """FSQ codes with a straight-through gradient (same values as ``FSQ.forward``)."""
    zb = fsq.bound(z.float())
    zq = zb + (zb.round() - zb).detach()
    return zq / (fsq._levels // 2)


def zero_init_heads(model) -> None:
    """adaLN-zero and zero-initialised output heads (the reference's ``weight_init_style='zero'``)."""
    dec, enc = model.decoder, model.encoder
    for blk in dec._m("transformer").blocks:
        torch.nn.init.zeros_(blk.adaLN_modulation[1].weight)
        torch.nn.init.zeros_(blk.adaLN_modulation[1].bias)
    head = dec._m("to_patches")
    torch.nn.init.zeros_(head.proj.weight)
    torch.nn.init.zeros_(head.proj.bias)
    torch.nn.init.zeros_(head.adaLN_modulation[1].weight)
    torch.nn.init.zeros_(head.adaLN_modulation[1].bias)
    torch.nn.init.trunc_normal_(enc._m("to_latents").proj.weight, std=0.02)


@torch.no_grad()
def latent_bank(model, sampler: CropSampler, n: int, batch: int = 64) -> torch.Tensor:
    """Scaled VAE latents of ``n`` random training crops (the frozen VAE runs once per crop)."""
    return torch.cat([model.vae.encode(sampler(batch)) for _ in range(math.ceil(n / batch))])[:n]


def train_flextok(model, bank: torch.Tensor, steps: int, batch: int, t0: float, lr: float, p_null: float = 0.1,
                  t_shift: float = 1.0, seed: int = 1234):
    """Train ``model.encoder`` + ``model.decoder`` on VAE latents ``bank`` (the VAE stays frozen)."""
    enc, dec, fsq = model.encoder, model.decoder, model.regularizer
    params = list(enc.parameters()) + list(dec.parameters())
    params = [p for p in params if p.requires_grad]
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.02}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=lr, betas=(0.9, 0.99))
    n_reg = dec.n_registers
    keeps = torch.tensor([2**i for i in range(int(math.log2(n_reg)) + 1)])
    g = torch.Generator().manual_seed(seed)
    ema = None
    for step in range(steps):
        for gr in opt.param_groups:
            gr["lr"] = lr_at(step, steps, lr, max(1, steps // 20))
        x0 = bank[torch.randint(0, bank.shape[0], (batch,), generator=g)]  # scaled latents [B, C, 8, 8]
        z = enc(x0)
        codes = fsq_ste(fsq, z)
        keep = keeps[torch.randint(0, len(keeps), (batch,), generator=g)]
        regs = dec.cond_registers(codes, keep)
        drop = torch.rand(batch, generator=g) < p_null
        if bool(drop.any()):
            null, _ = dec.null_registers(batch, regs)
            regs = torch.where(drop[:, None, None], null.to(regs.dtype), regs)
        t = torch.sigmoid(torch.randn(batch, generator=g) + t_shift)  # logit-normal, shifted towards noise
        noise = torch.randn(x0.shape, generator=g)
        tb = t[:, None, None, None]
        x_t = (1 - tb) * x0 + tb * noise
        v = dec(x_t, t, regs)
        loss = F.mse_loss(v, noise - x0)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        r = float(loss.detach())
        ema = r if ema is None else 0.98 * ema + 0.02 * r
        if step % 100 == 0 or step == steps - 1:
            log(f"flextok step {step:5d}/{steps}  flow loss {ema:.4f}", t0)
    return model.eval()


# ---------------------------------------------------------------------------------------- release files


def write_release(model, vae, out: Path) -> dict[str, Path]:
    """Write the VAE (diffusers layout) and FlexTok (``model.safetensors`` with the Hydra config in
    its metadata, no ``vae.vae.*`` keys: the loader takes them from the VAE card)."""
    from zoo_plugins.flextok.export import to_header, to_metadata

    vdir, tdir = out / "vae_tiny", out / "tiny"
    vdir.mkdir(parents=True, exist_ok=True)
    cfg = vae_config(vae.config.latent_channels)
    cfg["scaling_factor"] = float(model.config.vae.scaling_factor)
    (vdir / "config.json").write_text(json.dumps(cfg, indent=2) + "\n")
    save_safetensors(vae.state_dict(), vdir / "diffusion_pytorch_model.safetensors")
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("vae.")}
    meta = to_metadata(model.config)
    save_safetensors(state, tdir / "model.safetensors", metadata=to_header(meta))
    return {"vae_dir": vdir, "tok_dir": tdir}


def load_release(out: Path):
    """Load the written files exactly as ``zoo.load`` does: builder -> config merge -> strict load."""
    from zoo.builders import CheckpointFiles
    from zoo.config import merge_config
    from zoo.weights import load_state_dict_strict
    from zoo_plugins.flextok.builder import FlexTokBuilder

    vdir, tdir = out / "vae_tiny", out / "tiny"
    vae_files = CheckpointFiles({n: vdir / n for n in ("config.json", "diffusion_pytorch_model.safetensors")})
    files = CheckpointFiles({"model.safetensors": tdir / "model.safetensors"}, deps={"vae": vae_files}, origin=str(tdir))
    builder = FlexTokBuilder()
    ck = builder.read_checkpoint(files)
    config = merge_config(builder.config_class, [("checkpoint", ck.config)])
    model = builder.build(config)
    load_state_dict_strict(model, builder.convert(ck.state_dict, config), what="demo release")
    return model.eval()


# ---------------------------------------------------------------------------------------- evaluation


def downsample_baseline(x: torch.Tensor, bits: float) -> tuple[torch.Tensor, int]:
    """The largest ``s x s`` RGB thumbnail (8 bits per channel) within ``bits``, bicubic-upsampled
    back; ``s = 0`` (fewer than 24 bits) is the mean colour of the evaluation set."""
    s = int(math.floor(math.sqrt(bits / 24)))
    if s < 1:
        return x.mean(dim=(0, 2, 3), keepdim=True).expand_as(x), 0
    small = F.interpolate(x, size=(s, s), mode="area")
    small = torch.round((small + 1) * 127.5) / 127.5 - 1
    return F.interpolate(small, size=x.shape[-2:], mode="bicubic", align_corners=False).clamp(-1, 1), s


@torch.no_grad()
def evaluate(model, views: torch.Tensor, steps: int, guidance_scale: float, seed: int = 0) -> dict[str, Any]:
    """PSNR of reconstructions per kept-token count, the VAE alone, and the baselines."""
    latent = views.shape[-1] // model.vae.downsample_factor
    tokens = model.encode(views)
    bits_per_token = math.log2(model.codebook_size)
    table = []
    for k in TOKENS_EVAL:
        rec = model.decode(tokens.truncate(k), steps=steps, guidance_scale=guidance_scale, norm_guidance=False,
                           generator=torch.Generator().manual_seed(seed), latent_size=latent)
        base, s = downsample_baseline(views, k * bits_per_token)
        table.append({"tokens": k, "bits": round(k * bits_per_token, 1), "psnr": round(float(psnr(rec, views).mean()), 2),
                      "mse": round(float(((rec.clamp(-1, 1) - views) ** 2).mean()), 5),
                      "baseline": f"{s}x{s} thumbnail" if s else "mean colour",
                      "baseline_psnr": round(float(psnr(base, views).mean()), 2)})
    vae_only = model.vae.decode(model.vae.encode(views))
    mean_image = views.mean(0, keepdim=True).expand_as(views)
    return {"steps": steps, "guidance_scale": guidance_scale, "per_tokens": table,
            "vae_psnr": round(float(psnr(vae_only, views).mean()), 2),
            "mean_image_psnr": round(float(psnr(mean_image, views).mean()), 2)}


# ---------------------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=Path("plugins/flextok/demo"))
    ap.add_argument("--examples", type=Path, default=Path("examples/images"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1, help="1 is fastest on a contended CPU (no OpenMP spinning)")
    ap.add_argument("--latent-channels", type=int, default=16)
    ap.add_argument("--vae-steps", type=int, default=800)
    ap.add_argument("--vae-batch", type=int, default=32)
    ap.add_argument("--tok-steps", type=int, default=1500)
    ap.add_argument("--t-shift", type=float, default=1.0, help="mean of logit(t): > 0 trains more on noisy inputs, where tokens matter")
    ap.add_argument("--tok-batch", type=int, default=32)
    ap.add_argument("--tok-lr", type=float, default=1.5e-3)
    ap.add_argument("--bank", type=int, default=12288, help="number of VAE-encoded training crops")
    ap.add_argument("--registers", type=int, default=32)
    ap.add_argument("--dim", type=int, default=96)
    ap.add_argument("--depth", type=int, default=3)
    ap.add_argument("--eval-steps", type=int, nargs="+", default=[1, 4])
    ap.add_argument("--resume", type=Path, default=None,
                    help="phase 2: continue training the FlexTok in this release dir (its VAE is kept), "
                         "with a fresh optimizer, --tok-steps / --t-shift / --tok-lr, latent bank seed + 3")
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    t0 = time.perf_counter()
    train = {n: load_skimage(n) for n in TRAIN}
    held = {n: load_skimage(n) for n in HELDOUT}
    args.examples.mkdir(parents=True, exist_ok=True)
    from PIL import Image

    for n, arr in held.items():
        Image.fromarray(center_square(arr, 2 * IMAGE_SIZE)).save(args.examples / f"{n}.png", optimize=True)
    log(f"data: {len(train)} training images, {len(held)} held out -> {args.examples}", t0)

    prev: dict[str, Any] = {}
    if args.resume is None:
        vae_sampler = CropSampler(list(train.values()), 32, seed=args.seed)
        vae = train_vae(vae_sampler, args.latent_channels, args.vae_steps, args.vae_batch, t0)
        t_vae = time.perf_counter() - t0

        tok_sampler = CropSampler(list(train.values()), IMAGE_SIZE, seed=args.seed + 1)
        with torch.no_grad():
            z = torch.cat([vae.encode(tok_sampler(64)) for _ in range(8)])
        scaling = round(1.0 / float(z.std()), 5)
        log(f"latent std {float(z.std()):.4f} -> scaling_factor {scaling}", t0)

        from zoo_plugins.flextok.model import FlexTok

        torch.manual_seed(args.seed + 2)
        cfg = flextok_config(args.latent_channels, scaling, args.registers, args.dim, args.depth)
        model = FlexTok(cfg)
        model.vae.vae.load_state_dict(vae.state_dict())
        zero_init_heads(model)
        bank_seed, train_seed = args.seed + 1, 1234
    else:  # phase 2 on top of an earlier run's release files
        prev = json.loads((args.resume / "train_stats.json").read_text())
        model = load_release(args.resume)
        vae = model.vae.vae
        t_vae = 0.0
        tok_sampler = CropSampler(list(train.values()), IMAGE_SIZE, seed=args.seed + 3)
        bank_seed, train_seed = args.seed + 3, 4321
        log(f"resumed from {args.resume}", t0)
    model.vae.requires_grad_(False)
    model.vae.vae.channels_last = True
    model.train()
    t1 = time.perf_counter()
    bank = latent_bank(model, tok_sampler, args.bank)
    log(f"latent bank {tuple(bank.shape)} (sampler seed {bank_seed})", t0)
    train_flextok(model, bank, args.tok_steps, args.tok_batch, t0, args.tok_lr, t_shift=args.t_shift, seed=train_seed)
    t_tok = time.perf_counter() - t1

    write_release(model, vae, args.out)
    released = load_release(args.out)
    from zoo.media.image import load_images

    views = eval_views(load_images(sorted(args.examples.glob("*.png"))))
    settings = [(s, 1.0) for s in args.eval_steps] + [(max(args.eval_steps), 3.0)]
    results = {f"steps={s},guidance={g}": evaluate(released, views, s, g) for s, g in settings}
    for g, r in results.items():
        log(f"eval {g}: vae {r['vae_psnr']} dB, mean image {r['mean_image_psnr']} dB", t0)
        for row in r["per_tokens"]:
            log(f"  {row['tokens']:3d} tokens ({row['bits']:6.1f} bits): {row['psnr']:6.2f} dB   "
                f"{row['baseline']}: {row['baseline_psnr']:6.2f} dB", t0)
    sizes = {str(p.relative_to(args.out)): p.stat().st_size for p in sorted(args.out.rglob("*.safetensors"))}
    stats = {
        "what": "zoo demo weights (flextok.demo_tiny + flextok_vae.demo_tiny): NOT for research use",
        "command": "python scripts/train_demo_flextok.py " + " ".join(argv if argv is not None else __import__("sys").argv[1:]),
        "seed": args.seed, "threads": args.threads, "torch": torch.__version__,
        "train_images": TRAIN, "heldout_images": HELDOUT, "source": "scikit-image skimage.data (bundled files)",
        "image_size": IMAGE_SIZE,
        "vae": prev.get("vae") or {"steps": args.vae_steps, "batch": args.vae_batch, "crop": 32, "minutes": round(t_vae / 60, 1),
                                   "params": sum(p.numel() for p in vae.parameters())},
        "phase1": prev.get("flextok"),
        "phase1_command": prev.get("command"),
        "flextok": {"steps": args.tok_steps, "batch": args.tok_batch, "lr": args.tok_lr, "t_shift": args.t_shift,
                    "dim": args.dim, "depth": args.depth, "registers": args.registers, "latent_bank": args.bank,
                    "minutes": round(t_tok / 60, 1),
                    "params": sum(p.numel() for n, p in released.named_parameters() if not n.startswith("vae."))},
        "total_minutes": round((time.perf_counter() - t0) / 60, 1),
        "file_bytes": sizes,
        "eval": {"views": "5 per held-out image (whole image at 64x64 + four 64x64 corner crops of the 128x128 PNG)",
                 "n_views": int(views.shape[0]), "results": results},
    }
    (args.out / "train_stats.json").write_text(json.dumps(stats, indent=2) + "\n")
    log(f"wrote {args.out} ({sizes})", t0)


if __name__ == "__main__":
    main()
