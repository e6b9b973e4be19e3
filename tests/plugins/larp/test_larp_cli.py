"""`zoo reconstruct clip.mp4 --model larp` writes input | reconstruction, chunk by chunk."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner

from zoo.cli import cli

pytest.importorskip("av")


@pytest.fixture
def release(lp, tmp_path):
    """A LARP release folder (model.safetensors + config.json) of the parity case."""
    from safetensors.torch import save_file

    from zoo_plugins.larp.config import to_reference_config

    folder = tmp_path / "larp"
    folder.mkdir()
    save_file({k: v.contiguous() for k, v in lp.reference_state_dict().items()}, str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps(to_reference_config(lp.case_config())))
    return folder


@pytest.mark.parametrize("suffix,frames", [(".mp4", 20), (".gif", 8)])
def test_reconstruct_video_side_by_side(lp, release, tmp_path, suffix, frames):
    from zoo.media.video import load_video, probe_video, write_video

    clip = tmp_path / "clip.mp4"
    t = torch.linspace(-0.8, 0.8, frames).view(1, 1, frames, 1, 1)
    write_video((t * torch.linspace(-1, 1, 40).view(1, 1, 1, 1, 40)).expand(1, 3, frames, 36, 40), clip, fps=10)
    out = tmp_path / f"recon{suffix}"
    result = CliRunner().invoke(cli, ["reconstruct", str(clip), "--model", "larp", "--weights", str(release), "--out", str(out)])
    assert result.exit_code == 0, result.output
    chunks = -(-frames // 8)
    assert f"{chunks} chunk(s) of 8 frames, {16 * chunks} tokens" in result.output
    info = probe_video(out)
    assert (info.frames, info.height, info.width) == (frames, 32, 68)  # 32x32 input | 4 px bar | 32x32 output
    written = load_video(out)
    want = load_video(clip, size=32)
    assert (written[..., :32] - want).abs().mean() < 0.05  # the left half is the (resized, cropped) input


@pytest.mark.parametrize("args,match", [
    (["--out", "x.png"], "written as .mp4"),
    (["--tokens", "1,2", "--out", "x.mp4"], "--tokens does not apply"),
    (["--out", "/nonexistent/dir/x.mp4"], "does not exist"),
])
def test_reconstruct_video_bad_arguments(release, tmp_path, args, match):
    from zoo.media.video import write_video

    clip = write_video(torch.zeros(3, 8, 32, 32), tmp_path / "clip.mp4")
    result = CliRunner().invoke(cli, ["reconstruct", str(clip), "--model", "larp", "--weights", str(release), *args])
    assert result.exit_code != 0 and match in result.output


def test_reconstruct_corrupt_video_fails_before_loading(tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00" * 64)
    result = CliRunner().invoke(cli, ["reconstruct", str(bad), "--model", "larp", "--out", str(tmp_path / "o.mp4")])
    assert result.exit_code != 0 and "FFmpeg" in result.output and "Traceback" not in result.output


def test_encode_video_chunks_equals_encoding_each_chunk(lp, tmp_path):
    from zoo.media.video import chunk_video, load_video, write_video
    from zoo.reconstruct_media import encode_video_chunks

    model = lp.case_model()
    g = torch.Generator().manual_seed(3)
    path = write_video(torch.rand(3, 19, 32, 32, generator=g) * 2 - 1, tmp_path / "long.gif", fps=8)
    got = list(encode_video_chunks(model, path, overlap=2))
    want = chunk_video(load_video(path, size=32), 8, overlap=2)
    assert [(c.start, c.valid) for c, _ in got] == [(c.start, c.valid) for c in want] == [(0, 8), (6, 8), (12, 7)]
    for (_, tok), chunk in zip(got, want):
        assert torch.equal(tok.ids, model.encode(chunk.video).ids)
