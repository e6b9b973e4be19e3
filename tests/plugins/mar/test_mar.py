"""MAR (LTH14/mar): cards and published key layouts, parity of generation with the reference
(numpy orders + torch noise stream), the official checkpoint layout, decoding, randomness and
bad input.

Fixtures (tests/fixtures/mar) were recorded by scripts/parity/record_mar.py from the reference
``MAR.sample_tokens`` on per-key seeded weights after ``torch.manual_seed(s); np.random.seed(s)``.
"""

from __future__ import annotations

import argparse
import gzip
import json
from functools import lru_cache
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import zoo
from zoo.errors import CheckpointError, InputError, TokenError
from zoo.testing.weights import assert_manifest_equal, default_init, seeded_state_dict, state_manifest

FIX = Path(__file__).resolve().parents[2] / "fixtures" / "mar"
SIZES = {"mar.base": "mar_base", "mar.large": "mar_large", "mar.huge": "mar_huge"}
TINY_VAE = dict(ch=32, ch_mult=[1, 1, 1, 1, 1], num_res_blocks=1, attn_resolutions=[], decoder_attn_resolutions=[], resolution=64,
                image_size=64)


@lru_cache(maxsize=None)
def fixtures() -> dict:
    return json.loads((FIX / "cases.json").read_text())


def _manifest() -> dict:
    return {k: (tuple(s), t) for k, (s, t) in fixtures()["manifest"].items()}


def _weights(seed: int = 0) -> dict:
    prefixes = tuple(fixtures()["small_std_prefixes"])
    return seeded_state_dict(_manifest(), seed=seed,
                             init=lambda k, s: (0.0, 0.02) if k.startswith(prefixes) else default_init(k, s))


@lru_cache(maxsize=None)
def tiny():
    from zoo_plugins.mar.config import MARConfig
    from zoo_plugins.mar.model import MAR

    model = MAR(MARConfig(**fixtures()["config"], num_iter=4, num_sampling_steps="5")).eval()
    assert_manifest_equal(state_manifest(model), _manifest(), what="MAR small")
    model.load_state_dict(_weights(), strict=True)
    return model


@lru_cache(maxsize=None)
def tiny_vae():
    return zoo.load("mar_vae.kl16", pretrained=False, **TINY_VAE)


@pytest.mark.parametrize("name", sorted(SIZES))
def test_cards_build_the_published_key_layout(name):
    model = zoo.load(name, pretrained=False, device="meta")
    published = json.loads(gzip.decompress((FIX / "manifests.json.gz").read_bytes()))[SIZES[name]]
    assert_manifest_equal(state_manifest(model), {k: (tuple(s), t) for k, (s, t) in published.items()}, what=name)
    assert zoo.get_card(name).dependencies == {"vae": "mar_vae.kl16"}


@pytest.mark.parametrize("case", sorted(json.loads((FIX / "cases.json").read_text())["cases"]))
def test_generation_matches_the_reference(case):
    """Seed s with orders='numpy' is the reference run after torch.manual_seed(s); np.random.seed(s)."""
    c = fixtures()["cases"][case]
    ref = load_file(str(FIX / "cases.safetensors"))[case]
    lat = tiny().generate(c["labels"], steps=c["steps"], guidance_scale=c["guidance_scale"], cfg_schedule=c["cfg_schedule"],
                          temperature=c["temperature"], diffusion_steps=c["diffusion_steps"], seed=c["seed"], orders="numpy",
                          return_latents=True)
    h = ref.shape[-1]
    got = lat.values.transpose(1, 2).reshape(ref.shape)
    assert lat.meta["grid"] == (h, h) and lat.meta["normalized"] is True
    tol = 1e-5 * float(ref.abs().max()) + 1e-5
    assert float((got - ref).abs().max()) <= tol


def test_generation_depends_on_the_generator_only():
    m = tiny()
    a = m.generate([1, 2], steps=3, diffusion_steps="4", seed=5, return_latents=True).values
    torch.manual_seed(0)
    b = m.generate([1, 2], generator=torch.Generator().manual_seed(5), steps=3, diffusion_steps="4", return_latents=True).values
    c = m.generate([1, 2], steps=3, diffusion_steps="4", seed=6, return_latents=True).values
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_given_orders_fix_the_generation_order():
    """Each step fills exactly the end of each order (captured through the block loop)."""
    m = tiny()
    orders = torch.stack([torch.arange(16), torch.arange(16).flip(0)])
    full = m.generate([1, 2], steps=16, guidance_scale=1.0, diffusion_steps="2", seed=0, orders=orders, return_latents=True)
    assert full.values.shape == (2, 16, 16)
    with pytest.raises(InputError, match="permutation"):
        m.generate([1, 2], steps=2, seed=0, orders=torch.zeros(2, 16, dtype=torch.long))


