"""Kaldi's log-mel filterbank (``compute-fbank-feats``) in plain torch, no torchaudio.

:func:`kaldi_fbank` computes what ``torchaudio.compliance.kaldi.fbank`` computes (the feature
front end of w2v-BERT / SeamlessM4T and of X-Codec 2's semantic encoder), with the same option
names and defaults, batched over leading dimensions. The steps, per frame of ``frame_length`` ms
taken every ``frame_shift`` ms:

1. framing: ``snip_edges=True`` keeps only frames that fit (``1 + (L - N) // S`` of them);
   ``False`` takes ``(L + S // 2) // S`` frames over the signal reflected at both ends
   (Kaldi's ``[2, 1, 0, 0, 1, 2]`` reflection, the edge sample repeated);
2. ``dither`` (Gaussian noise times ``dither``; 0 turns it off, as in evaluation), then
   ``remove_dc_offset`` (subtract the frame's mean);
3. ``raw_energy``: the log energy before pre-emphasis and windowing (else after windowing),
   floored at ``energy_floor`` (and at float epsilon);
4. pre-emphasis ``x[j] -= preemphasis_coefficient * x[j - 1]`` (``x[-1] = x[0]``);
5. the window (``povey`` = Hann ``** 0.85``, ``hanning``, ``hamming``, ``rectangular``,
   ``blackman``), zero-padding to the next power of two (``round_to_power_of_two``);
6. ``|rfft|^2`` (``use_power``; magnitude otherwise), then ``num_mel_bins`` triangular filters
   equally spaced on the Kaldi mel scale ``1127 ln(1 + f / 700)`` between ``low_freq`` and
   ``high_freq`` (``<= 0``: offset from Nyquist), each filter's weight the triangle's value at
   the FFT bin's own mel frequency; the Nyquist bin gets no weight;
7. ``log`` floored at float epsilon (``use_log_fbank``), energy prepended (or appended with
   ``htk_compat``) when ``use_energy``, column means removed when ``subtract_mean``.

VTLN warping is not supported (``vtln_warp`` 1, Kaldi's default).

Example:
    >>> import torch
    >>> wav = torch.randn(16000) * 1000              # 1 s at 16 kHz, Kaldi's int16 scale
    >>> feats = kaldi_fbank(wav, num_mel_bins=80, sample_frequency=16000, dither=0.0)
    >>> tuple(feats.shape)                           # frames of 25 ms every 10 ms, 80 bins
    (98, 80)
    >>> tuple(kaldi_fbank(torch.randn(3, 1600), num_mel_bins=23).shape)   # batched over rows
    (3, 8, 23)
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch
import torch.nn.functional as F

from zoo.errors import MediaError

__all__ = ["kaldi_fbank", "kaldi_mel_banks", "kaldi_window", "KaldiOptionError"]

WINDOWS = ("povey", "hanning", "hamming", "rectangular", "blackman")


class KaldiOptionError(MediaError):
    """A Kaldi filterbank option zoo cannot use (bad value, or a signal shorter than a frame)."""


def _mel(freq: torch.Tensor | float) -> torch.Tensor | float:
    if isinstance(freq, torch.Tensor):
        return 1127.0 * torch.log1p(freq / 700.0)
    return 1127.0 * math.log1p(freq / 700.0)


def kaldi_window(window_type: str, size: int, *, blackman_coeff: float = 0.42, dtype: torch.dtype = torch.float32,
                 device: torch.device | str | None = None) -> torch.Tensor:
    """Kaldi's analysis window of ``size`` samples (symmetric, not periodic).

    Example:
        >>> w = kaldi_window("povey", 5)
        >>> [round(v, 4) for v in w.tolist()]
        [0.0, 0.5548, 1.0, 0.5548, 0.0]
    """
    if window_type not in WINDOWS:
        raise KaldiOptionError(f"window_type must be one of {', '.join(WINDOWS)}; got {window_type!r}")
    n = torch.arange(size, dtype=torch.float64)
    a = 2 * math.pi / (size - 1)
    if window_type in ("hanning", "povey"):
        w = 0.5 - 0.5 * torch.cos(a * n)
        w = w.pow(0.85) if window_type == "povey" else w
    elif window_type == "hamming":
        w = 0.54 - 0.46 * torch.cos(a * n)
    elif window_type == "rectangular":
        w = torch.ones(size, dtype=torch.float64)
    else:
        w = blackman_coeff - 0.5 * torch.cos(a * n) + (0.5 - blackman_coeff) * torch.cos(2 * a * n)
    return w.to(dtype=dtype, device=device)


@lru_cache(maxsize=16)
def _mel_banks_cpu(num_bins: int, padded_window_size: int, sample_frequency: float, low_freq: float,
                   high_freq: float) -> torch.Tensor:
    nyquist = 0.5 * sample_frequency
    high = high_freq + nyquist if high_freq <= 0.0 else high_freq
    if num_bins < 3:
        raise KaldiOptionError(f"num_mel_bins must be at least 3, got {num_bins}")
    if not (0.0 <= low_freq < nyquist and 0.0 < high <= nyquist and low_freq < high):
        raise KaldiOptionError(f"mel bins need 0 <= low_freq < high_freq <= Nyquist ({nyquist:g} Hz); "
                               f"got low_freq={low_freq:g}, high_freq={high:g}")
    mel_low, mel_high = _mel(float(low_freq)), _mel(float(high))
    delta = (mel_high - mel_low) / (num_bins + 1)
    b = torch.arange(num_bins, dtype=torch.float64)[:, None]
    left, center, right = mel_low + b * delta, mel_low + (b + 1) * delta, mel_low + (b + 2) * delta
    mel = _mel(sample_frequency / padded_window_size * torch.arange(padded_window_size // 2, dtype=torch.float64))[None]
    banks = torch.clamp(torch.minimum((mel - left) / (center - left), (right - mel) / (right - center)), min=0.0)
    return F.pad(banks, (0, 1))  # no weight on the Nyquist bin


def kaldi_mel_banks(num_bins: int, padded_window_size: int, sample_frequency: float, low_freq: float = 20.0,
                    high_freq: float = 0.0) -> torch.Tensor:
    """Kaldi's triangular mel filters ``[num_bins, padded_window_size // 2 + 1]`` (float64).

    Example:
        >>> banks = kaldi_mel_banks(23, 512, 16000)
        >>> tuple(banks.shape), float(banks[:, -1].abs().sum())
        ((23, 257), 0.0)
    """
    if padded_window_size % 2:
        raise KaldiOptionError(f"the padded window must have an even size, got {padded_window_size}")
    return _mel_banks_cpu(int(num_bins), int(padded_window_size), float(sample_frequency), float(low_freq),
                          float(high_freq)).clone()


def _frames(x: torch.Tensor, size: int, shift: int, snip_edges: bool) -> torch.Tensor:
    """``[N, L]`` -> ``[N, m, size]`` frames (Kaldi's framing rule)."""
    length = x.shape[-1]
    if snip_edges:
        if length < size:
            return x.new_zeros(x.shape[0], 0, size)
        return x.unfold(-1, size, shift)
    m = (length + shift // 2) // shift
    pad = size // 2 - shift // 2
    rev = x.flip(-1)
    x = torch.cat((rev[:, -pad:], x, rev), dim=-1) if pad > 0 else torch.cat((x[:, -pad:], rev), dim=-1)
    return x.unfold(-1, size, shift)[:, :m]


def kaldi_fbank(waveform: torch.Tensor, *, blackman_coeff: float = 0.42, dither: float = 0.0, energy_floor: float = 1.0,
                frame_length: float = 25.0, frame_shift: float = 10.0, high_freq: float = 0.0, htk_compat: bool = False,
                low_freq: float = 20.0, num_mel_bins: int = 23, preemphasis_coefficient: float = 0.97,
                raw_energy: bool = True, remove_dc_offset: bool = True, round_to_power_of_two: bool = True,
                sample_frequency: float = 16000.0, snip_edges: bool = True, subtract_mean: bool = False,
                use_energy: bool = False, use_log_fbank: bool = True, use_power: bool = True,
                window_type: str = "povey", generator: torch.Generator | None = None) -> torch.Tensor:
    """Kaldi filterbank features of ``waveform`` ``[..., L]`` -> ``[..., frames, num_mel_bins (+1)]``.

    Options and defaults are ``torchaudio.compliance.kaldi.fbank``'s (see the module doc);
    ``frame_length`` / ``frame_shift`` are milliseconds. Samples are used as given: Kaldi
    front ends expect int16 scale, so multiply [-1, 1] audio by 32768 first. Every row of a
    batch is one signal (torchaudio takes one signal per call). ``dither`` noise is drawn from
    ``generator`` (the global RNG without one). Computed in float64 for float64 input, else
    in float32 (integer and half-precision input included).

    Example:
        >>> import torch
        >>> x = torch.sin(torch.arange(4000) * 0.3) * 3000
        >>> f = kaldi_fbank(x, num_mel_bins=40, sample_frequency=8000)
        >>> tuple(f.shape), int(f.mean(0).argmax())     # 382 Hz tone: bin 8 is centred at 387 Hz
        ((48, 40), 8)
    """
    if not isinstance(waveform, torch.Tensor):
        raise KaldiOptionError(f"kaldi_fbank takes a tensor [..., L], not {type(waveform).__name__}")
    x = waveform if waveform.dtype in (torch.float32, torch.float64) else waveform.float()
    if waveform.dim() == 0:
        raise KaldiOptionError("kaldi_fbank takes a waveform [..., L], got a scalar")
    lead = x.shape[:-1]
    x = x.reshape(-1, x.shape[-1])
    shift = int(sample_frequency * frame_shift * 0.001)
    size = int(sample_frequency * frame_length * 0.001)
    padded = (1 << (size - 1).bit_length()) if round_to_power_of_two else size
    if shift <= 0 or size < 2:
        raise KaldiOptionError(f"frames of {frame_length:g} ms every {frame_shift:g} ms at {sample_frequency:g} Hz are "
                               f"{size} samples every {shift}; need at least 2 samples and a positive shift")
    if padded % 2:
        raise KaldiOptionError(f"the FFT size {padded} is odd: use round_to_power_of_two=True or an even frame length")
    if not 0.0 <= preemphasis_coefficient <= 1.0:
        raise KaldiOptionError(f"preemphasis_coefficient must be in [0, 1], got {preemphasis_coefficient}")
    if x.shape[-1] < size:
        raise KaldiOptionError(f"the signal has {x.shape[-1]} samples, fewer than one frame ({size} samples = "
                               f"{frame_length:g} ms at {sample_frequency:g} Hz)")
    dtype, device = x.dtype, x.device
    eps = torch.finfo(torch.float32).eps
    frames = _frames(x, size, shift, snip_edges)  # [N, m, size] (a view)
    if dither != 0.0:
        frames = frames + torch.randn(frames.shape, generator=generator, dtype=dtype, device=device) * dither
    if remove_dc_offset:
        frames = frames - frames.mean(-1, keepdim=True)
    energy = None
    if use_energy and raw_energy:
        energy = frames.pow(2).sum(-1)
    if preemphasis_coefficient != 0.0:
        prev = torch.cat((frames[..., :1], frames[..., :-1]), dim=-1)
        frames = frames - preemphasis_coefficient * prev
    frames = frames * kaldi_window(window_type, size, blackman_coeff=blackman_coeff, dtype=dtype, device=device)
    if padded != size:
        frames = F.pad(frames, (0, padded - size))
    if use_energy and not raw_energy:
        energy = frames.pow(2).sum(-1)
    spectrum = torch.fft.rfft(frames).abs()
    if use_power:
        spectrum = spectrum.pow(2)
    banks = kaldi_mel_banks(num_mel_bins, padded, sample_frequency, low_freq, high_freq).to(dtype=dtype, device=device)
    mel = spectrum @ banks.T
    if use_log_fbank:
        mel = mel.clamp_min(eps).log()
    if use_energy:
        log_energy = energy.clamp_min(eps).log()
        if energy_floor != 0.0:
            log_energy = log_energy.clamp_min(math.log(energy_floor))
        mel = torch.cat((mel, log_energy[..., None]) if htk_compat else (log_energy[..., None], mel), dim=-1)
    if subtract_mean:
        mel = mel - mel.mean(-2, keepdim=True)
    return mel.reshape(*lead, *mel.shape[-2:])
