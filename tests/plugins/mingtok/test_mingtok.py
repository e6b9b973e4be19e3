"""MingTok-Vision against inclusionAI/Ming-UniVision (fixtures recorded by scripts/parity/record_mingtok.py
on regenerated random weights; the reference's own CPU float32 attention path).

Tolerances (float32, CPU): latents atol 1e-5, semantic features of the reference's latents atol 1e-5,
pixel decode of the reference's features atol 1e-4 (measured max |diff| ~2e-6: SDPA vs explicit softmax).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from zoo_plugins.mingtok.builder import from_reference, to_reference
from zoo_plugins.mingtok.config import MingTokConfig, from_hf_config
from zoo_plugins.mingtok.model import MingTok

import zoo
from zoo.errors import CheckpointError, ConfigError, MediaError, TokenError
from zoo.interfaces import Latents
from zoo.testing.weights import assert_manifest_equal, seeded_state_dict, state_manifest

FIX = Path(__file__).resolve().parents[2] / "fixtures" / "mingtok"
META = json.loads((FIX / "small.json").read_text())
LATENT_ATOL, FEATURE_ATOL, IMAGE_ATOL = 1e-5, 1e-5, 1e-4


def _manifest(raw: dict) -> dict:
    return {k: (tuple(s), d) for k, (s, d) in raw.items()}


@pytest.fixture(scope="module")
def data() -> dict:
    return load_file(str(FIX / "small.safetensors"))


@pytest.fixture(scope="module")
def reference_state() -> dict:
    return seeded_state_dict(_manifest(META["manifest"]), seed=0)


@pytest.fixture(scope="module")
def model(reference_state) -> MingTok:
    m = MingTok(MingTokConfig(**from_hf_config(META["config"]), image_size=64)).eval()
    m.load_state_dict(from_reference(reference_state), strict=True)
    return m


def test_the_released_config_loads_the_reference_keys_strictly():
    rec = json.loads((FIX / "manifest_vision.json").read_text())
    expected = _manifest(rec["manifest"])
    card = zoo.get_card("mingtok.vision")
    assert {k: card.config[k] for k in from_hf_config(rec["config"])} == from_hf_config(rec["config"])
    model = zoo.load("mingtok.vision", pretrained=False, device="meta")
    ours = state_manifest(model)
    assert_manifest_equal(from_reference(expected), ours, what="mingtok.vision")
    assert_manifest_equal(to_reference(ours, model.config), expected, what="mingtok.vision (reference names)")


@pytest.mark.parametrize("case", sorted(META["cases"]))
def test_parity_with_the_reference(model, data, case):
    z = model.encode(data[f"{case}.x"])
    torch.testing.assert_close(z.values, data[f"{case}.latent"], atol=LATENT_ATOL, rtol=0)
    with torch.no_grad():
        feats = model.semantic_features(data[f"{case}.latent"])
        torch.testing.assert_close(feats, data[f"{case}.features"], atol=FEATURE_ATOL, rtol=0)
        torch.testing.assert_close(model.pixels(data[f"{case}.features"]), data[f"{case}.decoded"], atol=IMAGE_ATOL, rtol=0)
    torch.testing.assert_close(model.decode(z), data[f"{case}.clamped"], atol=IMAGE_ATOL, rtol=0)


def test_the_semantic_decoder_is_causal(model, data):
    z = data["native.latent"][:1]
    changed = z.clone()
    changed[:, 10:] += 1.0
    with torch.no_grad():
        a, b = model.semantic_features(z), model.semantic_features(changed)
    torch.testing.assert_close(a[:, :10], b[:, :10])
    assert not torch.allclose(a[:, 10:], b[:, 10:])


def test_the_transformers_release_loads_without_remote_code(tmp_path, reference_state, model, data):
    folder = tmp_path / "MingTok-Vision"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({**META["config"], "model_type": "mingtok", "architectures": ["MingTok"],
                                                    "pretrained_checkpoint": "", "model_dtype": "bf16"}))
    save_file({**reference_state, "target_backbone.w": torch.zeros(1)}, str(folder / "model.safetensors"))
    loaded = zoo.load("mingtok.vision", weights=folder, image_size=64)  # the architecture comes from config.json
    assert loaded.config.encoder_dim == 128 and loaded.config.mean == 0.25
    torch.testing.assert_close(loaded.encode(data["native.x"]).values, model.encode(data["native.x"]).values)
    (folder / "config.json").write_text(json.dumps({**META["config"], "auto_class": "x.Y"}))
    with pytest.raises(ConfigError, match="auto_class"):
        zoo.load("mingtok.vision", weights=folder)
    (folder / "config.json").write_text(json.dumps(META["config"]))
    save_file({"w": torch.zeros(1)}, str(folder / "model.safetensors"))
    with pytest.raises(CheckpointError, match="not a MingTok checkpoint"):
        zoo.load("mingtok.vision", weights=folder)


@pytest.mark.parametrize("bad, error, message", [
    (torch.zeros(1, 3, 64, 80), MediaError, "square"),
    (torch.zeros(1, 3, 60, 60), MediaError, "multiples of 16"),
    (torch.full((1, 3, 64, 64), float("nan")), MediaError, "NaN"),
])
def test_bad_images(model, bad, error, message):
    with pytest.raises(error, match=message):
        model.encode(bad)


def test_bad_latents(model, data):
    z = model.encode(data["native.x"])
    with pytest.raises(TokenError, match="whole latent sequences"):
        model.decode(z.truncate(5))
    with pytest.raises(TokenError, match="square grid"):
        model.decode(torch.zeros(1, 11, 8))
    with pytest.raises(TokenError, match="8"):
        model.decode(torch.zeros(1, 17, 4))
    with pytest.raises(TokenError, match="finite"):
        model.decode(torch.full((1, 17, 8), float("nan")))
    with pytest.raises(TokenError, match="decodes the Latents"):
        model.decode("z")
    assert isinstance(z, Latents) and z.meta["class_token"] == "last"
