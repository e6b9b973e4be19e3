"""LightningDiT (hustvl/LightningDiT): cards and the published key layout, velocity and sampling
parity with the reference (its float32 shifted grid, CFG on 3 channels inside the interval),
the checkpoint layout, decoding, randomness and bad input.

Fixtures (tests/fixtures/lightningdit) were recorded by scripts/parity/record_lightningdit.py from
the reference ``LightningDiT`` + ``transport.Sampler.sample_ode`` on per-key seeded weights,
``z = torch.randn(...)`` drawn after ``torch.manual_seed(seed)``.
"""

from __future__ import annotations

import gzip
import json
from functools import lru_cache
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import zoo
from zoo.errors import InputError
from zoo.testing.weights import assert_manifest_equal, load_seeded, seeded_state_dict, state_manifest

FIX = Path(__file__).resolve().parents[2] / "fixtures" / "lightningdit"
CARDS = ("lightningdit.xl_800ep", "lightningdit.xl_64ep")
TINY_VAE = dict(embed_dim=8, z_channels=8, ch=32, ch_mult=[1, 1, 1, 1, 1], num_res_blocks=1, attn_resolutions=[],
                decoder_attn_resolutions=[], resolution=64, image_size=64)


@lru_cache(maxsize=None)
def fixtures() -> dict:
    return json.loads((FIX / "cases.json").read_text())


@lru_cache(maxsize=None)
def reference() -> dict:
    return load_file(str(FIX / "cases.safetensors"))


def _manifest(name: str) -> dict:
    return {k: (tuple(s), t) for k, (s, t) in fixtures()["configs"][name]["manifest"].items()}


@lru_cache(maxsize=None)
def model(name: str = "small"):
    from zoo_plugins.lightningdit.config import LightningDiTConfig
    from zoo_plugins.lightningdit.model import LightningDiT

    m = LightningDiT(LightningDiTConfig(**fixtures()["configs"][name]["config"])).eval()
    load_seeded(m, _manifest(name))
    return m


@pytest.mark.parametrize("name", CARDS)
def test_cards_build_the_published_key_layout(name):
    m = zoo.load(name, pretrained=False, device="meta")
    published = json.loads(gzip.decompress((FIX / "manifests.json.gz").read_bytes()))["xl_1"]
    assert_manifest_equal(state_manifest(m), {k: (tuple(s), t) for k, (s, t) in published.items()}, what=name)
    assert zoo.get_card(name).dependencies == {"vae": "va_vae.f16d32"}


@pytest.mark.parametrize("name,defaults", [
    ("lightningdit.xl_800ep", dict(cfg_scale=6.7, cfg_interval_start=0.125, timestep_shift=0.3, num_sampling_steps=250)),
    ("lightningdit.xl_64ep", dict(cfg_scale=10.0, cfg_interval_start=0.10, timestep_shift=0.3, num_sampling_steps=250)),
])
def test_card_sampler_defaults_are_the_reproduction_configs(name, defaults):
    cfg = zoo.load(name, pretrained=False, device="meta").config
    assert {k: getattr(cfg, k) for k in defaults} == defaults


@pytest.mark.parametrize("name", ["small", "variant"])
def test_velocity_matches_the_reference(name):
    ref = reference()
    out = model(name)(ref[f"{name}.forward.x"], ref[f"{name}.forward.t"], ref[f"{name}.forward.y"])
    assert torch.allclose(out, ref[f"{name}.forward.out"], atol=2e-6)


@pytest.mark.parametrize("case", sorted(json.loads((FIX / "cases.json").read_text())["cases"]))
def test_sampling_matches_the_reference(case):
    """seed=s draws the reference's torch.randn after torch.manual_seed(s)."""
    c = fixtures()["cases"][case]
    ref = reference()[f"{case}.latents"]
    lat = model().generate(c["labels"], steps=c["steps"], guidance_scale=c["guidance_scale"],
                           cfg_interval_start=c["cfg_interval_start"], timestep_shift=c["timestep_shift"], seed=c["seed"],
                           return_latents=True)
    got = lat.values.transpose(1, 2).reshape(ref.shape)
    assert torch.allclose(got, ref, atol=1e-5)


def test_unconditional_pass_runs_only_inside_the_interval(monkeypatch):
    m = model()
    rows = []
    real = m.forward_embedded
    monkeypatch.setattr(m, "forward_embedded", lambda x, t, y: (rows.append((float(t[0]), x.shape[0])), real(x, t, y))[1])
    m.generate([1], steps=6, guidance_scale=4.0, cfg_interval_start=0.3, timestep_shift=0.0, seed=0, return_latents=True)
    assert [(round(t, 2), n) for t, n in rows] == [(0.0, 1), (0.2, 1), (0.4, 2), (0.6, 2), (0.8, 2)]


