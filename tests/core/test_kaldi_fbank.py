"""zoo.media.kaldi: Kaldi's filterbank in plain torch, against two references.

* recorded ``torchaudio.compliance.kaldi.fbank`` outputs (torchaudio 2.11 with its compiled
  libraries moved aside; ``scripts/parity/record_kaldi_fbank.py``) for option sets covering every
  branch (windows, energy, reflection, pre-emphasis off, magnitude, mean subtraction, 8 kHz);
* transformers' numpy ``spectrogram`` + ``mel_filter_bank(mel_scale="kaldi")`` (what
  SeamlessM4TFeatureExtractor runs), live when transformers is installed.

Tolerance: log-mel values at int16 scale are 5-25; the implementations differ in float rounding
(mel banks in float64 here, float32 in torchaudio): atol 2e-4 + rtol 1e-5 (observed 6.5e-5).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from zoo.media.kaldi import KaldiOptionError, kaldi_fbank, kaldi_mel_banks, kaldi_window

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "kaldi" / "fbank.safetensors"
ATOL, RTOL = 2e-4, 1e-5


def _fixture() -> tuple[torch.Tensor, dict[str, tuple[dict, torch.Tensor]]]:
    from safetensors import safe_open

    with safe_open(str(FIXTURE), "pt") as f:
        options = json.loads(f.metadata()["options"])
        return f.get_tensor("waveform"), {k: (o, f.get_tensor(k)) for k, o in options.items()}


CASES = sorted(json.loads(__import__("safetensors").safe_open(str(FIXTURE), "pt").metadata()["options"]))


@pytest.mark.parametrize("name", CASES)
def test_equals_torchaudio_kaldi_fbank(name):
    wav, cases = _fixture()
    opts, ref = cases[name]
    out = kaldi_fbank(wav, **opts)
    assert out.shape == ref.shape and out.dtype == torch.float32
    scale = ref.abs().max() if not opts.get("use_log_fbank", True) else 1.0
    torch.testing.assert_close(out / scale, ref / scale, atol=ATOL, rtol=RTOL)


def test_equals_transformers_numpy_kaldi_path():
    """SeamlessM4T / w2v-BERT's numpy front end (transformers.audio_utils), computed live."""
    audio_utils = pytest.importorskip("transformers.audio_utils")
    import numpy as np

    g = torch.Generator().manual_seed(3)
    x = (torch.randn(6000, generator=g) * 0.2).clamp(-1, 1) * 32768
    mel = audio_utils.mel_filter_bank(num_frequency_bins=257, num_mel_filters=80, min_frequency=20, max_frequency=8000,
                                      sampling_rate=16000, norm=None, mel_scale="kaldi", triangularize_in_mel_space=True)
    np.testing.assert_allclose(kaldi_mel_banks(80, 512, 16000, 20, 8000).T.numpy(), mel, atol=1e-12)
    ref = audio_utils.spectrogram(x.numpy(), audio_utils.window_function(400, "povey", periodic=False), frame_length=400,
                                  hop_length=160, fft_length=512, power=2.0, center=False, preemphasis=0.97,
                                  mel_filters=mel, log_mel="log", mel_floor=1.192092955078125e-07, remove_dc_offset=True).T
    out = kaldi_fbank(x, num_mel_bins=80, sample_frequency=16000, low_freq=20, high_freq=8000)
    torch.testing.assert_close(out, torch.from_numpy(ref).float(), atol=ATOL, rtol=RTOL)


def test_rows_of_a_batch_are_separate_signals():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 2000, generator=g) * 1000
    out = kaldi_fbank(x, num_mel_bins=23)
    assert out.shape == (2, 3, 11, 23)
    torch.testing.assert_close(out[1, 2], kaldi_fbank(x[1, 2], num_mel_bins=23), atol=1e-5, rtol=0)


@pytest.mark.parametrize("length,snip,frames", [(400, True, 1), (559, True, 1), (560, True, 2), (16000, True, 98),
                                                 (16000, False, 100), (400, False, 3), (559, False, 3), (560, False, 4)])
def test_frame_counts_follow_kaldi(length, snip, frames):
    assert kaldi_fbank(torch.ones(length), snip_edges=snip).shape[0] == frames


def test_dither_draws_from_the_generator_and_zero_dither_is_deterministic():
    x = torch.randn(4000)
    a = kaldi_fbank(x, dither=1.0, generator=torch.Generator().manual_seed(5))
    b = kaldi_fbank(x, dither=1.0, generator=torch.Generator().manual_seed(5))
    c = kaldi_fbank(x, dither=1.0, generator=torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(kaldi_fbank(x), kaldi_fbank(x))


def test_silence_hits_the_floors():
    out = kaldi_fbank(torch.zeros(1000), use_energy=True)
    assert torch.allclose(out[:, 1:], torch.full_like(out[:, 1:], math.log(torch.finfo(torch.float32).eps)))
    assert torch.allclose(out[:, 0], torch.zeros_like(out[:, 0]))  # energy_floor 1.0 -> log 0


def test_povey_window_is_hann_to_the_085():
    torch.testing.assert_close(kaldi_window("povey", 400), torch.hann_window(400, periodic=False).pow(0.85), atol=1e-6, rtol=0)


@pytest.mark.parametrize("dtype", [torch.int16, torch.int32, torch.float16, torch.bfloat16])
def test_integer_and_half_input_run_in_float32(dtype):
    x = (torch.randn(2000) * 3000).to(dtype)
    out = kaldi_fbank(x)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, kaldi_fbank(x.float()))
    assert kaldi_fbank(x.double()).dtype == torch.float64


@pytest.mark.parametrize("kwargs,match", [
    ({"waveform": torch.zeros(100)}, "fewer than one frame"),
    ({"window_type": "kaiser"}, "window_type must be one of"),
    ({"low_freq": 9000}, "low_freq"),
    ({"num_mel_bins": 2}, "at least 3"),
    ({"preemphasis_coefficient": 1.5}, r"\[0, 1\]"),
    ({"frame_shift": 0.0}, "positive shift"),
    ({"frame_length": 25.0625, "round_to_power_of_two": False}, "odd"),
], ids=["short", "window", "low_freq", "bins", "preemphasis", "shift", "odd_fft"])
def test_bad_options_name_the_problem(kwargs, match):
    wav = kwargs.pop("waveform", torch.zeros(4000))
    with pytest.raises(KaldiOptionError, match=match):
        kaldi_fbank(wav, **kwargs)
