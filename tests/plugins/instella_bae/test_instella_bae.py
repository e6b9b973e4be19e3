"""Instella-T2I's BAE against AMD-AGI/Instella-T2I (fixtures recorded by
scripts/parity/record_instella_bae.py on regenerated random weights, the reference's flash-attn call
replaced by SDPA).

Tolerances (float32, CPU): bit logits atol 1e-5; bits equal except where the reference's |logit| <
1e-5 (a near-tie); the decode of the reference's bits atol 1e-4 (all agree to 0 here).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from zoo_plugins.instella_bae.builder import DROPPED_PREFIXES, from_reference, to_reference
from zoo_plugins.instella_bae.config import InstellaBAEConfig
from zoo_plugins.instella_bae.model import InstellaBAE

import zoo
from zoo.errors import CheckpointError, ConfigError, MediaError, TokenError
from zoo.interfaces import Tokens
from zoo.testing.weights import assert_manifest_equal, seeded_state_dict, state_manifest

FIX = Path(__file__).resolve().parents[2] / "fixtures" / "instella_bae"
META = json.loads((FIX / "small.json").read_text())
LOGIT_ATOL, IMAGE_ATOL, TIE = 1e-5, 1e-4, 1e-5


def _manifest(raw: dict) -> dict:
    return {k: (tuple(s), d) for k, (s, d) in raw.items()}


@pytest.fixture(scope="module")
def data() -> dict:
    return load_file(str(FIX / "small.safetensors"))


@pytest.fixture(scope="module")
def reference_state() -> dict:
    return seeded_state_dict(_manifest(META["manifest"]), seed=0)


def _model(reference_state: dict, scale) -> InstellaBAE:
    m = InstellaBAE(InstellaBAEConfig(**META["config"], scale=scale, image_size=32)).eval()
    m.load_state_dict(from_reference(reference_state), strict=True)
    return m


@pytest.fixture(scope="module")
def model(reference_state) -> InstellaBAE:
    return _model(reference_state, 64)


def test_the_released_config_loads_the_reference_keys_strictly():
    expected = _manifest(json.loads((FIX / "manifest_1024.json").read_text()))
    model = zoo.load("instella_bae.1024", pretrained=False, device="meta")
    ours = state_manifest(model)
    assert_manifest_equal(from_reference(expected), ours, what="instella_bae.1024")
    assert_manifest_equal(to_reference(ours), expected, what="instella_bae.1024 (reference names)")
    assert sum(v[0][0] for k, v in expected.items() if k == "quantizer.embed") == 64


@pytest.mark.parametrize("case", sorted(META["cases"]))
def test_parity_with_the_reference(reference_state, model, data, case):
    c = META["cases"][case]
    m = model if c["scale"] == 64 else _model(reference_state, c["scale"])
    with torch.no_grad():
        logits = m.logits(data[f"{case}.x"])
        ref = data[f"{case}.logits"]
        torch.testing.assert_close(logits, ref, atol=LOGIT_ATOL, rtol=0)
        tokens = m.encode(data[f"{case}.x"])
        bits = tokens.ids.transpose(1, 2).float()
        decided = ref.abs() >= TIE
        assert torch.equal(bits[decided], data[f"{case}.bits"][decided])
        assert tokens.meta["size"] == tuple(c["shape"][-2:])
        out = m.decode(data[f"{case}.bits"], size=c["size"], clamp=False)
    torch.testing.assert_close(out, data[f"{case}.decoded"], atol=IMAGE_ATOL, rtol=0)


def test_tokens_round_trip_through_decode(model, data):
    tokens = model.encode(data["scaled.x"])
    assert tokens.ids.shape == (2, 12, 8) and tokens.codebook_size == 2 and tokens.ids.dtype == torch.uint8
    torch.testing.assert_close(model.decode(tokens, clamp=False), model.decode(data["scaled.bits"], size=32, clamp=False))
    assert float(model.decode(tokens).abs().max()) <= 1.0


def test_the_release_file_loads_and_drops_only_the_repa_head(tmp_path, reference_state, model, data):
    path = tmp_path / "bae" / "model.safetensors"
    path.parent.mkdir()
    save_file({**reference_state, "decoder.repa_proj.0.weight": torch.zeros(2, 2)}, str(path))
    loaded = zoo.load("instella_bae.1024", weights=path, **META["config"], scale=64.0, image_size=32)
    torch.testing.assert_close(loaded.logits(data["scaled.x"]), model.logits(data["scaled.x"]))
    assert DROPPED_PREFIXES == ("decoder.repa_proj.",)
    save_file({**reference_state, "decoder.extra.weight": torch.zeros(2)}, str(path))
    with pytest.raises(CheckpointError, match="decoder.extra.weight"):
        zoo.load("instella_bae.1024", weights=path, **META["config"], scale=64.0, image_size=32)
    save_file({"w": torch.zeros(1)}, str(path))
    with pytest.raises(CheckpointError, match="not an Instella-T2I BAE"):
        zoo.load("instella_bae.1024", weights=path, **META["config"], scale=64.0, image_size=32)


@pytest.mark.parametrize("bad, error, message", [
    (torch.zeros(1, 3, 36, 32), MediaError, "multiples of 8"),
    (torch.zeros(1, 3, 8, 8), MediaError, "at least 16"),
    (torch.full((1, 3, 32, 32), 2.0), MediaError, r"\[-1, 1\]"),
    (torch.zeros(3, 32, 32), MediaError, "batch dimension"),
])
def test_bad_images(model, bad, error, message):
    with pytest.raises(error, match=message):
        model.encode(bad)


def test_bad_tokens(model, data):
    tokens = model.encode(data["wide.x"])
    with pytest.raises(TokenError, match="all 8 tokens"):
        model.decode(tokens.truncate(5))
    with pytest.raises(TokenError, match="12 bit planes"):
        model.decode(Tokens(ids=tokens.ids[:, :6], codebook_size=2))
    with pytest.raises(TokenError, match="0 or 1"):
        model.decode(torch.full((1, 8, 12), 0.5))
    with pytest.raises(TokenError, match="out of range|codebook"):
        model.decode(Tokens(ids=tokens.ids.long() * 3, codebook_size=2))
    with pytest.raises(MediaError, match="decodes to"):
        model.decode(tokens, size=(30, 32))


def test_bad_configs():
    with pytest.raises(ConfigError, match="sum to the encoder head size"):
        InstellaBAEConfig(axes_dims_rope=[8, 8, 8])
    with pytest.raises(ConfigError, match="upsampling"):
        InstellaBAEConfig(upsample_idx=[])
