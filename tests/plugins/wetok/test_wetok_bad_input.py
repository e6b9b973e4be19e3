"""Bad input to a WeTok model: each a zoo.errors exception naming the problem, raised up front."""

from __future__ import annotations

import pytest
import torch

from zoo.errors import CheckpointError, InputError, InputTypeError, TokenError, ZooError
from zoo.interfaces import Tokens
from zoo.registry import get_registry
from zoo_plugins.wetok.config import WeTokConfig
from zoo_plugins.wetok.model import WeTok

CFG = dict(ch=32, ch_mult=[1, 2], num_res_blocks=1, z_channels=8, n_embed=16, num_codebooks=2)


@pytest.fixture(scope="module")
def model():
    m = WeTok(WeTokConfig(**CFG)).eval()
    m.card = get_registry().find_card("wetok.imagenet_f8")[0]
    return m


def _ok(b=1, h=16, w=16):
    return torch.rand(b, 3, h, w) * 2 - 1


@pytest.mark.parametrize(("images", "exc", "match"), [
    (_ok()[0, 0], InputError, "images \\[B, 3, H, W\\]"),
    (torch.rand(1, 1, 16, 16), InputError, "images \\[B, 3, H, W\\]"),
    (_ok(h=17), InputError, "multiples of 2"),
    ((_ok() * 127.5 + 127.5).to(torch.uint8), InputTypeError, "float images"),
    (_ok() * 255, InputError, "x / 127.5 - 1"),
    (_ok().index_fill(2, torch.tensor([3]), float("nan")), InputError, "NaN/Inf"),
    (_ok(b=0), InputError, "empty batch"),
    ([[0.0]], InputTypeError, "float tensor"),
])
def test_bad_images(model, images, exc, match):
    with pytest.raises(exc, match=match):
        model.encode(images)


def test_any_divisible_size_round_trips(model):
    tok = model.encode(_ok(b=2, h=8, w=12))
    assert tuple(tok.ids.shape) == (2, 2, 24) and tok.meta["grid"] == (4, 6)
    assert model.decode(tok).shape == (2, 3, 8, 12)


@pytest.mark.parametrize(("tokens", "exc", "match"), [
    (torch.full((1, 2, 16), 16), TokenError, "valid ids: 0..15"),
    (torch.zeros(1, 2, 16), InputTypeError, "integer"),
    (torch.zeros(1, 3, 16, dtype=torch.long), TokenError, "2 LFQ groups"),
    (torch.zeros(1, 2, 15, dtype=torch.long), TokenError, "not a square grid"),
    (torch.zeros(1, 32, dtype=torch.long), TokenError, "decodes Tokens"),
    (torch.zeros(0, 2, 16, dtype=torch.long), TokenError, "empty batch"),
    (Tokens(ids=torch.zeros(1, 2, 16, dtype=torch.long), codebook_size=16, tokenizer="titok.l_32"), TokenError, "titok"),
    (Tokens(ids=torch.zeros(1, 2, 16, dtype=torch.long), codebook_size=4096), TokenError, "codebook_size 4096"),
    (Tokens(ids=torch.zeros(1, 2, 16, dtype=torch.long), codebook_size=16, lengths=torch.tensor([8])), TokenError, "fixed-length"),
    (Tokens(ids=torch.zeros(1, 2, 16, dtype=torch.long), codebook_size=16, meta={"grid": (3, 5)}), TokenError, "needs all 15 positions"),
])
def test_bad_tokens(model, tokens, exc, match):
    with pytest.raises(exc, match=match):
        model.decode(tokens)
    assert issubclass(exc, ZooError)


def test_corrupt_and_foreign_files(tmp_path):
    from zoo_plugins.wetok.checkpoint import load_ckpt

    bad = tmp_path / "WeTok.ckpt"
    bad.write_bytes(b"not a pickle")
    with pytest.raises(CheckpointError):
        load_ckpt(bad)
    other = tmp_path / "other.ckpt"
    torch.save({"state_dict": {"backbone.w": torch.zeros(1)}}, other)
    with pytest.raises(CheckpointError, match="no WeTok weights"):
        load_ckpt(other)
    with pytest.raises(CheckpointError, match="not found"):
        load_ckpt(tmp_path / "missing.ckpt")


def test_pickled_code_is_never_run(tmp_path):
    import os
    import pickle

    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "WeTok.ckpt"
    torch.save({"state_dict": {"encoder.conv_in.weight": torch.zeros(1)}, "x": Evil()}, path, pickle_module=pickle)
    from zoo_plugins.wetok.checkpoint import load_ckpt

    with pytest.raises(CheckpointError):
        load_ckpt(path)
    assert not marker.exists()
