"""zoo.media.audio: file I/O (soundfile), resampling (vs torchaudio's recorded outputs and
signal properties), mono mixing rule, and the errors users see."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from zoo.media.audio import AudioError, load_audio, prepare_audio, resample, save_audio, to_mono

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "wavtokenizer" / "resample_torchaudio.safetensors"


def _signal(n: int, seed: int, rate: int, channels: int) -> torch.Tensor:
    from zoo_plugins.wavtokenizer.testing import test_signal

    return test_signal(n, seed=seed, sample_rate=rate, channels=channels)


@pytest.mark.parametrize("index", range(6))
def test_resample_matches_torchaudio(index):
    """Same algorithm as torchaudio.functional.resample (defaults), recorded by the parity script."""
    from safetensors import safe_open

    with safe_open(str(FIXTURE), framework="pt") as f:
        meta = json.loads(f.metadata()["meta"])
        key = ["44100_24000", "16000_24000", "48000_24000", "22050_24000", "24000_16000", "8000_24000"][index]
        want = f.get_tensor(f"{key}.out")
    orig, new = (int(x) for x in key.split("_"))
    x = _signal(meta["length"] + 7 * index, meta["seed"] + index, orig, meta["channels"])
    got = resample(x, orig, new)
    assert got.shape == want.shape == (2, math.ceil(new * x.shape[-1] / orig))
    assert (got - want).abs().max() < 1e-5  # torchaudio builds its filter in float32, zoo in float64


@pytest.mark.parametrize("orig, new", [(44100, 24000), (16000, 24000), (48000, 16000), (24000, 24000)])
def test_resample_keeps_a_passband_sine(orig, new):
    f0 = 440.0
    n = orig  # one second
    t = torch.arange(n, dtype=torch.float64) / orig
    x = torch.sin(2 * math.pi * f0 * t).float()[None]
    y = resample(x, orig, new)[0]
    ty = torch.arange(y.shape[0], dtype=torch.float64) / new
    want = torch.sin(2 * math.pi * f0 * ty).float()
    core = slice(new // 20, -new // 20)  # away from the zero-padded edges
    assert (y[core] - want[core]).abs().max() < 2e-3


def test_resample_removes_content_above_the_new_nyquist():
    orig, new = 48000, 16000
    t = torch.arange(orig, dtype=torch.float64) / orig
    x = torch.sin(2 * math.pi * 11000 * t).float()  # above 8 kHz: must not alias into the output
    y = resample(x, orig, new)
    assert y[1000:-1000].abs().max() < 0.01


def test_resample_batch_shape_and_errors():
    x = torch.randn(3, 2, 1000)
    assert resample(x, 16000, 24000).shape == (3, 2, 1500)
    with pytest.raises(AudioError, match="float"):
        resample(torch.zeros(10, dtype=torch.int16), 16000, 24000)
    with pytest.raises(AudioError, match="positive"):
        resample(torch.zeros(10), 0, 24000)


def test_to_mono_is_the_channel_mean():
    x = torch.tensor([[1.0, -1.0, 0.5], [0.0, 1.0, 0.5]])
    assert to_mono(x).tolist() == [0.5, 0.0, 0.5]
    assert to_mono(torch.ones(4)).tolist() == [1.0] * 4
    with pytest.raises(AudioError, match=r"\[L\] or \[C, L\]"):
        to_mono(torch.zeros(1, 2, 3))


def test_prepare_audio_mixes_then_resamples():
    x = torch.randn(2, 4410)
    y = prepare_audio(x, 44100, 24000)
    assert y.shape == (2400,)
    assert torch.allclose(y, resample(x.mean(0), 44100, 24000), atol=1e-6)
    with pytest.raises(AudioError, match="float samples"):
        prepare_audio(torch.zeros(2, 10, dtype=torch.int16), 16000, 24000)
    with pytest.raises(AudioError, match="0 samples"):
        prepare_audio(torch.zeros(1, 0), 16000, 24000)


@pytest.mark.parametrize("suffix", ["wav", "flac"])
def test_save_load_round_trip(tmp_path, suffix):
    pytest.importorskip("soundfile")
    x = 0.5 * torch.sin(torch.linspace(0, 200, 3000))[None].repeat(2, 1)
    x[1] *= -1
    path = tmp_path / f"a.{suffix}"
    save_audio(path, x, 22050)
    y, sr = load_audio(path)
    assert sr == 22050 and y.shape == (2, 3000) and y.dtype == torch.float32
    assert (y - x).abs().max() <= 1 / 32768 + 1e-6  # 16-bit PCM
    mono24, sr24 = load_audio(path, sample_rate=24000, mono=True)
    assert sr24 == 24000 and mono24.shape == (1, math.ceil(3000 * 24000 / 22050))


def test_save_clips_and_load_errors(tmp_path):
    pytest.importorskip("soundfile")
    path = tmp_path / "loud.wav"
    save_audio(path, torch.tensor([2.0, -3.0, 0.25]), 8000)
    y, _ = load_audio(path)
    assert y[0].tolist() == pytest.approx([32767 / 32768, -1.0, 0.25], abs=1e-4)
    with pytest.raises(AudioError, match="not found"):
        load_audio(tmp_path / "missing.wav")
    (tmp_path / "junk.wav").write_bytes(b"not audio")
    with pytest.raises(AudioError, match="could not read"):
        load_audio(tmp_path / "junk.wav")
