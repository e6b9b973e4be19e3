"""Bad input to a GigaTok model: each a zoo.errors exception naming the problem, raised up front."""

from __future__ import annotations

import pytest
import torch

from zoo.errors import InputError, InputTypeError, TokenError
from zoo.interfaces import Tokens
from zoo.registry import get_registry
from zoo_plugins.gigatok.config import GigaTokConfig
from zoo_plugins.gigatok.model import GigaTok

CFG = dict(encoder_size="t", decoder_size="t", vit_sizes={"t": [64, 1, 2]}, ch=32, encoder_ch_mult=[1, 2],
           decoder_ch_mult=[1, 2], num_res_blocks=1, z_channels=32, codebook_size=64, num_latent_tokens=16, image_size=16)


@pytest.fixture(scope="module")
def model():
    m = GigaTok(GigaTokConfig(**CFG)).eval()
    m.card = get_registry().find_card("gigatok.s_s")[0]
    return m


def _ok(b=1, s=16):
    return torch.rand(b, 3, s, s) * 2 - 1


@pytest.mark.parametrize(("images", "exc", "match"), [
    (_ok()[0, 0], InputError, "takes images"),
    (_ok(s=32), InputError, r"\[B, 3, 16, 16\]"),
    ((_ok() * 127.5 + 127.5).to(torch.uint8), InputTypeError, "float images"),
    (_ok() * 255, InputError, "x / 127.5 - 1"),
    (_ok().index_fill(3, torch.tensor([2]), float("inf")), InputError, "NaN/Inf"),
    (_ok(b=0), InputError, "empty batch"),
    ("cat.png", InputTypeError, "float tensor"),
])
def test_bad_images(model, images, exc, match):
    with pytest.raises(exc, match=match):
        model.encode(images)


@pytest.mark.parametrize(("tokens", "exc", "match"), [
    (torch.full((1, 16), 64), TokenError, "valid ids: 0..63"),
    (torch.zeros(1, 8, dtype=torch.long), TokenError, "exactly 16 tokens"),
    (torch.zeros(1, 16), InputTypeError, "integer"),
    (Tokens(ids=torch.zeros(1, 16, dtype=torch.long), codebook_size=64, tokenizer="titok.l_32"), TokenError, "titok"),
    (Tokens(ids=torch.zeros(1, 16, dtype=torch.long), codebook_size=64, lengths=torch.tensor([8])), TokenError, "exactly 16"),
])
def test_bad_tokens(model, tokens, exc, match):
    with pytest.raises(exc, match=match):
        model.decode(tokens)


@pytest.mark.parametrize(("fields", "match"), [
    ({"encoder_size": "huge"}, "unknown Q-Former size"),
    ({"num_latent_tokens": 12}, "power of two"),
    ({"vit_sizes": {"t": [60, 1, 8]}}, "not divisible"),
])
def test_bad_configs(fields, match):
    from zoo.errors import ConfigError

    with pytest.raises(ConfigError, match=match):
        GigaTokConfig(**{**CFG, **fields}).validate()
