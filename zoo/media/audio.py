"""How audio enters and leaves zoo: read, resample, mix to mono, write.

Conventions: a waveform is a float32 tensor ``[C, L]`` (channels first, values in [-1, 1]);
a 1-D tensor ``[L]`` is mono.

* **Reading/writing** uses ``soundfile`` (libsndfile: wav, flac, ogg, ...), the ``[audio]``
  extra. Integer PCM is scaled to [-1, 1]; ``save_audio`` clips to [-1, 1] and writes 16-bit
  PCM by default.
* **Resampling** (:func:`resample`) is band-limited windowed-sinc interpolation in polyphase
  form: the rate ratio is reduced by its gcd to ``orig/new``; for each of the ``new`` output
  phases a filter of ``2 * width + orig`` taps is built from a sinc with cutoff
  ``rolloff * min(orig, new) / 2`` (``rolloff = 0.99``) over ``lowpass_filter_width = 6``
  zero crossings, tapered by a Hann window (``cos^2``); one strided conv1d applies all phases.
  The output has ``ceil(new * L / orig)`` samples. With these defaults it reproduces
  ``torchaudio.functional.resample`` (the reference models' resampler) to ~1e-5, without
  needing torchaudio.
* **Mixing to mono** (:func:`to_mono`) averages the channels with equal weight
  (``mean`` over C), the rule of the reference codecs' ``convert_audio``; no pan law, so a
  signal present in only one of two channels comes out 6 dB lower.

Example:
    >>> import torch
    >>> x = torch.randn(2, 44100)
    >>> y = prepare_audio(x, 44100, 24000)       # mono, 24 kHz
    >>> tuple(y.shape)
    (24000,)
"""

from __future__ import annotations

import math
import numbers
from functools import lru_cache
from typing import Any, Callable
from pathlib import Path

import torch
import torch.nn.functional as F

__all__ = ["load_audio", "save_audio", "resample", "to_mono", "prepare_audio", "prepare_items", "run_grouped", "AudioError",
           "AudioTypeError"]

from zoo.errors import InputTypeError, MediaError


class AudioError(MediaError):
    """Audio that zoo cannot read or use: bad shape, rate or file."""


class AudioTypeError(AudioError, InputTypeError):
    """Samples of a type zoo does not encode (integer or complex tensors): also a ``TypeError``."""


def _soundfile():
    try:
        import soundfile  # noqa: PLC0415
    except ImportError:
        raise AudioError("reading/writing audio files needs soundfile: `pip install 'zoo[audio]'` (or `pip install soundfile`)") from None
    return soundfile


def load_audio(path: str | Path | bytes, *, sample_rate: int | None = None, mono: bool = False,
               name: str | None = None) -> tuple[torch.Tensor, int]:
    """Read a wav/flac/ogg file (or its encoded bytes, ``name`` saying where they came from in
    errors) -> ``(waveform [C, L] float32, sample_rate)``.

    With ``sample_rate`` the audio is resampled to it; with ``mono`` channels are averaged
    (the result is then ``[1, L]``).

    Example:
        >>> import tempfile, os, torch
        >>> p = os.path.join(tempfile.mkdtemp(), "a.wav")
        >>> save_audio(p, torch.zeros(2, 100), 16000)
        >>> wav, sr = load_audio(p)
        >>> tuple(wav.shape), sr
        ((2, 100), 16000)
    """
    sf = _soundfile()
    if isinstance(path, (bytes, bytearray, memoryview)):
        import io

        source, path = io.BytesIO(path), name or "audio bytes"
    else:
        path = Path(path)
        source = str(path)
        if not path.is_file():
            raise AudioError(f"audio file not found: {path}")
    try:
        data, sr = sf.read(source, dtype="float32", always_2d=True)
    except Exception as exc:  # soundfile.LibsndfileError and friends
        raise AudioError(f"could not read {path} as audio ({exc}); supported: {', '.join(sorted(sf.available_formats()))}") from exc
    wav = torch.from_numpy(data.T.copy())
    if wav.shape[-1] == 0:
        raise AudioError(f"{path} holds no samples (an empty recording)")
    if not bool(torch.isfinite(wav).all()):
        raise AudioError(f"{path} holds NaN/Inf samples; zoo reads finite audio only (re-export it as PCM)")
    if mono:
        wav = to_mono(wav)[None]
    if sample_rate is not None and sample_rate != sr:
        wav, sr = resample(wav, sr, sample_rate), sample_rate
    return wav, int(sr)


