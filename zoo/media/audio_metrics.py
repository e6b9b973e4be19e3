"""Objective audio-reconstruction measures, a same-bitrate mu-law baseline and a spectrogram picture.

All functions take mono waveforms ``[L]`` or batches ``[B, L]`` (float, [-1, 1]) at one sample
rate; reference and estimate are trimmed to the shorter length.

* :func:`log_mel` / :func:`mel_distance`: mean absolute difference of natural-log mel
  spectrograms (80 HTK mel bands up to ``sample_rate / 2``, Hann window ``n_fft = 1024``, hop
  256, magnitudes clamped at 1e-5) -- the "mel distance" codec papers report; lower is better.
* :func:`stft_distance`: mean over three resolutions (``n_fft`` 512 / 1024 / 2048, hop a
  quarter) of the mean absolute difference of log10 magnitudes (clamped at 1e-5); lower is better.
* :func:`si_snr`: scale-invariant signal-to-noise ratio in dB (zero-mean signals, the estimate
  projected on the reference); higher is better, 0 dB = as much error as signal.
* :func:`mulaw_baseline`: what a plain PCM codec sends at a given bitrate: downsample to
  ``bitrate / bits`` Hz, mu-law quantise to ``bits`` bits, expand and upsample back.
* :func:`spectrogram_image`: input | output log spectrograms stacked, as a PIL image
  (``zoo reconstruct`` writes one next to every audio reconstruction).

Example:
    >>> import torch
    >>> t = torch.arange(16000) / 16000
    >>> x = 0.5 * torch.sin(2 * torch.pi * 440 * t)
    >>> round(float(si_snr(x, x)), 1) > 60, float(mel_distance(x, x, 16000))
    (True, 0.0)
    >>> noise = 0.5 * torch.sin(2 * torch.pi * 1000 * t)   # orthogonal, as loud as x
    >>> round(float(si_snr(x, x + noise)), 2)
    0.0
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch
import torch.nn.functional as F

__all__ = ["log_mel", "mel_distance", "stft_distance", "si_snr", "mulaw_baseline", "spectrogram_image"]


def _pair(ref: torch.Tensor, est: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    ref, est = ref.float(), est.float()
    if ref.dim() == 1:
        ref = ref[None]
    if est.dim() == 1:
        est = est[None]
    n = min(ref.shape[-1], est.shape[-1])
    return ref[..., :n], est[..., :n]


@lru_cache(maxsize=8)
def _mel_fb(sample_rate: int, n_fft: int, n_mels: int) -> torch.Tensor:
    """HTK mel filterbank ``[n_mels, n_fft // 2 + 1]`` (triangles, peak 1)."""
    def hz_to_mel(f: torch.Tensor) -> torch.Tensor:
        return 2595.0 * torch.log10(1.0 + f / 700.0)

    freqs = torch.linspace(0, sample_rate / 2, n_fft // 2 + 1, dtype=torch.float64)
    top = hz_to_mel(torch.tensor(sample_rate / 2, dtype=torch.float64))
    pts = 700.0 * (10 ** (torch.linspace(0, float(top), n_mels + 2, dtype=torch.float64) / 2595.0) - 1)
    lo, mid, hi = pts[:-2, None], pts[1:-1, None], pts[2:, None]
    up = (freqs[None] - lo) / (mid - lo)
    down = (hi - freqs[None]) / (hi - mid)
    return torch.clamp(torch.minimum(up, down), min=0).float()


def _mag(x: torch.Tensor, n_fft: int, hop: int) -> torch.Tensor:
    win = torch.hann_window(n_fft, device=x.device)
    return torch.stft(x, n_fft, hop, window=win, center=True, pad_mode="reflect", return_complex=True).abs()


def log_mel(x: torch.Tensor, sample_rate: int, n_fft: int = 1024, hop: int = 256, n_mels: int = 80) -> torch.Tensor:
    """Natural-log mel spectrogram ``[B, n_mels, frames]`` of ``[B, L]`` audio (magnitudes, clamped at 1e-5).

    Example:
        >>> tuple(log_mel(torch.zeros(2, 4096), 16000).shape)
        (2, 80, 17)
    """
    if x.dim() == 1:
        x = x[None]
    fb = _mel_fb(int(sample_rate), n_fft, n_mels).to(x.device)
    return torch.log(torch.clamp(fb @ _mag(x.float(), n_fft, hop), min=1e-5))


def mel_distance(ref: torch.Tensor, est: torch.Tensor, sample_rate: int) -> torch.Tensor:
    """Per-item mean |log-mel(ref) - log-mel(est)| (``[B]``); lower is better."""
    ref, est = _pair(ref, est)
    return (log_mel(ref, sample_rate) - log_mel(est, sample_rate)).abs().flatten(1).mean(1)


def stft_distance(ref: torch.Tensor, est: torch.Tensor, resolutions: tuple[int, ...] = (512, 1024, 2048)) -> torch.Tensor:
    """Per-item multi-resolution mean |log10 |STFT(ref)| - log10 |STFT(est)|| (``[B]``); lower is better."""
    ref, est = _pair(ref, est)
    out = []
    for n_fft in resolutions:
        a = torch.log10(torch.clamp(_mag(ref, n_fft, n_fft // 4), min=1e-5))
        b = torch.log10(torch.clamp(_mag(est, n_fft, n_fft // 4), min=1e-5))
        out.append((a - b).abs().flatten(1).mean(1))
    return torch.stack(out).mean(0)


def si_snr(ref: torch.Tensor, est: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Per-item scale-invariant SNR in dB (``[B]``); higher is better."""
    ref, est = _pair(ref, est)
    ref = ref - ref.mean(-1, keepdim=True)
    est = est - est.mean(-1, keepdim=True)
    target = (est * ref).sum(-1, keepdim=True) / (ref.square().sum(-1, keepdim=True) + eps) * ref
    noise = est - target
    return 10 * torch.log10((target.square().sum(-1) + eps) / (noise.square().sum(-1) + eps))


def mulaw_baseline(x: torch.Tensor, sample_rate: int, bitrate: float, bits: int = 8, mu: float = 255.0) -> torch.Tensor:
    """``x`` sent as ``bits``-bit mu-law PCM at ``bitrate`` bits/s (sample rate ``bitrate / bits``),
    then upsampled back to ``sample_rate`` (band-limited, :func:`zoo.media.audio.resample`).

    Example:
        >>> y = mulaw_baseline(torch.zeros(1, 16000), 16000, bitrate=8000, bits=8)
        >>> tuple(y.shape), float(y.abs().max()) < 1e-2
        ((1, 16000), True)
    """
    from zoo.media.audio import resample

    if x.dim() == 1:
        x = x[None]
    low_rate = bitrate / bits
    # resample needs integer rates: work at a rate that divides evenly
    low = max(1, int(round(low_rate)))
    y = resample(x.float(), int(sample_rate), low)
    levels = 2**bits
    m = torch.sign(y) * torch.log1p(mu * y.abs().clamp(max=1)) / math.log1p(mu)
    q = torch.round((m + 1) / 2 * (levels - 1)) / (levels - 1) * 2 - 1
    y = torch.sign(q) * ((1 + mu) ** q.abs() - 1) / mu
    back = resample(y, low, int(sample_rate))
    n = x.shape[-1]
    if back.shape[-1] < n:
        back = F.pad(back, (0, n - back.shape[-1]))
    return back[..., :n]


def _colour(v: torch.Tensor) -> torch.Tensor:
    """[H, W] in [0, 1] -> [H, W, 3] uint8 with a dark-blue -> yellow ramp (magma-like)."""
    stops = torch.tensor([[0, 0, 4], [59, 15, 112], [140, 41, 129], [222, 73, 104], [254, 159, 109], [252, 253, 191]],
                         dtype=torch.float32)
    pos = v.clamp(0, 1) * (len(stops) - 1)
    i = pos.floor().long().clamp(max=len(stops) - 2)
    f = (pos - i)[..., None]
    return (stops[i] * (1 - f) + stops[i + 1] * f).round().to(torch.uint8)


def spectrogram_image(inputs: torch.Tensor, output: torch.Tensor, sample_rate: int, *, labels: tuple[str, str] = ("input", "reconstruction"),
                      n_fft: int = 1024, hop: int = 128, height: int = 200, db_range: float = 80.0):
    """A PIL image: the log-magnitude spectrograms of ``inputs`` (top) and ``output`` (bottom),
    0 Hz at the bottom of each panel, one colour scale (the input's peak down ``db_range`` dB),
    each panel labelled.

    Example:
        >>> x = torch.randn(8000) * 0.1
        >>> spectrogram_image(x, x, 16000).size[1] > 400
        True
    """
    from PIL import Image, ImageDraw

    ref, est = _pair(inputs, output)
    specs = [20 * torch.log10(torch.clamp(_mag(s[:1], n_fft, hop)[0], min=1e-6)) for s in (ref, est)]
    top = float(specs[0].max())
    panels = []
    for spec, label in zip(specs, labels):
        v = ((spec - (top - db_range)) / db_range).flip(0)  # low frequencies at the bottom
        img = Image.fromarray(_colour(v).numpy()).resize((max(200, min(1600, v.shape[1] * 2)), height), Image.BILINEAR)
        strip = Image.new("RGB", (img.width, 16), (255, 255, 255))
        ImageDraw.Draw(strip).text((4, 2), f"{label} (0-{sample_rate // 2000} kHz)", fill=(0, 0, 0))
        panels += [strip, img]
    out = Image.new("RGB", (panels[1].width, sum(p.height for p in panels)), (255, 255, 255))
    y = 0
    for p in panels:
        out.paste(p, (0, y))
        y += p.height
    return out
