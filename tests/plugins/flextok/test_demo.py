"""The embedded demo weights (``flextok.demo_tiny``, issue 7): they load offline from inside the
package through the same builder as hub weights, the cards say plainly what they are, and the
weights are *trained*: on held-out photographs, reconstruction improves as more tokens are kept
and beats the mean-image baseline.

The held-out photographs are ``examples/images/*.png`` (scikit-image's chelsea, coffee, rocket;
none of them was in the training data, see ``scripts/train_demo_flextok.py``). Each gives 5
64x64 views: the whole image downsized, and its four corner crops at 128x128.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import zoo
from zoo.media.image import load_images

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = sorted((ROOT / "examples" / "images").glob("*.png"))
DEMO_DIR = ROOT / "plugins" / "flextok" / "demo"
NAME, VAE_NAME = "flextok.demo_tiny", "flextok_vae.demo_tiny"
KEEPS = (1, 2, 4, 8, 16, 32)
STEPS = 1  # one Euler step from pure noise = the decoder's estimate of E[image | tokens], what PSNR rewards
MIN_GAIN_DB = 0.5  # 32 tokens vs 1 token (measured on the committed weights: see the card's metrics)
MAX_BYTES = 20 * 1024 * 1024


def psnr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR (dB) of [-1, 1] images, measured on [0, 1]."""
    mse = (((a.clamp(-1, 1) - b) / 2) ** 2).flatten(1).mean(1)
    return -10 * torch.log10(mse.clamp_min(1e-10))


def eval_views(images: torch.Tensor, size: int = 64) -> torch.Tensor:
    """[B, 3, 128, 128] -> [5B, 3, 64, 64]: whole image downsized + four corner crops."""
    whole = F.interpolate(images, size=(size, size), mode="bicubic", align_corners=False, antialias=True).clamp(-1, 1)
    s = size
    return torch.cat([whole, images[..., :s, :s], images[..., :s, s:], images[..., s:, :s], images[..., s:, s:]])


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return zoo.load(NAME)


@pytest.fixture(scope="module")
def views():
    assert len(EXAMPLES) >= 3, f"examples/images should hold the held-out PNGs, found {EXAMPLES}"
    return eval_views(load_images(EXAMPLES))