def save_audio(path: str | Path, waveform: torch.Tensor, sample_rate: int, *, subtype: str = "PCM_16") -> None:
    """Write ``[C, L]`` or ``[L]`` (values clipped to [-1, 1]) to ``path``; format from the suffix.

    Example:
        >>> import tempfile, os, torch
        >>> save_audio(os.path.join(tempfile.mkdtemp(), "b.flac"), torch.zeros(100), 24000)
    """
    sf = _soundfile()
    wav = _as_2d(waveform, "save_audio").detach().float().cpu().clamp(-1.0, 1.0)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), wav.T.numpy(), int(sample_rate), subtype=subtype)


def _as_2d(waveform: torch.Tensor, where: str) -> torch.Tensor:
    if not isinstance(waveform, torch.Tensor):
        raise AudioError(f"{where}: expected a torch.Tensor waveform, got {type(waveform).__name__}")
    if waveform.dim() == 1:
        return waveform[None]
    if waveform.dim() == 2:
        return waveform
    raise AudioError(f"{where}: expected a waveform [L] or [C, L], got shape {tuple(waveform.shape)}")


def to_mono(waveform: torch.Tensor) -> torch.Tensor:
    """``[C, L]`` -> ``[L]`` by averaging channels with equal weight; ``[L]`` passes through.

    Example:
        >>> to_mono(torch.tensor([[1.0, 0.0], [0.0, 0.0]])).tolist()
        [0.5, 0.0]
    """
    wav = _as_2d(waveform, "to_mono")
    return wav.mean(dim=0) if wav.shape[0] > 1 else wav[0]


@lru_cache(maxsize=32)
def _sinc_kernel(orig: int, new: int, width_zc: int, rolloff: float, dtype: torch.dtype, device: str) -> tuple[torch.Tensor, int]:
    """Polyphase filter bank ``[new, 1, 2 * width + orig]`` and ``width`` (taps each side)."""
    cutoff = min(orig, new) * rolloff  # in units of the gcd-reduced rate
    width = math.ceil(width_zc * orig / cutoff)
    taps = torch.arange(-width, width + orig, dtype=torch.float64) / orig  # input positions (in output-phase units)
    phases = -torch.arange(new, dtype=torch.float64)[:, None] / new
    t = (phases + taps[None, :]) * cutoff
    t = t.clamp(-width_zc, width_zc)
    window = torch.cos(t * math.pi / width_zc / 2) ** 2
    x = t * math.pi
    sinc = torch.where(x == 0, torch.ones_like(x), torch.sin(x) / torch.where(x == 0, torch.ones_like(x), x))
    kernel = sinc * window * (cutoff / orig)
    return kernel[:, None].to(dtype=dtype, device=device), width


def resample(waveform: torch.Tensor, orig_sr: int, new_sr: int, *, lowpass_filter_width: int = 6,
             rolloff: float = 0.99) -> torch.Tensor:
    """Resample ``[..., L]`` from ``orig_sr`` to ``new_sr`` Hz (Hann-windowed sinc, polyphase).

    Returns ``[..., ceil(new_sr * L / orig_sr)]`` in the input's float dtype.

    Example:
        >>> import torch
        >>> y = resample(torch.randn(1, 16000), 16000, 24000)
        >>> tuple(y.shape)
        (1, 24000)
    """
    if not isinstance(waveform, torch.Tensor) or not waveform.is_floating_point():
        raise AudioError(f"resample: expected a float tensor, got {getattr(waveform, 'dtype', type(waveform).__name__)}")
    if int(orig_sr) <= 0 or int(new_sr) <= 0:
        raise AudioError(f"resample: sample rates must be positive integers, got {orig_sr} -> {new_sr}")
    if orig_sr == new_sr:
        return waveform
    g = math.gcd(int(orig_sr), int(new_sr))
    orig, new = int(orig_sr) // g, int(new_sr) // g
    kernel, width = _sinc_kernel(orig, new, lowpass_filter_width, rolloff, waveform.dtype, str(waveform.device))
    shape = waveform.shape
    x = waveform.reshape(-1, 1, shape[-1])
    length = shape[-1]
    x = F.pad(x, (width, width + orig))
    y = F.conv1d(x, kernel, stride=orig)  # [N, new, frames]: phase-major
    y = y.transpose(1, 2).reshape(x.shape[0], -1)
    out_len = math.ceil(new * length / orig)
    return y[..., :out_len].reshape(*shape[:-1], out_len)