def test_decode_goes_through_the_paired_vae():
    m, vae = tiny(), tiny_vae()
    lat = m.generate([4], steps=2, diffusion_steps="3", seed=1, return_latents=True)
    images = m.generate([4], steps=2, diffusion_steps="3", seed=1, vae=vae)
    assert images.shape == (1, 3, 64, 64) and float(images.abs().max()) <= 1.0
    want = vae.decode(vae.denormalize_latents(lat))  # latents / 0.2325, then the VAE decoder
    assert torch.allclose(images, want, atol=1e-6)


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    (dict(class_labels=[10]), InputError, "0..9"),
    (dict(class_labels=[1.5]), Exception, "integers"),
    (dict(class_labels=[1], steps=0), InputError, "steps"),
    (dict(class_labels=[1], steps=17), InputError, "steps"),
    (dict(class_labels=[1], cfg_schedule="cosine"), InputError, "cfg_schedule"),
    (dict(class_labels=[1], orders="numpy"), InputError, "seed="),
    (dict(class_labels=[1], orders="random", seed=0), InputError, "orders"),
    (dict(class_labels=[1], orders=torch.arange(8)[None], seed=0), InputError, r"\[1, 16\]"),
    (dict(class_labels=[1], diffusion_steps="ddim999", seed=0), InputError, "stride"),
    (dict(class_labels=[1], temperature=-1.0, seed=0), InputError, "temperature"),
    (dict(class_labels=[1], seed=0, generator=torch.Generator()), InputError, "either"),
    (dict(class_labels=[1], guidance_scale=float("nan"), seed=0), InputError, "finite"),
    (dict(class_labels=[1], guidance_scale=float("inf"), seed=0), InputError, "finite"),
])
def test_bad_input_is_refused(kwargs, error, match):
    with pytest.raises(error, match=match):
        tiny().generate(**kwargs, return_latents=True)


def test_the_vae_refuses_latents_of_another_shape():
    with pytest.raises(TokenError):
        tiny().decode(torch.zeros(1, 8, 4, 4), vae=tiny_vae())


def test_official_checkpoint_loads_model_ema(tmp_path):
    path = tmp_path / "checkpoint-last.pth"
    torch.save({"model": _weights(seed=1), "model_ema": _weights(), "optimizer": {}, "epoch": 799,
                "args": argparse.Namespace(model="mar_base")}, path)
    model = zoo.load("mar.base", weights=path, **fixtures()["config"])
    ema = _weights()
    assert all(torch.equal(v, ema[k]) for k, v in model.state_dict().items())


def test_checkpoint_without_ema_is_refused(tmp_path):
    path = tmp_path / "checkpoint-last.pth"
    torch.save({"model": _weights(), "optimizer": {}}, path)
    with pytest.raises(CheckpointError, match="model_ema"):
        zoo.load("mar.base", weights=path, **fixtures()["config"])


def test_pretrained_card_without_weights_points_at_the_url():
    with pytest.raises(zoo.errors.ZooError, match="dropbox"):
        zoo.load("mar.base")


def test_cli_generates_a_grid(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from zoo.cli import cli
    from zoo.media.image import open_image

    calls = []

    def fake_load(name, **kw):
        calls.append(name)
        m = tiny()
        m.vae_pretrained, m.card = False, zoo.get_card("mar.base")
        return m

    real_load = zoo.load
    monkeypatch.setattr(zoo, "load", lambda name, **kw: fake_load(name, **kw) if name.split(".")[0] == "mar" else
                        real_load(name, **{**kw, **TINY_VAE}))
    out = tmp_path / "grid.png"
    res = CliRunner().invoke(cli, ["generate", "--model", "mar", "--class", "3", "--class", "7", "--seeds", "0,1",
                                   "--steps", "2", "--random", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "2 x 2 images" in res.output
    img = open_image(out)
    assert img.size[0] >= 2 * 64 and img.size[1] >= 2 * 64
    res = CliRunner().invoke(cli, ["generate", "--model", "mar", "--class", "3", "5", "--random", "--out", str(out)])
    assert res.exit_code != 0 and "not both" in res.output
