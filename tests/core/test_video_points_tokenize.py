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
from zoo.datasets.sources import ItemLoader, VideoClips, guess_modality, list_items, sniff_modality
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
    [(got, stream, error)] = loader.load_many([item])  # a long video travels as a stream, not as frames
    assert (got, error, stream) == (item, None, VideoClips(loader, item))
    assert repr(stream) == "VideoClips('a.mp4': clips of 8 frames, overlap %d, decoded as iterated)" % overlap
    assert len(repr(VideoClips(loader, dataclasses.replace(item, key="k" * 500)))) <= 200
    clips = list(stream)
    assert [i.key for i, _ in clips] == keys == [i.key for i, _ in loader.load_clips(item)]
    assert all(tuple(x.shape) == (3, 8, 32, 32) for _, x in clips)


def _live_chunks(monkeypatch) -> dict[str, int]:
    """Count the chunks iter_chunks has made and how many are still alive (their frames not freed)."""
    import weakref

    import zoo.media.video as V

    count = {"made": 0, "freed": 0}
    real = V.Chunk

    def freed() -> None:
        count["freed"] += 1

    def chunk(video, start, valid):
        count["made"] += 1
        weakref.finalize(video, freed)
        return real(video, start, valid)

    monkeypatch.setattr(V, "Chunk", chunk)
    return count


@pytest.mark.parametrize("workers", [0, 1])
def test_long_video_tokenizes_in_bounded_memory(tmp_path, monkeypatch, workers):
    """The chunks alive while the model encodes stay below batch_size + 2 however long the
    video: a 4x longer clip gives 4x the rows, not 4x the frames in memory."""
    from zoo.datasets import engines
    from zoo.media.video import write_video

    encode_group = engines._encode_group
    model = _case_model("larp", "larp.l_long", monkeypatch)
    g = torch.Generator().manual_seed(3)
    peaks, batches = {}, {}
    for frames in (40, 160):  # 5 and 20 clips of 8 frames
        src = tmp_path / f"v{frames}"
        src.mkdir()
        write_video(torch.rand(3, frames, 32, 32, generator=g) * 2 - 1, src / "long.mp4", fps=8)
        count, seen = _live_chunks(monkeypatch), []

        def counting(model, loader, xs, tokens, count=count, seen=seen):
            seen.append((count["made"] - count["freed"], len(xs)))
            return encode_group(model, loader, xs, tokens)

        monkeypatch.setattr(engines, "_encode_group", counting)
        tokenize(model, [src], tmp_path / f"tok{frames}", workers=workers, progress=False, batch_size=2)
        batch = next(iter(read_tokens(tmp_path / f"tok{frames}", batch_size=64)))
        assert len(batch.keys) == frames // 8 and batch.keys[-1] == f"long.mp4#frames={frames - 8:06d}-{frames - 1:06d}"
        peaks[frames], batches[frames] = max(alive for alive, _ in seen), max(n for _, n in seen)
    assert batches == {40: 2, 160: 2}  # clips go to the model batch_size at a time
    assert peaks[160] == peaks[40] <= 2 + 1  # one batch (plus the look-ahead chunk), whatever the length


def test_a_video_that_fails_half_way_is_one_failure(tmp_path, monkeypatch):
    """A stream that stops decoding after some clips: no rows for it, one failure under its key."""
    from zoo.datasets.engines import encode_batch
    from zoo.datasets.sources import Item
    from zoo.errors import MediaError

    model = _case_model("larp", "larp.l_long", monkeypatch)
    loader = ItemLoader.for_model(model)

    def broken(self, item):
        yield dataclasses.replace(item, key=f"{item.key}#frames=000000-000007"), torch.zeros(3, 8, 32, 32)
        raise MediaError(f"{item.key}: decoding failed (Invalid data); is the file truncated or corrupt?")

    monkeypatch.setattr(ItemLoader, "iter_clips", broken)
    bad, good = Item("bad.mp4", "/x/bad.mp4"), Item("good.mp4", "/x/good.mp4")
    result = encode_batch(model, loader, [(bad, VideoClips(loader, bad), None), (good, torch.zeros(3, 8, 32, 32), None)])
    assert [r["key"] for r in result.rows] == ["good.mp4"]
    assert result.failures == [{"key": "bad.mp4", "error": "MediaError: bad.mp4: decoding failed (Invalid data); "
                                                            "is the file truncated or corrupt?"}]


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


def test_reconstruct_streams_a_long_video(tmp_path, monkeypatch):
    """zoo reconstruct to .mp4 holds one chunk at a time: the chunks alive while the model
    decodes stay at one however long the clip, and every frame is written."""
    from zoo.media.video import probe_video, write_video
    from zoo.reconstruct_media import reconstruct_video

    model = _case_model("larp", "larp.l_long", monkeypatch)
    g = torch.Generator().manual_seed(4)
    for frames in (24, 96):
        clip = write_video(torch.rand(3, frames, 32, 32, generator=g) * 2 - 1, tmp_path / f"c{frames}.mp4", fps=8)
        count, alive = _live_chunks(monkeypatch), []
        decode = type(model).decode

        def counting(self, tokens, *args, count=count, alive=alive, decode=decode, **kwargs):
            alive.append(count["made"] - count["freed"])
            return decode(self, tokens, *args, **kwargs)

        monkeypatch.setattr(type(model), "decode", counting)
        out = reconstruct_video(model, clip, tmp_path / f"r{frames}.mp4", echo=lambda line: None)
        monkeypatch.setattr(type(model), "decode", decode)
        assert len(alive) == frames // 8 and max(alive) == 1
        assert probe_video(out).frames == frames
