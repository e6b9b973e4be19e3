"""`zoo tokenize` / `zoo detokenize` with video clips (LARP) and point clouds (Point-BERT): the
loaders prepare items as the models expect, rows hold the same ids as a direct encode, and
detokenize writes .mp4 / .ply files."""

from __future__ import annotations

import dataclasses
import importlib

import pytest
import torch

import zoo
from zoo.datasets.detokenize import detokenize
from zoo.datasets.reader import read_tokens
from zoo.datasets.sources import ItemLoader, guess_modality, list_items, sniff_modality
from zoo.datasets.tokenize import tokenize

pytest.importorskip("av")


def _case_model(family: str, card: str, monkeypatch):
    """The family's parity-case model (tests/plugins/<family>/conftest.py) under the family's card."""
    model = importlib.import_module(f"tests.plugins.{family}.conftest").case_model()
    monkeypatch.setattr(model, "card", zoo.get_card(card), raising=False)
    return model


def test_modalities_by_name_and_bytes():
    assert [guess_modality(n) for n in ("a.mp4", "b.webm", "c.ply", "d.npy", "e.gif")] == ["video", "video", "3d", "3d", "image"]
    assert sniff_modality(b"\x00\x00\x00\x18ftypisom") == "video" and sniff_modality(b"ply\nformat ascii") == "3d"


def test_tokenize_and_detokenize_video_clips(tmp_path, monkeypatch):
    from zoo.media.video import load_video, probe_video, write_video

    model = _case_model("larp", "larp.l_long", monkeypatch)
    src = tmp_path / "clips"
    src.mkdir()
    g = torch.Generator().manual_seed(0)
    write_video(torch.rand(3, 12, 40, 48, generator=g) * 2 - 1, src / "a.mp4", fps=8)
    write_video(torch.rand(3, 5, 32, 32, generator=g) * 2 - 1, src / "b.gif", fps=8)  # shorter than 8 frames: padded
    loader = ItemLoader.for_model(model)
    assert (loader.modality, loader.num_frames, loader.image_size) == ("video", 8, 32)
    items = list_items([src]).items
    clips = [loader.load(i) for i in items]
    assert [tuple(c.shape) for c in clips] == [(3, 8, 32, 32)] * 2
    torch.testing.assert_close(clips[0], load_video(src / "a.mp4", size=32, num_frames=8)[0])
    assert torch.equal(clips[1][:, 5:], clips[1][:, 4:5].expand(-1, 3, -1, -1))

    # a.mp4 (12 frames) is longer than one 8-frame clip: every clip is a row, keyed by its real frames
    tokenize(model, [src], tmp_path / "tok", workers=0, progress=False, overlap=2)
    batch = next(iter(read_tokens(tmp_path / "tok", batch_size=8)))
    assert batch.keys == ["a.mp4#frames=000000-000007", "a.mp4#frames=000006-000011", "b.gif"]
    whole = load_video(src / "a.mp4", size=32)
    second = torch.cat([whole[0, :, 6:], whole[0, :, 11:].expand(-1, 2, -1, -1)], dim=1)  # padded with its last frame
    expected = model.encode(torch.stack([whole[0, :, :8], second, clips[1]])).ids
    assert torch.equal(batch.tokens.ids, expected)
    assert torch.equal(batch.tokens.ids[0], model.encode(clips[0][None]).ids[0])  # the first clip is load()'s
    written = detokenize(tmp_path / "tok", tmp_path / "out", model=model)
    assert [p.name for p in written] == ["a.mp4#frames=000000-000007.mp4", "a.mp4#frames=000006-000011.mp4", "b.mp4"]
    assert probe_video(written[0]).frames == 8


@pytest.mark.parametrize("overlap, keys", [
    (0, ["a.mp4#frames=000000-000007", "a.mp4#frames=000008-000011"]),
    (4, ["a.mp4#frames=000000-000007", "a.mp4#frames=000004-000011"]),
])
def test_long_video_gives_every_clip(tmp_path, monkeypatch, overlap, keys):
    from zoo.media.video import write_video

    model = _case_model("larp", "larp.l_long", monkeypatch)
    write_video(torch.rand(3, 12, 32, 32, generator=torch.Generator().manual_seed(1)) * 2 - 1, tmp_path / "a.mp4", fps=8)
    item = list_items([tmp_path / "a.mp4"]).items[0]
    loader = dataclasses.replace(ItemLoader.for_model(model), overlap=overlap)
    decoded = loader.load_many([item])
    assert [i.key for i, _, _ in decoded] == keys and all(e is None for _, _, e in decoded)
    assert all(tuple(x.shape) == (3, 8, 32, 32) for _, x, _ in decoded)


@pytest.mark.parametrize("model_card, overlap, message", [
    ("larp.l_long", 8, "below the 8 frames"),
    ("larp.l_long", -1, "overlap must be an int >= 0"),
])
def test_bad_overlap_is_refused_before_any_work(tmp_path, monkeypatch, model_card, overlap, message):
    from zoo.errors import InputError

    model = _case_model("larp", model_card, monkeypatch)
    with pytest.raises(InputError, match=message):
        tokenize(model, [tmp_path], tmp_path / "tok", workers=0, progress=False, overlap=overlap)


def test_tokenize_and_detokenize_point_clouds(tmp_path, monkeypatch):
    import numpy as np

    from zoo.media.points import load_points, save_ply
    from zoo_plugins.pointbert.testing import test_clouds

    model = _case_model("pointbert", "point_bert.dvae_shapenet", monkeypatch)
    src = tmp_path / "shapes"
    src.mkdir()
    clouds = test_clouds(2, 600, seed=5)
    save_ply(clouds[0] * 4 + 2, src / "a.ply")
    np.save(src / "b.npy", clouds[1].numpy())
    loader = ItemLoader.for_model(model)
    assert (loader.modality, loader.num_points) == ("3d", 256)
    x = torch.stack([loader.load(i) for i in list_items([src]).items])
    torch.testing.assert_close(x, model.prepare_points(torch.stack([clouds[0] * 4 + 2, clouds[1]])), atol=1e-5, rtol=0)

    tokenize(model, [src], tmp_path / "tok", workers=0, progress=False)
    batch = next(iter(read_tokens(tmp_path / "tok", batch_size=8)))
    direct = model.encode(x)
    assert torch.equal(batch.tokens.ids, direct.ids)
    torch.testing.assert_close(torch.as_tensor(batch.tokens.meta["centers"]), direct.meta["centers"])
    written = detokenize(tmp_path / "tok", tmp_path / "out", model=model)
    assert [p.name for p in written] == ["a.ply", "b.ply"]
    torch.testing.assert_close(load_points(written[0]), model.decode(direct)[0], atol=1e-5, rtol=0)