def prepare_audio(waveform: torch.Tensor, sample_rate: int, target_rate: int, *, mono: bool = True) -> torch.Tensor:
    """Make model input: mix to mono (``[C, L]`` or ``[L]`` -> ``[L]``) then resample.

    Mixing first is cheaper and equal to resampling each channel (both are linear).
    With ``mono=False`` returns ``[C, L]`` resampled.
    """
    wav = _as_2d(waveform, "prepare_audio")
    if not wav.is_floating_point():
        raise AudioTypeError(f"prepare_audio: expected float samples in [-1, 1], got dtype {wav.dtype}; "
                             "divide integer PCM by its full scale (e.g. 32768 for int16)")
    if wav.shape[-1] == 0:
        raise AudioError("prepare_audio: the waveform has 0 samples (empty audio)")
    if not bool(torch.isfinite(wav).all()):
        raise AudioError(f"prepare_audio: the waveform holds {int((~torch.isfinite(wav)).sum())} NaN/Inf samples; "
                         "models encode finite audio in [-1, 1] only")
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, numbers.Integral) or sample_rate < 1:
        raise AudioError(f"prepare_audio: sample_rate must be a positive int (Hz), got {sample_rate!r}")
    if mono:
        wav = to_mono(wav)
    return resample(wav.float() if wav.dtype == torch.float64 else wav, int(sample_rate), int(target_rate))


def prepare_items(waveform: "str | Path | torch.Tensor", sample_rate: int | None, target_rate: int, *,
                  model: str = "this model", mono: bool = True) -> list[torch.Tensor]:
    """What an audio tokenizer's ``encode`` accepts -> one :func:`prepare_audio` item per clip.

    ``waveform`` is a file path (its own rate is used) or a ``[L]`` / ``[C, L]`` / ``[B, C, L]``
    tensor at ``sample_rate``; each clip comes back mono ``[L]`` at ``target_rate`` (``[C, L]``,
    channels kept, with ``mono=False``). ``model`` names the caller in the error when
    ``sample_rate`` is missing. Integer samples raise :class:`AudioTypeError`; empty, NaN/Inf
    or misshapen audio :class:`AudioError`.

    Example:
        >>> [w.shape for w in prepare_items(torch.zeros(2, 1, 8), 8, 16)]
        [torch.Size([16]), torch.Size([16])]
        >>> [w.shape for w in prepare_items(torch.zeros(2, 8), 8, 16, mono=False)]
        [torch.Size([2, 16])]
    """
    from zoo.errors import InputError, InputTypeError

    if isinstance(waveform, (str, Path)):
        wav, sr = load_audio(waveform)
        return [prepare_audio(wav, sr, target_rate, mono=mono)]
    if not isinstance(waveform, torch.Tensor):
        raise InputTypeError(f"encode() takes a path, a tensor or a list of them, not {type(waveform).__name__}")
    if sample_rate is None:
        raise InputError(f"encode(tensor) needs sample_rate= ({model} runs at {target_rate} Hz; zoo resamples other rates)")
    if waveform.dim() == 3:
        return [prepare_audio(w, sample_rate, target_rate, mono=mono) for w in waveform]
    if waveform.dim() in (1, 2):
        return [prepare_audio(waveform, sample_rate, target_rate, mono=mono)]
    raise InputError(f"waveform must be [L], [C, L] or [B, C, L]; got shape {tuple(waveform.shape)}")


def run_grouped(items: "list[torch.Tensor] | tuple[torch.Tensor, ...]", fn: "Callable[[torch.Tensor], Any]") -> list:
    """``fn`` on each group of equal-shape items stacked into one batch; results in input order.

    Ragged batches run as few calls as there are distinct shapes, and an item's result never
    depends on the other items' lengths.

    Example:
        >>> run_grouped([torch.ones(2), torch.ones(3), torch.zeros(2)], lambda b: b.sum(-1))
        [tensor(2.), tensor(3.), tensor(0.)]
    """
    out: list = [None] * len(items)
    groups: dict[tuple, list[int]] = {}
    for i, item in enumerate(items):
        groups.setdefault(tuple(item.shape), []).append(i)
    for idx in groups.values():
        res = fn(torch.stack([items[i] for i in idx]))
        for j, i in enumerate(idx):
            out[i] = res[j]
    return out
