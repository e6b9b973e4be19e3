"""The dinov2 feature-extractor cards: the .pth layout loads strictly, encode gives the backbone's
final-normed patch features of ImageNet-normalised input, decode refuses, foreign files are named."""

from __future__ import annotations

import pytest
import torch
from zoo_plugins.dinov2.builder import DINOv2Builder, DINOv2Config, DINOv2Features

import zoo
from zoo.builders import CheckpointFiles
from zoo.errors import CheckpointError, MediaError, TokenError
from zoo.interfaces import Latents
from zoo.testing.weights import seeded_state_dict, state_manifest

TINY = dict(embed_dim=32, depth=2, heads=2, pos_grid=4, image_size=28)


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    from zoo.nn.backbones import DINOv2

    state = seeded_state_dict(state_manifest(DINOv2(embed_dim=32, depth=2, heads=2, pos_grid=4)), seed=0)
    path = tmp_path_factory.mktemp("dino") / "dinov2_vitb14_reg4_pretrain.pth"
    torch.save(state, path)
    return path, state


def test_the_release_loads_and_encodes_normalised_features(release, hub_stand_in, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    path, state = release
    model = zoo.load("dinov2.vitb14_reg4", weights=path, **{k: v for k, v in TINY.items()})
    x = torch.rand(2, 3, 42, 28) * 2 - 1
    out = model.encode(x)
    assert isinstance(out, Latents) and out.values.shape == (2, 3 * 2, 32) and out.meta["grid"] == (3, 2)
    mean, std = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1), torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    torch.testing.assert_close(out.values, model.backbone(((x + 1) / 2 - mean) / std))
    assert torch.equal(model.state_dict()["backbone.cls_token"], state["cls_token"])
    assert hub_stand_in.requests == []


def test_decode_refuses_and_bad_inputs_are_named(release):
    model = DINOv2Features(DINOv2Config(**TINY)).eval()
    with pytest.raises(TokenError, match="feature extractor"):
        model.decode(torch.zeros(1, 4, 32))
    with pytest.raises(MediaError, match="14"):
        model.encode(torch.zeros(1, 3, 30, 28))


def test_a_file_that_is_not_dinov2_is_named(tmp_path):
    torch.save({"encoder.weight": torch.zeros(1)}, tmp_path / "x.pth")
    with pytest.raises(CheckpointError, match="not a DINOv2 checkpoint"):
        DINOv2Builder().read_checkpoint(CheckpointFiles({"x.pth": tmp_path / "x.pth"}))


def test_without_weights_the_card_says_where_to_download():
    with pytest.raises(zoo.ZooError, match=r"dl.fbaipublicfiles.com/dinov2/dinov2_vitl14/dinov2_vitl14_reg4_pretrain.pth"):
        zoo.load("dinov2.vitl14_reg4")
