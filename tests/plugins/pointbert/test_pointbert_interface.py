"""Point-BERT dVAE: input preparation, bad inputs and tokens, the release reader, the CLI, the card."""

from __future__ import annotations

import pytest
import torch
from click.testing import CliRunner

import zoo
from zoo.cli import cli
from zoo.errors import CheckpointError, InputTypeError, MediaError, TokenError


def test_prepare_points_samples_and_normalises(pb):
    model = pb.case_model()
    big = torch.randn(2, 1000, 3) * 7 + 3
    x = model.prepare_points(big)
    assert x.shape == (2, 256, 3)
    torch.testing.assert_close(x.norm(dim=-1).amax(1), torch.ones(2))
    assert model.prepare_points(torch.randn(1, 40, 3)).shape == (1, 256, 3)  # fewer: repeated


@pytest.mark.parametrize("value,err,match", [
    ([[0.0, 0.0, 0.0]], InputTypeError, "float tensor"),
    (torch.zeros(1, 100, 2), MediaError, r"\[B, N, 3\]"),
    (torch.zeros(1, 8, 3), MediaError, "at least 16 points"),
    (torch.full((1, 64, 3), float("nan")), MediaError, "NaN"),
    (torch.randn(1, 64, 3) * 50, MediaError, "unit sphere"),
])
def test_bad_clouds_are_named(pb, value, err, match):
    with pytest.raises(err, match=match):
        pb.case_model().encode(value)


def test_bad_tokens_are_named(pb):
    model, data = pb.case_model(), pb.data()
    tok = model.encode(data["clouds"])
    with pytest.raises(TokenError, match="patch centres"):
        model.decode(tok.ids)
    with pytest.raises(TokenError, match=r"centres must be \[B, G, 3\]"):
        model.decode(tok.ids, centers=data["centers"][:, :4])
    with pytest.raises(TokenError, match="trained with 16 patches"):
        model.decode(tok.ids[:, :4], centers=data["centers"][:, :4])
    with pytest.raises(TokenError, match="codebook has 128"):
        model.decode(tok.ids + 1000, centers=data["centers"])


def _release(pb, path, wrap="base_model", prefix="module."):
    sd = {prefix + k: v for k, v in pb.release_state_dict().items()}
    torch.save({wrap: sd, "optimizer": {"state": {}}, "epoch": 300, "metrics": {"acc": 0.5}}, path)
    return path


@pytest.mark.parametrize("wrap,prefix", [("base_model", "module."), ("model", "")])
def test_release_file_loads_with_weights(pb, tmp_path, wrap, prefix):
    path = _release(pb, tmp_path / "dVAE.pth", wrap, prefix)
    model = zoo.load("point_bert", weights=path, **pb.case()["config"])
    assert torch.equal(model.encode(pb.data()["clouds"]).ids, pb.data()["ids"])


def test_release_without_model_is_named(tmp_path):
    path = tmp_path / "dVAE.pth"
    torch.save({"optimizer": {}}, path)
    with pytest.raises(CheckpointError, match="base_model"):
        zoo.load("point_bert", weights=path)


def test_no_weights_says_where_to_get_them():
    with pytest.raises(Exception, match="cloud.tsinghua.edu.cn|weights="):
        zoo.load("point_bert")


def test_reconstruct_ply_writes_input_and_output_png(pb, tmp_path):
    """End to end at the released size: `zoo reconstruct shape.ply --model point_bert --weights dVAE.pth`."""
    import numpy as np
    from PIL import Image

    from zoo.media.points import save_ply
    from zoo_plugins.pointbert.testing import release_state_dict, test_clouds

    manifest = {k: (tuple(s), d) for k, (s, d) in pb.published()["point_bert.dvae_shapenet"].items()}
    weights = tmp_path / "dVAE.pth"
    torch.save({"base_model": {"module." + k: v for k, v in release_state_dict(manifest).items()}, "epoch": 1}, weights)
    shape = save_ply(test_clouds(1, 3000)[0] * 3 + 1, tmp_path / "shape.ply")  # any scale: prepare_points normalises
    out = tmp_path / "recon.png"
    result = CliRunner().invoke(cli, ["reconstruct", str(shape), "--model", "point_bert", "--weights", str(weights), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "64 tokens" in result.output
    img = np.asarray(Image.open(out).convert("RGB"))
    half = img.shape[1] // 2
    assert img.shape[1] > 1.8 * img.shape[0]  # input | reconstruction
    assert (img[:, :half].sum(-1) < 600).sum() > 200 and (img[:, half:].sum(-1) < 600).sum() > 200  # both panels drawn


@pytest.mark.parametrize("args,match", [
    (["--out", "x.mp4"], "written as .png"),
    (["--tokens", "4", "--out", "x.png"], "--tokens does not apply"),
])
def test_reconstruct_points_bad_arguments(tmp_path, args, match):
    from zoo.media.points import save_ply

    shape = save_ply(torch.randn(64, 3), tmp_path / "shape.ply")
    result = CliRunner().invoke(cli, ["reconstruct", str(shape), "--model", "point_bert", *args])
    assert result.exit_code != 0 and match in result.output


def test_card_facts():
    card = zoo.get_card("point_bert")
    assert card.name == "point_bert.dvae_shapenet" and card.modality == "3d" and card.hub_repo is None
    assert card.weights_url.startswith("https://cloud.tsinghua.edu.cn/") and card.files == ["dVAE.pth"]
    assert card.license.code == "MIT" and card.license.weights == "unstated"
    model = zoo.load("point_bert", pretrained=False)
    assert (model.num_tokens, model.codebook_size, model.num_points) == (64, 8192, 1024)
    assert 27.5e6 < model.num_parameters() < 27.7e6
