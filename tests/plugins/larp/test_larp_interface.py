"""LARP's config reading, bad inputs, tokens of other tokenizers, and the card."""

from __future__ import annotations

import json

import pytest
import torch

import zoo
from zoo.errors import ConfigError, InputTypeError, MediaError, TokenError
from zoo.interfaces import Tokens


def _clip(lp, **kw):
    cfg = lp.case()["config"]
    shape = kw.pop("shape", (1, 3, cfg["frame_num"], cfg["input_size"], cfg["input_size"]))
    return torch.zeros(shape, **kw)


@pytest.mark.parametrize("make,err,match", [
    (lambda lp: _clip(lp).numpy(), InputTypeError, "float video tensor"),
    (lambda lp: _clip(lp, dtype=torch.uint8), InputTypeError, "float"),
    (lambda lp: _clip(lp, shape=(1, 3, 4, 32, 32)), MediaError, "clips of 8 frames"),
    (lambda lp: _clip(lp, shape=(1, 3, 8, 64, 64)), MediaError, "32x32"),
    (lambda lp: _clip(lp, shape=(0, 3, 8, 32, 32)), MediaError, "empty batch"),
    (lambda lp: _clip(lp, shape=(1, 1, 8, 32, 32)), MediaError, r"\[B, 3, T, H, W\]"),
    (lambda lp: _clip(lp) + float("nan"), MediaError, "NaN"),
    (lambda lp: _clip(lp) + 255, MediaError, r"\[-1, 1\]"),
])
def test_bad_clips_are_named(lp, make, err, match):
    with pytest.raises(err, match=match):
        lp.case_model().encode(make(lp))


@pytest.mark.parametrize("tokens,err,match", [
    (torch.zeros(1, 15, dtype=torch.long), TokenError, "exactly 16 tokens"),
    (torch.full((1, 16), 64), TokenError, "codebook has 64 entries"),
    (torch.zeros(1, 16), (TokenError, TypeError), "integer"),
    (Tokens(ids=torch.zeros(1, 16, dtype=torch.long), codebook_size=64, tokenizer="titok.l_32"), TokenError, "made by 'titok.l_32'"),
    (Tokens(ids=torch.zeros(1, 16, dtype=torch.long), codebook_size=4096, tokenizer=""), TokenError, "codebook of 4096"),
])
def test_bad_tokens_are_named(lp, monkeypatch, tokens, err, match):
    from types import SimpleNamespace

    model = lp.case_model()
    monkeypatch.setattr(model, "card", SimpleNamespace(name="larp.l_long"), raising=False)
    with pytest.raises(err, match=match):
        model.decode(tokens)


def test_generator_without_sampling_is_an_error(lp):
    with pytest.raises(InputTypeError, match="sample=True"):
        lp.case_model().encode(_clip(lp), generator=torch.Generator())


def test_release_config_json_reads_as_data(lp, tmp_path):
    from zoo_plugins.larp.builder import read_config_json
    from zoo_plugins.larp.config import LARPConfig, to_reference_config

    tree = to_reference_config(LARPConfig())
    tree["bottleneck"]["args"]["regularizer"]["args"].update(dim=16, token_nums=1024)  # written by the reference's Bottleneck
    tree.update(query_init_std=0.02, encoder_query_gaussian_init=True, encoder_name="none", decoder_name=None)
    path = tmp_path / "config.json"
    path.write_text(json.dumps(tree))
    assert LARPConfig(**read_config_json(path)) == LARPConfig()


@pytest.mark.parametrize("edit,match", [
    (lambda t: t.update(mystery=1), "unknown LARP config field"),
    (lambda t: t.update(transformer_name="transformer_encoder_fused"), "transformer_encoder_parallel"),
    (lambda t: t["bottleneck"]["args"]["regularizer"].update(name="skl"), "'vq'"),
    (lambda t: t["bottleneck"]["args"].update(norm="bn_bn"), "training-only"),
    (lambda t: t.update(temporal_patch_size=1), "temporal_patch_size 1"),
    (lambda t: t.update(decoder_patch_size=16), "decoder patch sizes"),
    (lambda t: t["bottleneck"]["args"]["regularizer"]["args"].update(_target_="os.system"), "unknown LARP VQ field"),
])
def test_bad_configs_are_named(edit, match):
    from zoo_plugins.larp.config import LARPConfig, from_reference_config, to_reference_config

    tree = to_reference_config(LARPConfig())
    edit(tree)
    with pytest.raises(ConfigError, match=match):
        from_reference_config(tree)


def test_card_facts():
    card = zoo.get_card("larp")
    assert card.name == "larp.l_long" and card.modality == "video"
    assert card.hub_repo == "hywang66/LARP-L-long-tokenizer" and card.files == ["model.safetensors", "config.json"]
    assert card.license.code == "MIT" and card.license.weights == "unstated"
    assert card.tokens.codebook_size == 8192
    with torch.device("meta"):
        model = zoo.load("larp.l_long", pretrained=False, device="meta")
    assert (model.num_tokens, model.num_frames, model.image_size) == (1024, 16, 128)
    assert 172e6 < model.num_parameters() < 173e6  # the README's 173M counts the tokenizer without its prior
