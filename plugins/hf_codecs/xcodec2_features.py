"""X-Codec 2's encoder inputs without torchaudio: what transformers' ``Xcodec2FeatureExtractor`` returns.

transformers' extractor calls ``torchaudio.compliance.kaldi.fbank``, and torchaudio does not load
with this torch; :class:`Xcodec2Features` computes the same dict with
:func:`zoo.media.kaldi.kaldi_fbank` (plain torch), for one clip or a ragged batch:

* ``input_values`` ``[B, 1, P]``: each clip with one zero sample appended, right-padded with
  zeros to the longest, rounded up to a multiple of ``hop_length``; ``padding_mask`` ``[B, P]``
  marks the clip's samples (and the appended one);
* ``input_features`` ``[B, T, 160]``: per clip, its padded audio up to the next hop multiple with
  ``hop_length // 2`` zeros each side, times 32768, through Kaldi's 80-bin log-mel filterbank
  (25 ms povey frames every 10 ms, pre-emphasis 0.97, DC removed, no dither, snipped edges,
  20 Hz to Nyquist), normalised per mel bin over the clip's frames (mean 0, unbiased variance
  ``+ 1e-7``), padded with ``padding_value`` to an even frame count and pairs of frames stacked;
  ``input_features_mask`` ``[B, T]`` marks the clip's frame pairs.

With ``hop_length`` 320 (every X-Codec 2 release) a clip of ``P`` padded samples gives
``P / 320`` semantic frames, one per acoustic frame. Equal to transformers' extractor (recorded
with torchaudio 2.11) to ~1e-4 on the normalised features (``tests/plugins/hf_codecs``).

Example:
    >>> import torch
    >>> out = Xcodec2Features()([torch.zeros(3000), torch.zeros(1000)])
    >>> tuple(out["input_values"].shape), tuple(out["input_features"].shape)
    ((2, 1, 3200), (2, 10, 160))
    >>> out["input_features_mask"].sum(-1).tolist()
    [10, 4]
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Sequence

import torch
import torch.nn.functional as F

from zoo.errors import ConfigError, InputError
from zoo.media.kaldi import kaldi_fbank

__all__ = ["Xcodec2Features"]

NUM_MEL_BINS = 80
STRIDE = 2
FRAME_LENGTH = 400  # samples (25 ms at 16 kHz)
FRAME_SHIFT = 160  # samples (10 ms at 16 kHz)


class Xcodec2Features:
    """A drop-in for ``transformers.Xcodec2FeatureExtractor`` (same options, same output keys)."""

    def __init__(self, feature_size: int = NUM_MEL_BINS, sampling_rate: int = 16000, padding_value: float = 1.0,
                 hop_length: int = 320, **_: Any):
        self.feature_size = int(feature_size)
        self.sampling_rate = int(sampling_rate)
        self.padding_value = float(padding_value)
        self.hop_length = int(hop_length)
        if self.hop_length != STRIDE * FRAME_SHIFT:
            raise ConfigError(f"X-Codec 2's semantic features come one per {STRIDE * FRAME_SHIFT} samples, so the codec's hop "
                              f"must be {STRIDE * FRAME_SHIFT} (every release's); got hop_length={self.hop_length}")

    def to_dict(self) -> dict[str, Any]:
        """``preprocessor_config.json``'s content (transformers' keys)."""
        return {"feature_extractor_type": "Xcodec2FeatureExtractor", "feature_size": self.feature_size,
                "sampling_rate": self.sampling_rate, "padding_value": self.padding_value, "hop_length": self.hop_length}

    def save_pretrained(self, folder: str | Path) -> None:
        """Write ``preprocessor_config.json`` into ``folder`` (what transformers' extractor writes)."""
        path = Path(folder)
        path.mkdir(parents=True, exist_ok=True)
        (path / "preprocessor_config.json").write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    def fbank(self, waveform: torch.Tensor) -> torch.Tensor:
        """Normalised log-mel frames ``[frames, 80]`` of one padded clip ``[L]`` in [-1, 1]."""
        sr = self.sampling_rate
        feats = kaldi_fbank(waveform * 32768, num_mel_bins=NUM_MEL_BINS, frame_length=FRAME_LENGTH / sr * 1000,
                            frame_shift=FRAME_SHIFT / sr * 1000, sample_frequency=sr, window_type="povey",
                            preemphasis_coefficient=0.97, remove_dc_offset=True, use_log_fbank=True, use_energy=False,
                            dither=0.0, snip_edges=True, low_freq=20, high_freq=sr // 2)
        return (feats - feats.mean(0)) / torch.sqrt(feats.var(0, unbiased=True) + 1e-7)

    def __call__(self, audio: Sequence[Any] | Any, sampling_rate: int | None = None, **_: Any) -> dict[str, torch.Tensor]:
        """Clips (``[L]`` / ``[1, L]`` tensors or arrays, or a list of them) -> the model's encode inputs."""
        if sampling_rate is not None and int(sampling_rate) != self.sampling_rate:
            raise InputError(f"X-Codec 2 features are computed at {self.sampling_rate} Hz, got audio at {sampling_rate} Hz")
        clips = audio if isinstance(audio, (list, tuple)) else [audio]
        clips = [torch.as_tensor(c, dtype=torch.float32).reshape(-1) for c in clips]
        hop = self.hop_length
        lengths = [c.shape[-1] + 1 for c in clips]  # one zero sample appended, as transformers does
        total = math.ceil(max(lengths) / hop) * hop
        values = torch.zeros(len(clips), 1, total)
        padding_mask = torch.zeros(len(clips), total, dtype=torch.long)
        for i, (c, n) in enumerate(zip(clips, lengths)):
            values[i, 0, : n - 1] = c
            padding_mask[i, :n] = 1
        feats = []
        for i, n in enumerate(lengths):
            valid = min(math.ceil(n / hop) * hop, total)
            feats.append(self.fbank(F.pad(values[i, 0, :valid], (hop // 2, hop // 2))))
        frames = math.ceil(max(f.shape[0] for f in feats) / STRIDE) * STRIDE
        features = torch.full((len(feats), frames, NUM_MEL_BINS), self.padding_value)
        mask = torch.zeros(len(feats), frames, dtype=torch.long)
        for i, f in enumerate(feats):
            features[i, : f.shape[0]] = f
            mask[i, : f.shape[0]] = 1
        return {"input_values": values, "padding_mask": padding_mask,
                "input_features": features.reshape(len(feats), frames // STRIDE, NUM_MEL_BINS * STRIDE),
                "input_features_mask": mask.reshape(len(feats), frames // STRIDE, STRIDE).min(-1).values}
