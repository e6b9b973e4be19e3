"""Parity with the reference implementations (bytedance/1d-tokenizer, One-D-Piece).

Staged as in DESIGN.md: pre-quantisation latents, token ids (equal except at recorded
near-ties), decode of the *reference* ids, then the public encode/decode in [-1, 1].
Tolerances: latents 1e-5, decoded images 1e-4 (absolute, images of magnitude ~1-4).
"""

from __future__ import annotations

import pytest
import torch

from zoo.testing.weights import assert_manifest_equal, state_manifest

CASES = ["legacy_vq", "vq8k", "vae", "one_d_piece"]
NEAR_TIE = 1e-5


@pytest.mark.parametrize("name", CASES)
def test_case_manifest_matches_reference(tk, name):
    from zoo_plugins.titok.model import TiTok

    with torch.device("meta"):
        model = TiTok(tk.case_config(name))
    assert_manifest_equal(state_manifest(model), tk.case_manifest(name), what=name)


@pytest.mark.parametrize("name", CASES)
def test_latents_match(tk, name):
    model, data = tk.case_model(name), tk.case_data(name)
    with torch.no_grad():
        z = model.encode_latents(data["images_uint8"].float() / 255)
    torch.testing.assert_close(z, data["latents"], atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", ["legacy_vq", "vq8k", "one_d_piece"])
def test_ids_match_except_near_ties(tk, name):
    model, data = tk.case_model(name), tk.case_data(name)
    with torch.no_grad():
        ids = model.quantize_latents(model.encode_latents(data["images_uint8"].float() / 255))
    assert ids.dtype == torch.int64 and ids.shape == data["ids"].shape
    differ = ids != data["ids"]
    assert not (differ & (data["gap"] >= NEAR_TIE)).any(), f"ids differ away from ties at {differ.nonzero().tolist()}"
    assert len(set(data["ids"].flatten().tolist())) > 8  # the fixture's ids depend on the input


@pytest.mark.parametrize("name", ["legacy_vq", "vq8k"])
def test_decode_reference_ids(tk, name):
    model, data = tk.case_model(name), tk.case_data(name)
    with torch.no_grad():
        out = model.decode_latents(model.ids_to_latents(data["ids"]))
    torch.testing.assert_close(out, data["decoded"], atol=1e-4, rtol=0)


def test_vae_posterior_mean_and_decode(tk):
    model, data = tk.case_model("vae"), tk.case_data("vae")
    with torch.no_grad():
        mean = model.quantize_latents(model.encode_latents(data["images_uint8"].float() / 255))
        out = model.decode_latents(data["mean"])
    torch.testing.assert_close(mean, data["mean"], atol=1e-5, rtol=0)
    torch.testing.assert_close(out, data["decoded"], atol=1e-4, rtol=0)


@pytest.mark.parametrize("prefix", [1, 7, 24])
def test_one_d_piece_prefix_decode(tk, prefix):
    model, data = tk.case_model("one_d_piece"), tk.case_data("one_d_piece")
    with torch.no_grad():
        out = model.decode_latents(model.ids_to_latents(data["ids"][:, :prefix]))
    torch.testing.assert_close(out, data[f"decoded_{prefix}"], atol=1e-4, rtol=0)


@pytest.mark.parametrize("name", ["legacy_vq", "vq8k", "vae"])
def test_public_encode_decode_round_trip(tk, name):
    """encode(images in [-1, 1]) -> decode -> [-1, 1] equals the reference's pipeline."""
    model, data = tk.case_model(name), tk.case_data(name)
    images = data["images_uint8"].float() / 127.5 - 1
    tokens = model.encode(images)
    if name == "vae":
        torch.testing.assert_close(tokens.values, data["mean"].flatten(2).transpose(1, 2), atol=1e-5, rtol=0)
    else:
        assert torch.equal(tokens.ids, data["ids"])
    out = model.decode(tokens)
    want = (data["decoded"].clamp(0, 1) * 2 - 1)
    torch.testing.assert_close(out, want, atol=2e-4, rtol=0)
