"""MAR KL-16 (LTH14/mar) and VA-VAE (hustvl/LightningDiT) against their references
(fixtures recorded by scripts/parity/record_kl_vae.py on regenerated random weights).

Tolerances (float32, CPU): posterior mean/logvar atol 1e-5; a seeded posterior sample atol 1e-5
(zoo draws from the caller's generator what the references draw from the global RNG after
``torch.manual_seed``); decode atol 1e-4; VA-VAE's normalised latents atol 1e-5.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from zoo_plugins.kl_vae.builder import VAVAE_DROPPED_PREFIXES, MarVAEBuilder, VAVAEBuilder, from_reference, to_reference
from zoo_plugins.kl_vae.config import KLVAEConfig
from zoo_plugins.kl_vae.model import KLVAE

import zoo
from zoo.errors import CheckpointError, InputTypeError, MediaError, TokenError
from zoo.interfaces import Latents
from zoo.testing.weights import assert_manifest_equal, seeded_state_dict, state_manifest

FIX = Path(__file__).resolve().parents[2] / "fixtures" / "kl_vae"
FAMILIES = {"mar_kl16": "mar_vae.kl16", "va_vae_f16d32": "va_vae.f16d32"}
LATENT_ATOL, IMAGE_ATOL = 1e-5, 1e-4
NOISE_SEED = 1234  # as in the recorder


def _manifest(raw: dict) -> dict:
    return {k: (tuple(s), d) for k, (s, d) in raw.items()}


def _fixture(family: str) -> tuple[dict, dict]:
    return json.loads((FIX / f"{family}.json").read_text()), load_file(str(FIX / f"{family}.safetensors"))


def _reference_state(family: str) -> dict:
    meta, _ = _fixture(family)
    return seeded_state_dict(_manifest(meta["manifest"]), seed=0)


def _model(family: str) -> KLVAE:
    meta, data = _fixture(family)
    cfg = KLVAEConfig(**meta["config"])
    model = KLVAE(cfg).eval()
    state = _reference_state(family)
    if cfg.latent_stats:
        state["latent_mean"], state["latent_std"] = data["stats.mean"], data["stats.std"]
    builder = MarVAEBuilder() if family == "mar_kl16" else VAVAEBuilder()
    model.load_state_dict(builder.convert(state, cfg), strict=True)
    return model


@pytest.fixture(scope="module", params=sorted(FAMILIES))
def family(request) -> str:
    return request.param


# --------------------------------------------------------------------------- manifests


@pytest.mark.parametrize("fam", sorted(FAMILIES))
def test_published_config_loads_the_reference_keys_strictly(fam):
    expected = _manifest(json.loads((FIX / "manifests.json").read_text())[fam])
    model = zoo.load(FAMILIES[fam], pretrained=False, device="meta")
    ours = {k: v for k, v in state_manifest(model).items() if k.startswith("vae.")}
    assert_manifest_equal(from_reference(expected, model.config), ours, what=FAMILIES[fam])
    assert_manifest_equal(to_reference(ours, model.config), expected, what=f"{FAMILIES[fam]} (reference names)")
    extra = set(state_manifest(model)) - set(ours)
    assert extra == ({"latent_mean", "latent_std"} if model.config.latent_stats else set())


# --------------------------------------------------------------------------- parity


@pytest.mark.parametrize("case", ["nonsquare", "square"])
def test_parity_with_the_reference(family, case):
    _, data = _fixture(family)
    model = _model(family)
    x = data[f"{case}.x"]
    with torch.no_grad():
        post = model.posterior(x)
    torch.testing.assert_close(post.mean, data[f"{case}.mean"], atol=LATENT_ATOL, rtol=0)
    torch.testing.assert_close(post.logvar, data[f"{case}.logvar"], atol=LATENT_ATOL, rtol=0)
    z = model.encode(x, sample=True, generator=torch.Generator().manual_seed(NOISE_SEED))
    h, w = z.meta["grid"]
    grid = z.values.transpose(1, 2).reshape(x.shape[0], -1, h, w)
    torch.testing.assert_close(grid, data[f"{case}.sample"], atol=LATENT_ATOL, rtol=0)
    mode = model.encode(x)
    torch.testing.assert_close(model.decode(mode, clamp=False), data[f"{case}.decoded"], atol=IMAGE_ATOL, rtol=0)
    torch.testing.assert_close(model.decode(data[f"{case}.mean"]), data[f"{case}.decoded"].clamp(-1, 1), atol=IMAGE_ATOL, rtol=0)
    if f"{case}.normalized" in data:
        torch.testing.assert_close(model.normalize_latents(data[f"{case}.mean"]), data[f"{case}.normalized"],
                                   atol=LATENT_ATOL, rtol=0)


def test_mode_is_deterministic_and_sampling_follows_the_generator(family):
    _, data = _fixture(family)
    model = _model(family)
    x = data["square.x"]
    assert torch.equal(model.encode(x).values, model.encode(x).values)
    a = model.encode(x, sample=True, generator=torch.Generator().manual_seed(1)).values
    b = model.encode(x, sample=True, generator=torch.Generator().manual_seed(1)).values
    c = model.encode(x, sample=True, generator=torch.Generator().manual_seed(2)).values
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_normalisation_round_trips_and_matches_the_generators_convention():
    model = _model("mar_kl16")
    z = torch.randn(1, 8, 2, 3)
    torch.testing.assert_close(model.normalize_latents(z), z * 0.2325)  # MAR's engine: posterior.sample() * 0.2325
    lat = Latents(values=torch.randn(1, 6, 8), meta={"grid": (2, 3)})
    back = model.denormalize_latents(model.normalize_latents(lat))
    assert isinstance(back, Latents) and back.meta == lat.meta
    torch.testing.assert_close(back.values, lat.values)


# --------------------------------------------------------------------------- release formats


def test_mar_release_pickle_and_safetensors_load(tmp_path):
    from safetensors.torch import save_file

    meta, data = _fixture("mar_kl16")
    state = _reference_state("mar_kl16")
    torch.save({"model": state}, tmp_path / "kl16.ckpt")
    save_file(state, str(tmp_path / "kl16.safetensors"))
    for path in (tmp_path / "kl16.ckpt", tmp_path / "kl16.safetensors"):
        model = zoo.load("mar_vae.kl16", weights=path, **meta["config"])
        torch.testing.assert_close(model.posterior(data["square.x"]).mean, data["square.mean"], atol=LATENT_ATOL, rtol=0)


def test_va_vae_release_with_training_keys_and_stats_loads(tmp_path):
    meta, data = _fixture("va_vae_f16d32")
    state = _reference_state("va_vae_f16d32")
    training = {"loss.discriminator.main.0.weight": torch.zeros(2), "foundation_model.model.cls_token": torch.zeros(3),
                "linear_proj.weight": torch.zeros(4, 8, 1, 1)}
    assert all(k.startswith(VAVAE_DROPPED_PREFIXES) for k in training)
    folder = tmp_path / "vavae"
    folder.mkdir()
    torch.save({"state_dict": {**state, **training}, "epoch": 3}, folder / "vavae-imagenet256-f16d32-dinov2.pt")
    torch.save({"mean": data["stats.mean"], "std": data["stats.std"]}, folder / "latents_stats.pt")
    model = zoo.load("va_vae.f16d32", weights=folder, **meta["config"])
    torch.testing.assert_close(model.normalize_latents(data["square.mean"]), data["square.normalized"], atol=LATENT_ATOL, rtol=0)
    (folder / "latents_stats.pt").unlink()
    with pytest.raises(CheckpointError, match="latents_stats.pt"):
        zoo.load("va_vae.f16d32", weights=folder / "vavae-imagenet256-f16d32-dinov2.pt", **meta["config"])


def test_an_unknown_key_is_an_error_not_ignored(tmp_path):
    meta, _ = _fixture("mar_kl16")
    state = {**_reference_state("mar_kl16"), "loss.logvar": torch.zeros(())}
    torch.save({"model": state}, tmp_path / "kl16.ckpt")
    with pytest.raises(CheckpointError, match="loss.logvar"):
        zoo.load("mar_vae.kl16", weights=tmp_path / "kl16.ckpt", **meta["config"])
    torch.save({"model": {"decoder.conv_in.weight": torch.zeros(1)}}, tmp_path / "bad.ckpt")
    with pytest.raises(CheckpointError, match="not an LDM KL-VAE checkpoint"):
        zoo.load("mar_vae.kl16", weights=tmp_path / "bad.ckpt", **meta["config"])


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("make, error, message", [
    (lambda: torch.zeros(1, 3, 26, 32), MediaError, "multiples of 4"),
    (lambda: torch.zeros(1, 1, 32, 32), MediaError, r"\[B, 3, H, W\]"),
    (lambda: torch.zeros(1, 3, 32, 32, dtype=torch.uint8), InputTypeError, "float"),
    (lambda: torch.full((1, 3, 32, 32), float("inf")), MediaError, "NaN/Inf"),
    (lambda: torch.zeros(0, 3, 32, 32), MediaError, "no images"),
    (lambda: torch.full((1, 3, 32, 32), 255.0), MediaError, r"\[-1, 1\]"),
])
def test_bad_images_are_refused_before_compute(make, error, message):
    with pytest.raises(error, match=message):
        _model("mar_kl16").encode(make())


@pytest.mark.parametrize("make, message", [
    (lambda: torch.zeros(1, 4, 2, 2), r"\[B, 8, h, w\]"),
    (lambda: torch.zeros(1, 5, 8), "not a square grid"),
    (lambda: torch.zeros(1, 4, 3), "channels"),
    (lambda: Latents(values=torch.zeros(1, 6, 8), meta={"grid": (2, 3)}).truncate(2), "whole latent grids"),
    (lambda: Latents(values=torch.zeros(1, 6, 8), tokenizer="va_vae.f16d32", meta={"grid": (2, 3)}), "made by"),
    (lambda: torch.full((1, 8, 2, 2), float("nan")), "finite"),
    (lambda: torch.zeros(1, 8, 2, 2, dtype=torch.long), "float"),
    (lambda: [1, 2], "decodes Latents"),
])
def test_bad_latents_are_refused(make, message):
    model = _model("mar_kl16")
    model.card = zoo.get_card("mar_vae.kl16")
    with pytest.raises((TokenError, InputTypeError), match=message):
        model.decode(make())
