"""The Language-Codec model: 24 kHz mono audio <-> 75 frames/s of 8 masked-channel RVQ codes.

Public interface (what ``zoo reconstruct in.wav --model languagecodec --weights X.ckpt`` uses):

* ``encode(waveform, sample_rate, codebooks=None) -> Tokens``: ``ids`` ``[B, Q, T]`` (Q = 8, or
  ``codebooks``), ``lengths``, ``meta`` with ``sample_rate``, ``frame_rate`` and each item's
  ``num_samples`` at 24 kHz. ``waveform`` is a path, ``[L]``, ``[C, L]``, ``[B, C, L]`` or a
  list of those; audio is resampled to 24 kHz and mixed to mono (``zoo.media.audio``, the
  reference's ``convert_audio`` rule). This is the reference's inference path
  (``encode_infer``: ``quantizer.infer`` with all 8 levels), not its training one.
* ``decode(tokens) -> [B, T * 320]`` (a list when items differ in length); fewer levels decode
  (the sum of their codewords, as the reference's ``codes_to_features``).
* ``reconstruct(waveform, sample_rate)`` = decode(encode(x)) trimmed to each item's length.

Long audio, bounded memory, no seams: encoding runs the SEANet convolutions in tiles of at most
2 s with margins wider than their receptive field, the LSTM over ``chunk_seconds`` chunks
carrying its state, then the last conv and the quantizer. The decoder has no global operation
(the Vocos backbone here has no attention or GroupNorm; ConvNeXt blocks see ``3 + 3 *
num_layers`` frames each side), so it runs chunk by chunk with that context and overlap-adds
the ISTFT frames into one buffer. Both paths equal one full pass up to float rounding.
Items of a batch run at their own lengths (equal lengths share a pass), so an item's result
does not depend on the batch.
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
from zoo.nn.rvq import MaskedChannelRVQ
from zoo.nn.seanet import SEANetEncoder, receptive_field
from zoo.nn.vocos import AdaLayerNorm, ConvNeXtBlock, ISTFTHead, overlap_add, window_envelope

from .config import LanguageCodecConfig

__all__ = ["LanguageCodec", "VocosBackbone"]

FRONT_TILE_SECONDS = 2.0


class VocosBackbone(nn.Module):
    """Language-Codec's Vocos backbone: embed conv k7 -> AdaLayerNorm -> ConvNeXt blocks -> LayerNorm
    (``backbone.*`` keys of the release; no pos_net, unlike WavTokenizer's). Fully local."""

    def __init__(self, input_channels: int = 128, dim: int = 384, intermediate_dim: int = 1152, num_layers: int = 12,
                 adanorm_num_embeddings: int = 4):
        super().__init__()
        self.embed = nn.Conv1d(input_channels, dim, kernel_size=7, padding=3)
        self.norm = AdaLayerNorm(adanorm_num_embeddings, dim)
        self.convnext = nn.ModuleList([ConvNeXtBlock(dim, intermediate_dim, adanorm_num_embeddings) for _ in range(num_layers)])
        self.final_layer_norm = nn.LayerNorm(dim, eps=1e-6)
        self.bandwidth_id = 0

    @property
    def context(self) -> int:
        """Frames of context each side for exact chunked results (embed + ConvNeXt kernels)."""
        return 3 + 3 * len(self.convnext)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """``[B, C_in, T]`` -> ``[B, T, dim]``."""
        x = self.norm(self.embed(features).transpose(1, 2), self.bandwidth_id)
        for block in self.convnext:
            x = block(x, self.bandwidth_id)
        return self.final_layer_norm(x)


class LanguageCodec(AudioCodecMixin, ZooModel, nn.Module):
    """Language-Codec tokenizer/detokenizer built from a :class:`LanguageCodecConfig`.

    Example:
        >>> import torch
        >>> cfg = LanguageCodecConfig(n_filters=4, dimension=12, num_quantizers=4, codebook_size=16, backbone_dim=32,
        ...                           intermediate_dim=48, num_layers=2)
        >>> m = LanguageCodec(cfg).eval()
        >>> tok = m.encode(torch.zeros(1, 24000), 24000)
        >>> tuple(tok.ids.shape), tuple(m.decode(tok).shape)
        ((1, 4, 75), (1, 24000))
    """

    default_name = "languagecodec"
    display_name = "Language-Codec"

    def __init__(self, config: LanguageCodecConfig | None = None):
        super().__init__()
        cfg = (config if config is not None else LanguageCodecConfig()).validate()
        self.config = cfg
        self.encoder = SEANetEncoder(cfg.ratios, cfg.n_filters, cfg.dimension, cfg.lstm_layers)
        self.quantizer = MaskedChannelRVQ(cfg.dimension, cfg.codebook_size, cfg.num_quantizers)
        self.backbone = VocosBackbone(cfg.dimension, cfg.backbone_dim, cfg.intermediate_dim, cfg.num_layers,
                                      cfg.adanorm_num_embeddings)
        self.backbone.bandwidth_id = cfg.bandwidth_id
        self.head = ISTFTHead(cfg.backbone_dim, cfg.n_fft, cfg.hop_length)

    # ------------------------------------------------------------------ facts
    @property
    def sample_rate(self) -> int:
        return int(self.config.sample_rate)

    @property
    def hop(self) -> int:
        return self.encoder.hop

    @property
    def codebook_size(self) -> int:
        return self.quantizer.codebook_size

    @property
    def num_codebooks(self) -> int:
        return self.quantizer.num_quantizers

    # ------------------------------------------------------------------ tensor-level pipeline
    @torch.inference_mode()
    def latents(self, wav: torch.Tensor, *, chunk_seconds: float | None = None) -> torch.Tensor:
        """Encoder latents ``[B, D, ceil(L / hop)]`` of 24 kHz mono audio ``[B, L]``."""
        if wav.dim() != 2:
            raise InputError(f"latents() expects [B, L] mono 24 kHz audio, got shape {tuple(wav.shape)}")
        dtype = self.quantizer.layers[0]._codebook.embed.dtype
        wav = wav.to(dtype)[:, None]
        length, hop = wav.shape[-1], self.hop
        if length == 0:
            raise InputError("cannot encode empty audio (0 samples)")
        frames = math.ceil(length / hop)
        per = self._chunk_frames(chunk_seconds)
        tile = min(per, max(1, int(FRONT_TILE_SECONDS * self.frame_rate)))
        if frames <= tile:
            front = self.encoder.front(wav)
        else:
            ctx = math.ceil(receptive_field(self.encoder) / hop) + 1
            pieces = []
            for f0 in range(0, frames, tile):
                f1 = min(frames, f0 + tile)
                a, b = max(0, f0 - ctx) * hop, min(length, (f1 + ctx) * hop)
                out = self.encoder.front(wav[..., a:b])
                pieces.append(out[..., f0 - a // hop : f1 - a // hop])
            front = torch.cat(pieces, dim=-1)
        state, outs = None, []
        for f0 in range(0, frames, per):
            y, state = self.encoder.lstm(front[..., f0 : f0 + per], state)
            outs.append(y)
        return self.encoder.back(outs[0] if len(outs) == 1 else torch.cat(outs, dim=-1))

    @torch.inference_mode()
    def encode_codes(self, wav: torch.Tensor, codebooks: int | None = None, **kw: Any) -> torch.Tensor:
        """Codes ``[B, Q, T]`` of 24 kHz mono audio ``[B, L]`` (the reference's ``encode_infer``)."""
        return self.quantizer.encode(self.latents(wav, **kw), n_q=self._levels(codebooks))

    @torch.inference_mode()
    def features(self, codes: torch.Tensor) -> torch.Tensor:
        """The sum of the given levels' codewords ``[B, D, T]`` (the reference's ``codes_to_features``)."""
        return self.quantizer.decode(codes)

    @torch.inference_mode()
    def decode_features(self, features: torch.Tensor, *, chunk_seconds: float | None = None) -> torch.Tensor:
        """Waveform ``[B, T * hop]`` from features ``[B, D, T]``."""
        t = features.shape[-1]
        per = self._chunk_frames(chunk_seconds)
        if t <= per:
            return self.head(self.backbone(features))
        ctx, hop, n_fft = self.backbone.context, self.head.hop_length, self.head.n_fft
        y = features.new_zeros(features.shape[0], (t - 1) * hop + n_fft, dtype=torch.float32)
        for f0 in range(0, t, per):
            f1 = min(t, f0 + per)
            a, b = max(0, f0 - ctx), min(t, f1 + ctx)
            h = self.backbone(features[..., a:b])[:, f0 - a : f1 - a]
            seg = overlap_add(self.head.frames(h), hop)
            y[:, f0 * hop : f0 * hop + seg.shape[-1]] += seg
        pad = (n_fft - hop) // 2
        env = window_envelope(self.head.window_for(y), hop, t)
        return y[:, pad:-pad] / env[pad:-pad]

    @torch.inference_mode()
    def decode_codes(self, codes: torch.Tensor, **kw: Any) -> torch.Tensor:
        """Waveform ``[B, T * hop]`` from codes ``[B, q, T]``."""
        return self.decode_features(self.features(codes), **kw)

    def _levels(self, codebooks: int | None) -> int:
        if codebooks is None:
            return self.num_codebooks
        if isinstance(codebooks, bool) or not isinstance(codebooks, int) or not 1 <= codebooks <= self.num_codebooks:
            raise InputError(f"codebooks must be an int in [1, {self.num_codebooks}], got {codebooks!r}")
        return codebooks

    # ------------------------------------------------------------------ media-level interface
    def encode(self, waveform: Any, sample_rate: int | None = None, *, codebooks: int | None = None,
               chunk_seconds: float | None = None) -> Tokens:
        """Audio -> :class:`~zoo.interfaces.Tokens` with ``ids`` ``[B, Q, T_max]`` and per-item ``lengths``."""
        items = ([w for x in waveform for w in self._prepare(x, sample_rate)] if isinstance(waveform, (list, tuple))
                 else self._prepare(waveform, sample_rate))
        if not items:
            raise InputError("no audio given (an empty list)")
        q = self._levels(codebooks)
        device = self.quantizer.layers[0]._codebook.embed.device
        codes = self._grouped([w.to(device) for w in items], lambda x: self.encode_codes(x, q, chunk_seconds=chunk_seconds))
        lengths = torch.tensor([c.shape[-1] for c in codes])
        ids = torch.zeros(len(codes), q, int(lengths.max()), dtype=torch.long)
        for b, c in enumerate(codes):
            ids[b, :, : c.shape[-1]] = c.cpu()
        return Tokens(ids=ids, codebook_size=self.codebook_size, tokenizer=self.name, lengths=lengths,
                      meta={"sample_rate": self.sample_rate, "frame_rate": self.frame_rate,
                            "num_samples": [int(w.shape[-1]) for w in items]})

    def decode(self, tokens: Any, *, chunk_seconds: float | None = None,
               generator: torch.Generator | None = None) -> torch.Tensor | list[torch.Tensor]:
        """Tokens (or ids ``[B, Q, T]``) -> 24 kHz audio ``[B, T * hop]`` (a list when lengths differ).
        ``generator`` is accepted for interface uniformity and unused: decoding is deterministic."""
        tok = as_tokens(tokens, self.codebook_size, self.name)
        ids = tok.ids if tok.ids.dim() == 3 else tok.ids[:, None]
        if ids.shape[1] > self.num_codebooks:
            raise TokenError(f"Language-Codec has {self.num_codebooks} codebook levels; these ids have {ids.shape[1]}")
        device = self.quantizer.layers[0]._codebook.embed.device
        items = [ids[b, :, : int(n)].to(device) for b, n in enumerate(tok.lengths)]
        wavs = self._grouped(items, lambda x: self.decode_codes(x, chunk_seconds=chunk_seconds))
        if len({w.shape[-1] for w in wavs}) == 1:
            return torch.stack(wavs)
        return wavs
