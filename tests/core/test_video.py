"""zoo.media.video: reading (PyAV, image folders), resampling, resizing, chunking, writing."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from zoo.errors import InputTypeError, MediaError
from zoo.media import video as V

pytest.importorskip("av")


def _ramp(t=12, h=24, w=32) -> torch.Tensor:
    """A clip whose frame k is a flat grey level that identifies k after lossy coding."""
    levels = torch.linspace(-0.9, 0.9, t)
    return levels.view(1, 1, t, 1, 1).expand(1, 3, t, h, w).contiguous()


def _frame_ids(clip: torch.Tensor, t: int) -> list[int]:
    levels = torch.linspace(-0.9, 0.9, t)
    means = clip[0].mean(dim=(0, 2, 3))
    return [int((levels - m).abs().argmin()) for m in means]


@pytest.mark.parametrize("suffix", [".mp4", ".gif", ".webm"])
def test_write_then_read_round_trip(tmp_path, suffix):
    clip = _ramp()
    path = V.write_video(clip, tmp_path / f"c{suffix}", fps=6)
    info = V.probe_video(path)
    assert (info.frames, info.height, info.width) == (12, 24, 32)
    assert info.fps == pytest.approx(6, rel=0.05)
    back = V.load_video(path)
    assert back.shape == (1, 3, 12, 24, 32) and back.min() >= -1 and back.max() <= 1
    assert _frame_ids(back, 12) == list(range(12))
    assert (back - clip).abs().mean() < 0.05


@pytest.mark.parametrize("suffix,fps", [(".mp4", 6), (".gif", 5), (".webm", 12)])
def test_video_fps_reads_the_header(tmp_path, suffix, fps):
    path = V.write_video(_ramp(), tmp_path / f"c{suffix}", fps=fps)
    assert V.video_fps(path) == V.probe_video(path).fps == pytest.approx(fps, rel=0.05)
    assert V.video_fps(path.read_bytes()) == V.video_fps(path)
    assert V.video_fps(tmp_path, folder_fps=25) == 25.0  # a folder: its images are frames
    with pytest.raises(MediaError, match="not a video file"):
        V.video_fps(b"not a video")


def test_odd_sizes_are_padded_for_h264(tmp_path):
    path = V.write_video(torch.zeros(3, 2, 15, 17), tmp_path / "odd.mp4")
    assert (V.probe_video(path).height, V.probe_video(path).width) == (16, 18)


@pytest.mark.parametrize("fps,start,num,want", [
    (None, 0, None, list(range(12))),
    (3, 0, None, [0, 2, 4, 6, 8, 10]),
    (3, 1, 3, [2, 4, 6]),
    (12, 0, 5, [0, 0, 1, 1, 2]),
    (None, 10, 5, [10, 11]),
])
def test_frame_rate_resampling_and_selection(tmp_path, fps, start, num, want):
    path = V.write_video(_ramp(), tmp_path / "c.gif", fps=6)
    frames, rate = V.read_frames(path, fps=fps, start=start, num_frames=num)
    assert _frame_ids(V.frames_to_tensor(frames), 12) == want
    assert rate == pytest.approx(6 if fps is None else fps, rel=0.05)  # gif delays are in 1/100 s
    if fps is not None and num is None and start == 0:
        assert want == V.resample_indices(12, 6, fps)


def test_resize_and_centre_crop():
    frames = np.zeros((2, 20, 40, 3), dtype=np.uint8)
    frames[:, :, 10:30] = 255  # a white centre band 20 wide
    x = V.frames_to_tensor(frames, size=10)
    assert x.shape == (1, 3, 2, 10, 10)
    assert x[..., 1:-1].min() > 0.99 and x.min() > 0.5  # only the white centre (antialiased edge)
    assert V.frames_to_tensor(frames, size=(8, 12)).shape == (1, 3, 2, 8, 12)


def test_image_folder_is_a_video(tmp_path):
    from PIL import Image

    for k in range(5):
        Image.new("RGB", (16, 12), (k * 50,) * 3).save(tmp_path / f"f{k:03d}.png")
    (tmp_path / "notes.txt").write_text("ignored")
    clip = V.load_video(tmp_path, folder_fps=10, fps=5)
    assert clip.shape == (1, 3, 3, 12, 16)
    assert [round(float(v)) for v in ((clip[0, 0, :, 0, 0] + 1) * 127.5)] == [0, 100, 200]


@pytest.mark.parametrize("length,overlap", [(4, 0), (4, 1), (5, 2), (12, 3), (16, 0)])
def test_streamed_chunks_equal_chunks_of_the_whole_clip(tmp_path, length, overlap):
    path = V.write_video(_ramp(), tmp_path / "c.gif", fps=6)
    whole = V.load_video(path)
    streamed = list(V.iter_chunks(path, length, overlap))
    cut = V.chunk_video(whole, length, overlap)
    assert [(c.start, c.valid) for c in streamed] == [(c.start, c.valid) for c in cut]
    for a, b in zip(streamed, cut):
        assert a.video.shape == (1, 3, length, 24, 32)
        torch.testing.assert_close(a.video, b.video)
    torch.testing.assert_close(V.stitch_chunks(streamed, overlap), whole)


def test_streaming_holds_at_most_one_chunk(tmp_path, monkeypatch):
    """iter_chunks converts frames as it decodes: it never holds more than `length` of them."""
    path = V.write_video(_ramp(t=30), tmp_path / "long.gif", fps=6)
    held, seen = [], []
    real = V.frames_to_tensor

    def counting(frames, size=None):
        seen.append(1)
        return real(frames, size)

    monkeypatch.setattr(V, "frames_to_tensor", counting)
    for _chunk in V.iter_chunks(path, 4):
        held.append(len(seen))
    assert held == [4, 8, 12, 16, 20, 24, 28, 30]  # frames converted when each chunk is yielded


def test_side_by_side_matches_height_and_frames():
    a, b = torch.zeros(1, 3, 4, 8, 8), torch.ones(1, 3, 2, 4, 4)
    out = V.side_by_side(a, b, pad=2)
    assert out.shape == (1, 3, 4, 8, 18)
    assert out[..., 10:].min() == 1


@pytest.mark.parametrize("value,kwargs,err,match", [
    ([1, 2], {}, InputTypeError, "float video tensor"),
    (torch.zeros(1, 1, 4, 8, 8), {}, MediaError, r"\[B, 3, T, H, W\]"),
    (torch.zeros(1, 3, 4, 8, 8, dtype=torch.uint8), {}, InputTypeError, "float"),
    (torch.zeros(0, 3, 4, 8, 8), {}, MediaError, "empty batch"),
    (torch.zeros(1, 3, 4, 8, 8), {"size": 16}, MediaError, "16x16"),
    (torch.full((1, 3, 4, 8, 8), float("nan")), {}, MediaError, "NaN"),
    (torch.full((1, 3, 4, 8, 8), 200.0), {}, MediaError, r"\[-1, 1\]"),
])
def test_check_video_rejects(value, kwargs, err, match):
    with pytest.raises(err, match=match):
        V.check_video(value, **kwargs)


def test_bad_and_missing_files(tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00" * 100)
    with pytest.raises(MediaError, match="FFmpeg"):
        V.load_video(bad)
    with pytest.raises(FileNotFoundError):
        V.load_video(tmp_path / "missing.mp4")
    with pytest.raises(MediaError, match="no image frames"):
        V.load_video(tmp_path)  # a folder without images
    with pytest.raises(MediaError, match="cannot write"):
        V.write_video(torch.zeros(3, 2, 4, 4), tmp_path / "x.bmp")
    with pytest.raises(MediaError, match="overlap"):
        list(V.iter_chunks(bad, 4, overlap=4))