@pytest.fixture(scope="module")
def table(model, views):
    """PSNR per kept-token count (mean over the views), same noise seed for every row."""
    tokens = model.encode(views)
    out = {}
    for k in KEEPS:
        rec = model.decode(tokens.truncate(k), steps=STEPS, guidance_scale=1.0, norm_guidance=False,
                           generator=torch.Generator().manual_seed(0), latent_size=views.shape[-1] // 8)
        out[k] = float(psnr(rec, views).mean())
    return out


# ------------------------------------------------------------------------------------ cards


@pytest.mark.parametrize("name", [NAME, VAE_NAME])
def test_card_says_plainly_what_the_weights_are(name):
    record = zoo.info(name)
    text = (record["description"] + " " + record["notes"]).lower()
    for phrase in ("demo weights", "not for research use", "trained on", "minutes"):
        assert phrase in text, f"{name}: the card must say {phrase!r}"
    assert record["package_dir"].startswith("zoo_plugins.flextok:demo/")
    assert record["hub_repo"] is None
    assert "skimage" in text or "scikit-image" in text, "the card must name the training data source"


def test_card_reports_measured_quality():
    metrics = zoo.info(NAME)["metrics"]
    per_k = metrics["heldout_psnr_db"]
    assert sorted(int(k) for k in per_k) == list(KEEPS)
    assert per_k["32"] > per_k["1"]
    assert "mean_image_psnr_db" in metrics


@pytest.mark.parametrize("sub", ["tiny", "vae_tiny"])
def test_weights_are_small_safetensors(sub):
    files = sorted((DEMO_DIR / sub).glob("*.safetensors"))
    assert files, f"no safetensors in {DEMO_DIR / sub}"
    for f in files:
        assert f.stat().st_size <= MAX_BYTES, f"{f} is {f.stat().st_size / 2**20:.1f} MiB (limit 20 MiB)"


# ------------------------------------------------------------------------------------ loading


def test_loads_offline_through_the_release_format(monkeypatch, model):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from zoo.hub import resolve_files
    from zoo.registry import get_registry

    reg = get_registry()
    files = resolve_files(reg.cards[NAME], reg.cards)
    assert files.origin.startswith("package zoo_plugins.flextok:demo/tiny")
    assert set(files.paths) == {"model.safetensors"} and set(files.deps) == {"vae"}
    assert set(files.deps["vae"].paths) == {"config.json", "diffusion_pytorch_model.safetensors"}
    again = zoo.load(NAME)  # strict load, config from the safetensors metadata
    assert again.num_tokens == 32 and again.codebook_size == 64000
    assert model.card.name == NAME


def test_vae_card_loads_alone():
    vae = zoo.load(VAE_NAME)
    x = eval_views(load_images(EXAMPLES[:1]))[:1]
    with torch.no_grad():
        z = vae.encode(x)
        rec = vae.decode(z)
    assert z.shape == (1, 16, 8, 8)
    assert float(psnr(rec, x).mean()) > 16.0


# ------------------------------------------------------------------------------------ trained, not random


def test_tokens_depend_on_the_image(model, views):
    ids = model.encode(views).ids
    assert ids.shape == (views.shape[0], 32)
    assert len({tuple(r) for r in ids.tolist()}) == views.shape[0], "every view should get its own token sequence"


def test_error_falls_as_more_tokens_are_kept(table):
    values = [table[k] for k in KEEPS]
    print("held-out PSNR (dB) per kept tokens:", {k: round(v, 2) for k, v in table.items()})
    for (k0, a), (k1, b) in zip(list(table.items()), list(table.items())[1:]):
        assert b >= a - 0.15, f"PSNR fell from {a:.2f} dB ({k0} tokens) to {b:.2f} dB ({k1} tokens)"
    assert values[-1] - values[0] >= MIN_GAIN_DB, f"32 tokens should be clearly better than 1: {values}"


def test_beats_the_mean_image_baseline(table, views):
    """Every prefix beats the mean of the held-out views themselves (an oracle constant image)."""
    mean_image = views.mean(0, keepdim=True).expand_as(views)
    baseline = float(psnr(mean_image, views).mean())
    for k, v in table.items():
        assert v > baseline + 1.0, f"{k} tokens: {v:.2f} dB does not beat the mean image ({baseline:.2f} dB)"


def test_random_weights_do_not_pass(views):
    """The same architecture untrained: the checks above would fail (so they test training)."""
    from zoo_plugins.flextok.model import FlexTok

    # the trained model's config and (trained) VAE, a randomly initialised tokenizer
    torch.manual_seed(0)
    trained = zoo.load(NAME)
    rand = FlexTok(trained.config).eval()
    rand.vae.load_state_dict(trained.vae.state_dict())
    tokens = rand.encode(views)
    r1 = rand.decode(tokens.truncate(1), steps=STEPS, guidance_scale=1.0, generator=torch.Generator().manual_seed(0), latent_size=8)
    r32 = rand.decode(tokens.truncate(32), steps=STEPS, guidance_scale=1.0, generator=torch.Generator().manual_seed(0), latent_size=8)
    gain = float(psnr(r32, views).mean() - psnr(r1, views).mean())
    assert gain < MIN_GAIN_DB / 2, f"an untrained FlexTok should not improve with more tokens (gain {gain:.2f} dB)"
    assert math.isfinite(gain)


# ------------------------------------------------------------------------------------ the README command


def test_zoo_reconstruct_writes_a_grid(tmp_path):
    from click.testing import CliRunner
    from PIL import Image

    from zoo.cli import cli

    out = tmp_path / "grid.png"
    args = ["reconstruct", *map(str, EXAMPLES), "--model", NAME, "--tokens", "1,4,32", "--out", str(out), "--steps", "4"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    grid = Image.open(out)
    assert grid.width > 4 * 64 and grid.height > len(EXAMPLES) * 64
