"""OmniTokenizer: the Lightning release loads through zoo.load (hyper-parameters read as data,
training parts dropped by name), bad inputs are named, images and videos reconstruct from the CLI."""

from __future__ import annotations

import argparse

import pytest
import torch
from click.testing import CliRunner

import zoo
from zoo.cli import cli
from zoo.errors import InputError, MediaError, TokenError


def _release(ot, tmp_path, kind="vq"):
    state = dict(ot.state_dict(kind))
    state["video_discriminator.main.0.weight"] = torch.zeros(3)
    path = tmp_path / ("imagenet_k600.ckpt" if kind == "vq" else "imagenet_k600_vae.ckpt")
    args = argparse.Namespace(**ot.cases()[kind]["config"], lr=1e-4, accelerator="ddp", max_steps=10)
    torch.save({"state_dict": state, "hyper_parameters": {"args": args}, "optimizer_states": []}, path)
    return path


@pytest.mark.parametrize("kind,card", [("vq", "omnitokenizer.imagenet_k600"), ("vae", "omnitokenizer.imagenet_k600_vae")])
def test_release_loads_with_its_hyperparameters(ot, tmp_path, kind, card):
    model = zoo.load(card, weights=_release(ot, tmp_path, kind))
    assert model.config.resolution == 32 and model.config.use_vae == (kind == "vae")  # from the file, not the card
    d = ot.data(kind)
    out = model.encode(d["video"] * 2)
    if kind == "vq":
        assert torch.equal(out.ids, d["video_ids"].flatten(1))
    else:
        torch.testing.assert_close(out.values, d["video_h"].chunk(2, 1)[0].flatten(2).transpose(1, 2), atol=1e-5, rtol=0)


@pytest.mark.parametrize("shape,err,match", [
    ((1, 3, 4, 32, 32), InputError, r"1 \+ k\*2 frames"),
    ((1, 3, 5, 64, 64), MediaError, "32x32"),
    ((1, 3, 64, 64), MediaError, "32x32"),
    ((0, 3, 5, 32, 32), MediaError, "empty"),
])
def test_bad_inputs(ot, shape, err, match):
    with pytest.raises(err, match=match):
        ot.model("vq").encode(torch.zeros(shape))


def test_bad_tokens(ot):
    m = ot.model("vq")
    tok = m.encode(ot.data("vq")["video"] * 2)
    with pytest.raises(TokenError, match="grid"):
        m.decode(tok.ids)
    with pytest.raises(TokenError, match="do not fill the grid"):
        m.decode(tok.ids[:, :10], grid=tok.meta["grid"])
    with pytest.raises(InputError, match="VAE"):
        m.encode(ot.data("vq")["video"] * 2, sample=True)
    assert m.decode(tok.ids, grid=tok.meta["grid"]).shape == (1, 3, 5, 32, 32)


def test_cli_reconstructs_an_image_and_a_video(ot, tmp_path):
    from PIL import Image

    from zoo.media.image import to_pil
    from zoo.media.video import probe_video, write_video

    weights = _release(ot, tmp_path)
    to_pil(ot.data("vq")["image"][0] * 2)[0].save(tmp_path / "photo.png")
    png = tmp_path / "recon.png"
    r = CliRunner().invoke(cli, ["reconstruct", str(tmp_path / "photo.png"), "--model", "omnitokenizer", "--weights", str(weights),
                                 "--out", str(png)])
    assert r.exit_code == 0, r.output
    assert "16 tokens" in r.output and Image.open(png).width > 64
    clip = write_video(ot.data("vq")["video"][0] * 2, tmp_path / "clip.mp4", fps=5)
    mp4 = tmp_path / "recon.mp4"
    r = CliRunner().invoke(cli, ["reconstruct", str(clip), "--model", "omnitokenizer", "--weights", str(weights), "--out", str(mp4)])
    assert r.exit_code == 0, r.output
    info = probe_video(mp4)
    assert (info.frames, info.height, info.width) == (5, 32, 68)


def test_video_only_models_refuse_images(tmp_path):
    from zoo import reconstruct_media as rm

    class VideoOnly:
        name, image_size = "larp.l_long", 32

    from zoo.errors import ZooError
    from zoo.media.image import to_pil

    to_pil(torch.zeros(3, 8, 8))[0].save(tmp_path / "p.png")
    with pytest.raises(ZooError, match="video clips only"):
        rm.reconstruct_video(VideoOnly(), tmp_path / "p.png", tmp_path / "o.png")
