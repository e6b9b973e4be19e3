"""WeTok against the reference (zhuangshaobin/WeTok), stage by stage, on the recorded cases.

Tolerances: encoder latents atol 1e-4; LFQ codes and ids exactly equal (the smallest |latent|
in the fixtures is ~4e-4, far above the latent error, so no bit sits on a near-tie); decode of
the quantised latents and of the reference's ids atol 1e-4 (float32, same op order up to
SiLU = x*sigmoid(x) and var_mean fusion).
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

import zoo
from zoo.errors import ConfigError
from zoo.weights import load_state_dict_strict
from zoo_plugins.wetok.builder import WeTokBuilder
from zoo_plugins.wetok.checkpoint import load_ckpt
from zoo_plugins.wetok.config import WeTokConfig
from zoo_plugins.wetok.model import WeTok, from_reference_ids

from .conftest import case_config, case_tensors, cases, release_file

CASES = sorted(cases())


def _zoo_model(name: str, tmp_path, use_ema: bool = True) -> WeTok:
    cfg = WeTokConfig(**case_config(name), use_ema=use_ema)
    model = WeTok(cfg).eval()
    state = WeTokBuilder().convert(load_ckpt(release_file(name, tmp_path)), cfg)
    load_state_dict_strict(model, state)
    return model


@pytest.mark.parametrize("name", CASES)
def test_stages_match_reference(name, tmp_path):
    t = case_tensors(name)
    m = _zoo_model(name, tmp_path)
    x = t["images"]
    with torch.no_grad():
        latents = m.encode_latents(x)
        torch.testing.assert_close(latents, t["latents"], atol=1e-4, rtol=0)
        codes, ids = m.quantize_latents(latents)
        assert torch.equal(codes, t["codes"])
        b, g = x.shape[0], m.config.num_codebooks
        assert torch.equal(ids, from_reference_ids(t["ids_flat"], b, g))
        assert torch.equal(ids.permute(0, 2, 1).reshape(-1), t["ids_flat"])
        rec = m.decode_codes(codes, noise=t["noise"] if m.config.gan_decoder else None)
        torch.testing.assert_close(rec, t["reconstruction"], atol=1e-4, rtol=0)
        grid = tuple(latents.shape[-2:])
        rec_ids = m.decode_codes(m.ids_to_codes(from_reference_ids(t["ids_flat"], b, g), grid),
                                 noise=t["noise_ids"] if m.config.gan_decoder else None)
        torch.testing.assert_close(rec_ids, t["decode_of_ids"], atol=1e-4, rtol=0)


@pytest.mark.parametrize("name", CASES)
def test_ema_weights_are_what_the_reference_evaluates(name, tmp_path):
    """use_ema=False gives the training weights' output, which the reference differs from."""
    t = case_tensors(name)
    m = _zoo_model(name, tmp_path, use_ema=False)
    with torch.no_grad():
        codes, _ = m.quantize_latents(m.encode_latents(t["images"]))
        rec = m.decode_codes(codes, noise=t["noise"] if m.config.gan_decoder else None)
    torch.testing.assert_close(rec, t["reconstruction_training_weights"], atol=1e-4, rtol=0)
    assert (rec - t["reconstruction"]).abs().max() > 1e-2


@pytest.mark.parametrize("name", CASES)
def test_zoo_load_of_a_release_file(name, tmp_path):
    """weights=PATH through the card + overrides: encode/decode as the reference, clamped."""
    t = case_tensors(name)
    path = release_file(name, tmp_path)
    model = zoo.load("wetok", weights=path, **case_config(name))
    tok = model.encode(t["images"])
    assert tok.tokenizer == "wetok.imagenet_f16" and tok.codebook_size == case_config(name)["n_embed"]
    assert torch.equal(tok.ids.permute(0, 2, 1).reshape(-1), t["ids_flat"])
    g = torch.Generator().manual_seed(0)
    out = model.decode(tok, generator=g)
    if not model.config.gan_decoder:
        torch.testing.assert_close(out, t["decode_of_ids"].clamp(-1, 1), atol=1e-4, rtol=0)
    else:  # noise from the generator: reproducible, and a different draw changes the picture
        again = model.decode(tok, generator=torch.Generator().manual_seed(0))
        assert torch.equal(out, again)
        assert not torch.equal(out, model.decode(tok, generator=torch.Generator().manual_seed(1)))
    assert out.shape == t["images"].shape and float(out.abs().max()) <= 1


def test_a_release_through_the_wrong_card_is_a_config_error(tmp_path):
    path = release_file("f4_g2", tmp_path)
    with pytest.raises(ConfigError, match="ch: config 256 vs weights 32"):
        zoo.load("wetok.imagenet_f16", weights=path)


def test_missing_ema_copy_is_refused(tmp_path):
    from zoo.errors import CheckpointError
    from zoo_plugins.wetok.checkpoint import select_weights

    sd = load_ckpt(release_file("f4_g2", tmp_path))
    del sd["model_ema.encoderconv_inweight"]
    with pytest.raises(CheckpointError, match="use_ema=False"):
        select_weights(sd)
    assert "encoder.conv_in.weight" in select_weights(sd, use_ema=False)


def test_config_fields_are_the_cards():
    assert {f.name for f in dataclasses.fields(WeTokConfig)} >= set(case_config("f4_g2"))
