"""zoo's tokenizer interface over a transformers codec (EnCodec, DAC, Mimi, X-Codec, X-Codec 2).

* ``encode(waveform, sample_rate, codebooks=None) -> Tokens``: ``ids`` ``[B, Q, T]`` (residual
  levels, coarse first; X-Codec 2 has one level), ``lengths`` per item, ``meta`` with
  ``sample_rate``, ``frame_rate`` and each item's ``num_samples`` at the codec's rate.
  ``waveform`` is a path, ``[L]``, ``[C, L]``, ``[B, C, L]`` or a list of those (any lengths).
  Audio is resampled to the codec's rate (``zoo.media.audio``) and mixed to mono by averaging
  channels (EnCodec 48 kHz takes stereo: mono input is duplicated to both channels).
  ``codebooks=q`` computes the first ``q`` levels only (the bitrate knob; ``Tokens.codebooks(q)``
  drops levels after the fact, and decode of fewer levels works).
* ``decode(tokens) -> [B, C, L]`` (a list when items differ in length) at ``sample_rate``.
* ``reconstruct(waveform, sample_rate)`` = decode(encode(x)) trimmed to each item's length.

Each item runs exactly what a direct transformers call on it runs: the family's feature
extractor (padding to the hop, or EnCodec's 1 s chunks), then ``model.encode`` / ``model.decode``.
X-Codec 2's extractor (Kaldi log-mel features: torchaudio in transformers) is zoo's plain-torch
equivalent, :class:`~zoo_plugins.hf_codecs.xcodec2_features.Xcodec2Features`. Items of equal length share one batched call; items of different lengths are run apart, so an
item's ids never depend on the rest of the batch (transformers' padded batches let the padding
leak into the last frames).

Long audio: items longer than ``chunk_seconds`` (default 30 s) run in windows of that length with
``context_seconds`` of margin on each side; a window keeps only its own frames (encode) or
samples (decode), so memory is bounded by the window. For DAC, which is convolutional only, the
margin is computed from the encoder's and decoder's receptive fields and windowed results equal
one full pass up to float rounding. The others are not local (EnCodec 24 kHz: an LSTM; Mimi:
causal transformer with a 250-frame context; X-Codec: a HuBERT/WavLM semantic encoder with full
attention; X-Codec 2: a w2v-BERT encoder and a transformer), so their windows (default margin
5 s) are an approximation near window edges; ``chunk_seconds=0`` runs one pass at any length.
EnCodec 48 kHz chunks by itself (1 s windows, overlap-add) and ignores ``chunk_seconds``.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from zoo.audio_codec import AudioCodecMixin
from zoo.errors import InputError, TokenError
from zoo.interfaces import Tokens, as_tokens
from zoo.model import ZooModel

from .specs import CodecSpec, transformers_module

__all__ = ["HFCodec", "receptive_field"]

DEFAULT_CONTEXT_SECONDS = 5.0


def receptive_field(module: nn.Module, *, transposed_upsamples: bool = False) -> float:
    """Receptive field of the Conv1d / ConvTranspose1d stack in ``module`` (registration order =
    forward order), in input steps: input samples for an encoder, input frames for a decoder.

    Example:
        >>> net = nn.Sequential(nn.Conv1d(1, 1, 7, padding=3), nn.Conv1d(1, 1, 4, stride=2), nn.Conv1d(1, 1, 3, dilation=2))
        >>> receptive_field(net)
        18.0
    """
    rf, scale = 1.0, 1.0  # scale: input steps per step at the current level
    for m in module.modules():
        if isinstance(m, nn.ConvTranspose1d):
            s = m.stride[0]
            rf += math.ceil(m.kernel_size[0] / s) * scale
            scale /= s
        elif isinstance(m, nn.Conv1d):
            rf += (m.kernel_size[0] - 1) * m.dilation[0] * scale
            scale *= m.stride[0]
    return rf


class HFCodec(AudioCodecMixin, ZooModel, nn.Module):
    """A transformers codec module (``self.codec``) with zoo's encode/decode."""

    def __init__(self, spec: CodecSpec, codec: nn.Module, *, preprocessor: dict[str, Any] | None = None,
                 chunk_seconds: float | None = 30.0, context_seconds: float | None = None):
        super().__init__()
        self.spec = spec
        self.codec = codec
        self.preprocessor = dict(preprocessor or {})
        self.chunk_seconds = chunk_seconds
        self.context_seconds = context_seconds
        self._fe = None

    # ------------------------------------------------------------------ facts
    @property
    def hf_config(self) -> Any:
        return self.codec.config

    @property
    def sample_rate(self) -> int:
        return self.spec.sample_rate(self.hf_config)

    @property
    def channels(self) -> int:
        return self.spec.channels(self.hf_config)

    @property
    def hop(self) -> int:
        return self.spec.hop(self.hf_config)

    @property
    def codebook_size(self) -> int:
        return self.spec.codebook_size(self.hf_config)

    @property
    def num_codebooks(self) -> int:
        return self.spec.num_codebooks(self.hf_config)

    def describe_facts(self) -> dict[str, Any]:
        return {"codebooks": self.num_codebooks}

    @property
    def default_name(self) -> str:  # the name before zoo.load sets a card
        return self.spec.family

    def _self_chunked(self) -> bool:
        return self.spec.family == "encodec" and getattr(self.hf_config, "chunk_length", None) is not None

    # ------------------------------------------------------------------ feature extractor
    def feature_extractor(self):
        """The family's feature extractor, from ``preprocessor_config.json``'s values (or its
        defaults with the codec's rate and hop): transformers' class, except X-Codec 2's, which
        zoo computes itself (:class:`~zoo_plugins.hf_codecs.xcodec2_features.Xcodec2Features`:
        transformers' needs torchaudio's kaldi fbank, which does not load with this torch)."""
        if self._fe is None:
            kwargs = {k: v for k, v in self.preprocessor.items() if k not in ("feature_extractor_type", "processor_class")}
            kwargs.setdefault("sampling_rate", self.sample_rate)
            if self.spec.family in ("dac", "xcodec", "xcodec2"):
                kwargs.setdefault("hop_length", self.hop)
            if self.spec.family == "encodec":
                kwargs.setdefault("feature_size", self.channels)
                kwargs.setdefault("chunk_length_s", getattr(self.hf_config, "chunk_length_s", None))
                kwargs.setdefault("overlap", getattr(self.hf_config, "overlap", None))
            if self.spec.family == "xcodec2":
                from .xcodec2_features import Xcodec2Features  # noqa: PLC0415

                self._fe = Xcodec2Features(**kwargs)
            else:
                self._fe = getattr(transformers_module(), self.spec.feature_extractor)(**kwargs)
        return self._fe

    def features(self, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        """What the feature extractor makes of ``batch`` ``[B, C, L]`` (equal lengths, codec rate)."""
        fe = self.feature_extractor()
        arrays = [(x[0] if x.shape[0] == 1 else x).float().cpu().numpy() for x in batch]
        out = fe(arrays, sampling_rate=self.sample_rate, return_tensors="pt")
        device, dtype = self._placement()
        return {k: (v.to(device, dtype) if v.is_floating_point() else v.to(device)) for k, v in out.items()}

    def _placement(self) -> tuple[torch.device, torch.dtype]:
        p = next(self.codec.parameters())
        return p.device, p.dtype

    # ------------------------------------------------------------------ tensor-level pipeline
    @torch.inference_mode()
    def encode_codes(self, batch: torch.Tensor, codebooks: int | None = None) -> tuple[torch.Tensor, dict[str, Any]]:
        """Codes ``[B, q, T]`` of ``batch`` ``[B, C, L]`` at the codec's rate (one direct call)."""
        q = self._levels(codebooks)
        codes, extra = self.spec.encode(self.codec, self.features(batch), q)
        return codes[:, :q].long(), extra

    @torch.inference_mode()
    def decode_codes(self, codes: torch.Tensor, extra: dict[str, Any] | None = None) -> torch.Tensor:
        """Waveform ``[B, C, L]`` of codes ``[B, q, T]`` (one direct call)."""
        return self.spec.decode(self.codec, codes, extra or {}).float()

    def _levels(self, codebooks: int | None) -> int:
        if codebooks is None:
            return self.num_codebooks
        if isinstance(codebooks, bool) or not isinstance(codebooks, int) or not 1 <= codebooks <= self.num_codebooks:
            raise InputError(f"codebooks must be an int in [1, {self.num_codebooks}] for {self.name}, got {codebooks!r}")
        return codebooks

    def _margins(self) -> tuple[int, int]:
        """(encode margin in samples, decode margin in frames) for windows of long audio."""
        hop = self.hop
        if self.spec.local:
            enc = receptive_field(self.codec.encoder)
            dec = receptive_field(self.codec.decoder)
            frames_enc = math.ceil(enc / hop) + 1
            return frames_enc * hop, math.ceil(dec) + 1
        seconds = DEFAULT_CONTEXT_SECONDS if self.context_seconds is None else float(self.context_seconds)
        frames = max(1, math.ceil(seconds * self.frame_rate))
        return frames * hop, frames

    def _window_frames(self, chunk_seconds: float | None) -> int | None:
        seconds = self.chunk_seconds if chunk_seconds is None else chunk_seconds
        if not seconds or seconds <= 0 or self._self_chunked():
            return None
        return max(1, int(seconds * self.frame_rate))

    def _encode_item_windows(self, wav: torch.Tensor, q: int, per: int) -> torch.Tensor:
        """Codes ``[1, q, T]`` of one long item ``[C, L]``, window by window."""
        hop, length = self.hop, wav.shape[-1]
        margin, _ = self._margins()
        total = self.spec.num_frames(self.hf_config, length)
        pieces = []
        for f0 in range(0, total, per):
            f1 = min(total, f0 + per)
            a, b = max(0, f0 * hop - margin), min(length, f1 * hop + margin)
            codes, _ = self.encode_codes(wav[None, :, a:b], q)
            off = f0 - a // hop
            pieces.append(codes[..., off : off + (f1 - f0)])
        return torch.cat(pieces, dim=-1)

    def _decode_item_windows(self, codes: torch.Tensor, per: int) -> torch.Tensor:
        """Waveform ``[1, C, T * hop]`` of one long item's codes ``[1, q, T]``, window by window."""
        hop, t = self.hop, codes.shape[-1]
        _, margin = self._margins()
        pieces = []
        for f0 in range(0, t, per):
            f1 = min(t, f0 + per)
            a, b = max(0, f0 - margin), min(t, f1 + margin)
            wav = self.decode_codes(codes[..., a:b])
            pieces.append(wav[..., (f0 - a) * hop : (f1 - a) * hop])
        return torch.cat(pieces, dim=-1)

    # ------------------------------------------------------------------ media-level interface
    mono_input = False  # _prepare keeps channels; _channels fits them to the codec's

    def _prepare(self, waveform: Any, sample_rate: int | None) -> list[torch.Tensor]:
        """Anything ``encode`` accepts -> list of ``[C, L]`` float32 tensors at the codec's rate and channels."""
        return [self._channels(w.float()) for w in super()._prepare(waveform, sample_rate)]

    def _channels(self, wav: torch.Tensor) -> torch.Tensor:
        if self.channels == 1:
            return wav.mean(0, keepdim=True) if wav.shape[0] != 1 else wav
        if wav.shape[0] == self.channels:
            return wav
        if wav.shape[0] == 1:
            return wav.expand(self.channels, -1)
        raise InputError(f"{self.name} takes {self.channels} channels (or mono); got {wav.shape[0]}")

    def encode(self, waveform: Any, sample_rate: int | None = None, *, codebooks: int | None = None,
               chunk_seconds: float | None = None) -> Tokens:
        """Audio -> :class:`~zoo.interfaces.Tokens` with ``ids`` ``[B, Q, T_max]`` (see the module doc)."""
        items = ([w for x in waveform for w in self._prepare(x, sample_rate)] if isinstance(waveform, (list, tuple))
                 else self._prepare(waveform, sample_rate))
        if not items:
            raise InputError("no audio given (an empty list)")
        q = self._levels(codebooks)
        per = self._window_frames(chunk_seconds)
        device, _ = self._placement()

        def run(batch: torch.Tensor) -> list[tuple[torch.Tensor, dict[str, Any]]]:
            if per is not None and batch.shape[-1] > per * self.hop:
                return [(self._encode_item_windows(x, q, per)[0], {}) for x in batch]
            codes, extra = self.encode_codes(batch, q)
            return [(codes[b], _item_extra(extra, b)) for b in range(len(batch))]

        results = self._grouped([w.to(device) for w in items], run)
        lengths = torch.tensor([c.shape[-1] for c, _ in results])
        ids = torch.zeros(len(results), q, int(lengths.max()), dtype=torch.long)
        for b, (c, _) in enumerate(results):
            ids[b, :, : c.shape[-1]] = c.cpu()
        meta: dict[str, Any] = {"sample_rate": self.sample_rate, "frame_rate": self.frame_rate,
                                "num_samples": [int(w.shape[-1]) for w in items]}
        if self._self_chunked():
            meta["encodec_chunks"] = [e for _, e in results]
        return Tokens(ids=ids, codebook_size=self.codebook_size, tokenizer=self.name, lengths=lengths, meta=meta)

    def decode(self, tokens: Any, *, chunk_seconds: float | None = None,
               generator: torch.Generator | None = None) -> torch.Tensor | list[torch.Tensor]:
        """Tokens (or ids ``[B, Q, T]``) -> audio ``[B, C, L]`` at ``sample_rate`` (a list of
        ``[C, L_b]`` when items differ in length). ``generator`` is accepted for interface
        uniformity and unused: decoding is deterministic."""
        tok = as_tokens(tokens, self.codebook_size, self.name)
        ids = tok.ids if tok.ids.dim() == 3 else tok.ids[:, None]
        if ids.shape[1] > self.num_codebooks:
            raise TokenError(f"{self.name} has {self.num_codebooks} codebook levels; these ids have {ids.shape[1]}")
        device, _ = self._placement()
        per = self._window_frames(chunk_seconds)
        chunks = tok.meta.get("encodec_chunks") if self._self_chunked() else None
        if self._self_chunked() and chunks is None:
            raise TokenError(f"{self.name} decodes Tokens from its own encode() (they carry each 1 s chunk's scale)")
        wavs: list[torch.Tensor] = []
        items = [ids[b, :, : int(n)].to(device) for b, n in enumerate(tok.lengths)]
        if chunks is not None:
            for b, item in enumerate(items):
                extra = chunks[b]
                per_chunk = math.ceil(self.hf_config.chunk_length / self.hop)
                if item.shape[-1] != int(extra["chunks"]) * per_chunk:
                    raise TokenError(f"{self.name} decodes whole 1 s chunks; item {b} was truncated to {item.shape[-1]} frames")
                wavs.append(self.decode_codes(item[None], extra)[0])
        else:
            def run(batch: torch.Tensor) -> list[torch.Tensor]:
                if per is not None and batch.shape[-1] > per:
                    return [self._decode_item_windows(x[None], per)[0] for x in batch]
                return list(self.decode_codes(batch))

            wavs = self._grouped(items, run)
        if len({w.shape[-1] for w in wavs}) == 1:
            return torch.stack(wavs)
        return wavs


def _item_extra(extra: dict[str, Any], b: int) -> dict[str, Any]:
    """Item ``b``'s share of a batch's decode extras (EnCodec 48 kHz: chunk count, scales, pad)."""
    if not extra:
        return {}
    scales = extra.get("scales")
    return {"chunks": extra["chunks"], "last_frame_pad_length": extra["last_frame_pad_length"],
            "scales": None if scales is None else [s[b : b + 1] for s in scales]}