def test_noise_argument_equals_the_seeded_draw_and_the_global_rng_is_untouched():
    m = model()
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    a = m.generate([2], steps=3, seed=4, return_latents=True).values
    assert torch.equal(torch.random.get_rng_state(), before)
    z = torch.randn(1, 8, 4, 4, generator=torch.Generator().manual_seed(4))
    b = m.generate([2], steps=3, noise=z, return_latents=True).values
    assert torch.equal(a, b)


def test_decode_goes_through_the_paired_vae_and_its_statistics():
    m = model()
    vae = zoo.load("va_vae.f16d32", pretrained=False, **TINY_VAE)
    with torch.no_grad():
        vae.latent_mean.copy_(torch.linspace(-1, 1, 8).view(vae.latent_mean.shape))
        vae.latent_std.copy_(torch.linspace(0.5, 2, 8).view(vae.latent_std.shape))
    lat = m.generate([5], steps=3, seed=2, return_latents=True)
    images = m.generate([5], steps=3, seed=2, vae=vae)
    assert images.shape == (1, 3, 64, 64)
    z = lat.values.transpose(1, 2).reshape(1, 8, 4, 4) * vae.latent_std + vae.latent_mean  # LightningDiT's denormalisation
    assert torch.allclose(images, vae.decode(z), atol=1e-6)


@pytest.mark.parametrize(("kwargs", "match"), [
    (dict(class_labels=[10]), "0..9"),
    (dict(class_labels=[1], steps=1), "steps"),
    (dict(class_labels=[1], cfg_channels=9), "cfg_channels"),
    (dict(class_labels=[1], cfg_channels=0), "cfg_channels"),
    (dict(class_labels=[1], noise=torch.zeros(1, 8, 2, 2)), "noise must be"),
    (dict(class_labels=[1], noise=torch.zeros(1, 8, 4, 4), seed=0), "not both"),
    (dict(class_labels=[1], noise=torch.full((1, 8, 4, 4), float("nan"))), "finite"),
    (dict(class_labels=[1], guidance_scale=float("inf")), "finite"),
    (dict(class_labels=[1], guidance_scale=float("nan")), "finite"),
])
def test_bad_input_is_refused(kwargs, match):
    with pytest.raises(InputError, match=match):
        model().generate(**{"steps": 3, **kwargs}, return_latents=True)


def test_train_checkpoint_loads_its_ema(tmp_path):
    cfg = fixtures()["configs"]["small"]["config"]
    path = tmp_path / "lightningdit-xl-imagenet256-800ep.pt"
    ema = seeded_state_dict(_manifest("small"))
    torch.save({"model": seeded_state_dict(_manifest("small"), seed=3), "ema": ema, "opt": {}, "config": {"x": 1}}, path)
    m = zoo.load("lightningdit.xl_800ep", weights=path, **cfg)
    assert all(torch.equal(v, ema[k]) for k, v in m.state_dict().items())
    bare = tmp_path / "bare.pt"
    torch.save(ema, bare)
    m2 = zoo.load("lightningdit.xl_800ep", weights=bare, **cfg)
    assert all(torch.equal(v, ema[k]) for k, v in m2.state_dict().items())


def test_shared_sde_sampler_matches_sits_euler_maruyama():
    """zoo.sampling.sample_sde + linear_path_sde on this velocity model == SiT's Sampler.sample_sde
    (the reference repository's transport): the same seeded stream for the initial noise and each step."""
    from zoo.sampling.sde import linear_path_sde, sample_sde, sde_time_grid

    c = fixtures()["sde"]
    m = model()
    y = m.y_embedder.embedding_table(torch.tensor(c["labels"]))
    g = torch.Generator().manual_seed(c["seed"])
    z = torch.randn(len(c["labels"]), 8, 4, 4, generator=g)

    def velocity(x, t, guided):
        return m.forward_embedded(x, torch.full((x.shape[0],), t), y)

    drift, diffusion = linear_path_sde(velocity, form=c["form"], norm=c["norm"])
    with torch.no_grad():
        out = sample_sde(drift, diffusion, z, times=sde_time_grid(c["steps"], last_step_size=c["last_step_size"]), generator=g,
                         last_step="mean", last_step_size=c["last_step_size"])
    assert torch.allclose(out, reference()["sde.latents"], atol=1e-5)
