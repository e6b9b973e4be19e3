"""The SpeechTokenizer model (also DM-Codec): 16 kHz mono audio <-> ``Tokens`` with ids
``[B, n_q, T]`` (level 0 semantic), ``T = ceil(L / 320)`` (50 Hz).

* ``encode(waveform, sample_rate, n_q=None) -> Tokens``: a path, ``[L]``, ``[C, L]``,
  ``[B, C, L]`` or a list of those (mixed to mono and resampled by :mod:`zoo.media.audio`); each
  item is encoded at its own length (the reference pads a batch, and padding reaches real frames
  through the bidirectional LSTM).
* ``decode(tokens) -> [B, 1, T * 320]`` (or a list of ``[1, L_b]`` for items of different
  lengths). ``tokens.codebooks(q)`` decodes the first ``q`` levels (the reference's
  ``decode(codes[:q])``): ``q = 1`` is the semantic content, more levels add acoustic detail.
* ``semantic_features(waveform, sample_rate)``: the reference's ``forward`` feature, level 0
  quantized and projected by ``transform`` (what was distilled towards HuBERT), ``[B, T, 768]``.

Long audio: the encoder's convolutions run in tiles of ``chunk_seconds`` with a margin wider
than their receptive field (exact). The encoder's **bidirectional** LSTM is not local (frame 0's
backward state depends on the last frame), so it runs layer by layer in chunks
(:func:`zoo.nn.seanet.lstm_in_chunks`): the forward direction over the chunks in order, the
backward one over the chunks in reverse order, each carrying its state, then the last conv and
the quantizer chunk by chunk. The decoder's unidirectional LSTM runs over chunks carrying its
state, and its upsampling convolutions run per chunk with context (exact). Both therefore equal
one pass up to float rounding (at 60 s the chunked encoder's latents were bit-equal to one pass).
Memory: a bidirectional layer must keep its outputs for the whole sequence (0.4 MB per second of
audio per layer, plus the 0.2 MB/s LSTM input), but torch's per-call gate buffers (1.6 MB/s per
layer) and the conv activations now exist for one chunk only. Peak extra memory of ``encode``
(``hubert_avg``, one thread, forked child): 10 s 0.49 GiB, 60 s 0.47 GiB (one pass: 1.05 GiB),
600 s 1.04 GiB (before: 2.33 GiB): it grows ~1.1 MiB per second of audio (was ~3.3). Decoding
is bounded (600 s: 0.9 GiB peak). ``python benchmarks/speechtokenizer.py --long 600`` measures
these (``encode (chunked)`` / ``(one pass)`` rows).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from zoo.audio_codec import AudioCodecMixin
from zoo.errors import InputError
from zoo.interfaces import Tokens, as_tokens
from zoo.model import ZooModel
from zoo.nn.rvq import ResidualVQ
from zoo.nn.seanet import SEANetDecoder, SEANetEncoder, receptive_field

from .config import SpeechTokenizerConfig

__all__ = ["SpeechTokenizer"]

#: Frames of context each side of a decoder chunk (the upsampling stack reaches < 4 frames).
DECODER_CONTEXT_FRAMES = 8


class SpeechTokenizer(AudioCodecMixin, ZooModel, nn.Module):
    """SpeechTokenizer / DM-Codec built from a :class:`SpeechTokenizerConfig`.

    Example:
        >>> import torch
        >>> cfg = SpeechTokenizerConfig(n_filters=4, dimension=16, semantic_dimension=8, codebook_size=32, n_q=3)
        >>> m = SpeechTokenizer(cfg).eval()
        >>> tok = m.encode(torch.zeros(1, 1, 1000), 16000)
        >>> tuple(tok.ids.shape), tuple(m.decode(tok.codebooks(1)).shape)
        ((1, 3, 4), (1, 1, 1280))
    """

    default_name = "speechtokenizer"
    display_name = "this model"
    codebooks_option = "n_q"  # reconstruct(codebooks=q) encodes the first q levels

    def __init__(self, config: SpeechTokenizerConfig | None = None):
        super().__init__()
        cfg = (config if config is not None else SpeechTokenizerConfig()).validate()
        self.config = cfg
        common = {"n_residual_layers": cfg.n_residual_layers, "dilation_base": cfg.dilation_base, "act": cfg.activation}
        self.encoder = SEANetEncoder(cfg.strides, cfg.n_filters, cfg.dimension, cfg.lstm_layers,
                                     residual_kernel_size=cfg.residual_kernel_size, bidirectional=cfg.bidirectional, **common)
        self.transform = (nn.Linear(cfg.dimension, cfg.semantic_dimension) if cfg.dimension != cfg.semantic_dimension
                          else nn.Identity())
        self.quantizer = ResidualVQ(cfg.dimension, cfg.codebook_size, cfg.n_q)
        self.decoder = SEANetDecoder(cfg.strides, cfg.n_filters, cfg.dimension, cfg.lstm_layers,
                                     residual_kernel_size=cfg.residual_kernel_size, **common)

    @property
    def sample_rate(self) -> int:
        return int(self.config.sample_rate)

    @property
    def hop(self) -> int:
        return self.encoder.hop

    @property
    def codebook_size(self) -> int:
        return self.config.codebook_size

    @property
    def num_codebooks(self) -> int:
        return self.config.n_q

    # ------------------------------------------------------------------ tensor-level pipeline

    @torch.inference_mode()
    def lstm_output(self, wav: torch.Tensor, *, chunk_seconds: float | None = None) -> torch.Tensor:
        """The encoder's LSTM output plus skip ``[B, 2 * width, ceil(L / hop)]`` of ``[B, 1, L]`` audio."""
        if wav.dim() != 3 or wav.shape[1] != 1:
            raise InputError(f"SpeechTokenizer encodes mono audio [B, 1, L], got shape {tuple(wav.shape)}")
        length, hop = wav.shape[-1], self.hop
        frames = math.ceil(length / hop)
        tile = self._chunk_frames(chunk_seconds)
        if frames <= tile:
            return self.encoder.lstm(self.encoder.front(wav))[0]
        ctx = math.ceil(receptive_field(self.encoder) / hop) + 1
        pieces = []
        for f0 in range(0, frames, tile):
            f1 = min(frames, f0 + tile)
            a, b = max(0, f0 - ctx) * hop, min(length, (f1 + ctx) * hop)
            pieces.append(self.encoder.front(wav[..., a:b])[..., f0 - a // hop : f1 - a // hop])
        front = torch.cat(pieces, dim=-1)
        del pieces
        return self.encoder.model[self.encoder.n_front].chunked(front, tile)  # exact; see the module doc

    def _back_chunks(self, y: torch.Tensor, chunk_seconds: float | None, fn) -> list[torch.Tensor]:
        """``fn(encoder.back(y))`` chunk by chunk (the last conv's context each side), frames in order."""
        frames, per = y.shape[-1], self._chunk_frames(chunk_seconds)
        if frames <= per:
            return [fn(self.encoder.back(y))]
        last = self.encoder.model[self.encoder.n_front + 2]  # the last conv: kernel // 2 frames each side
        ctx, out = (last.kernel_size[0] - 1) * last.dilation[0] // 2 + 1, []
        for f0 in range(0, frames, per):
            f1 = min(frames, f0 + per)
            a, b = max(0, f0 - ctx), min(frames, f1 + ctx)
            out.append(fn(self.encoder.back(y[..., a:b])[..., f0 - a : f1 - a]))
        return out

    @torch.inference_mode()
    def latents(self, wav: torch.Tensor, *, chunk_seconds: float | None = None) -> torch.Tensor:
        """Encoder output ``[B, dimension, ceil(L / hop)]`` of ``[B, 1, L]`` audio at 16 kHz."""
        return torch.cat(self._back_chunks(self.lstm_output(wav, chunk_seconds=chunk_seconds), chunk_seconds, lambda z: z), -1)

    @torch.inference_mode()
    def encode_codes(self, wav: torch.Tensor, n_q: int | None = None, *, chunk_seconds: float | None = None) -> torch.Tensor:
        """Codes ``[B, n_q, T]`` of ``[B, 1, L]`` 16 kHz audio (the reference's ``encode`` transposed);
        long audio is quantized chunk by chunk, so the full latents are never held."""
        y = self.lstm_output(wav, chunk_seconds=chunk_seconds)
        return torch.cat(self._back_chunks(y, chunk_seconds, lambda z: self.quantizer.encode(z, n_q)), -1)

    @torch.inference_mode()
    def decode_codes(self, codes: torch.Tensor, *, chunk_seconds: float | None = None) -> torch.Tensor:
        """Codes of the first ``q`` levels ``[B, q, T]`` -> audio ``[B, 1, T * hop]``."""
        x = self.decoder.head(self.quantizer.decode(codes))
        frames, per = x.shape[-1], self._chunk_frames(chunk_seconds)
        if frames <= per:
            return self.decoder.tail(self.decoder.lstm(x)[0])
        state, hidden = None, []
        for f0 in range(0, frames, per):
            y, state = self.decoder.lstm(x[..., f0 : f0 + per], state)
            hidden.append(y)
        h = torch.cat(hidden, dim=-1)
        ctx, outs = DECODER_CONTEXT_FRAMES, []
        for f0 in range(0, frames, per):
            f1 = min(frames, f0 + per)
            a, b = max(0, f0 - ctx), min(frames, f1 + ctx)
            outs.append(self.decoder.tail(h[..., a:b])[..., (f0 - a) * self.hop : (f1 - a) * self.hop])
        return torch.cat(outs, dim=-1)

    # ------------------------------------------------------------------ media-level interface

    def _items(self, waveform: Any, sample_rate: int | None) -> list[torch.Tensor]:
        if isinstance(waveform, (list, tuple)):
            if not waveform:
                raise InputError("encode() got an empty list of audio items")
            return [w for x in waveform for w in self._prepare(x, sample_rate)]
        return self._prepare(waveform, sample_rate)

    def encode(self, waveform: Any, sample_rate: int | None = None, *, n_q: int | None = None,
               chunk_seconds: float | None = None) -> Tokens:
        """Audio -> :class:`~zoo.Tokens` with ids ``[B, n_q, T_max]`` (level 0 semantic), per-item
        ``lengths`` and ``meta`` (``sample_rate``, ``frame_rate``, ``num_samples``)."""
        if n_q is not None and not (isinstance(n_q, int) and 1 <= n_q <= self.num_codebooks):
            raise InputError(f"n_q must be an int in 1..{self.num_codebooks}, got {n_q!r}")
        items = self._items(waveform, sample_rate)
        device = self.quantizer.layers[0]._codebook.embed.device
        out: list[torch.Tensor | None] = [None] * len(items)
        groups: dict[int, list[int]] = {}
        for i, w in enumerate(items):
            groups.setdefault(int(w.shape[-1]), []).append(i)
        for idx in groups.values():
            codes = self.encode_codes(torch.stack([items[i] for i in idx]).to(device)[:, None], n_q, chunk_seconds=chunk_seconds)
            for j, i in enumerate(idx):
                out[i] = codes[j]
        lengths = torch.tensor([c.shape[-1] for c in out])
        ids = torch.zeros(len(out), out[0].shape[0], int(lengths.max()), dtype=torch.long, device=device)
        for b, c in enumerate(out):
            ids[b, :, : c.shape[-1]] = c
        return Tokens(ids=ids, codebook_size=self.codebook_size, tokenizer=self.name, lengths=lengths,
                      meta={"sample_rate": self.sample_rate, "frame_rate": self.frame_rate,
                            "num_samples": [int(w.shape[-1]) for w in items]})

    def decode(self, tokens: Any, *, chunk_seconds: float | None = None,
               generator: torch.Generator | None = None) -> torch.Tensor | list[torch.Tensor]:
        """Tokens / ids ``[B, q, T]`` (``q`` <= n_q, the first levels) -> audio ``[B, 1, T * hop]``,
        or a list of ``[1, L_b]`` when items differ in length. ``generator`` is accepted for
        interface uniformity and unused (decoding is deterministic)."""
        if isinstance(tokens, torch.Tensor) and tokens.dim() == 2:
            raise InputError(f"SpeechTokenizer ids are [B, q, T] (q codebook levels); got shape {tuple(tokens.shape)}: "
                             "add the level axis (ids[:, None] for the semantic level alone)")
        tok = as_tokens(tokens, self.codebook_size, self.name)
        if tok.ids.dim() != 3 or not 1 <= tok.ids.shape[1] <= self.num_codebooks:
            raise InputError(f"SpeechTokenizer decodes ids [B, q, T] with 1 <= q <= {self.num_codebooks}, got shape "
                             f"{tuple(tok.ids.shape)}")
        device = self.quantizer.layers[0]._codebook.embed.device
        if int(tok.lengths.min()) == tok.max_length:
            return self.decode_codes(tok.ids.to(device), chunk_seconds=chunk_seconds)
        return [self.decode_codes(item.to(device), chunk_seconds=chunk_seconds)[0] for item in tok.to_list()]

    @torch.inference_mode()
    def semantic_features(self, waveform: Any, sample_rate: int | None = None) -> torch.Tensor | list[torch.Tensor]:
        """Level-0 quantized latents through ``transform``: ``[B, T, semantic_dimension]`` (a list for ragged input)."""
        feats = []
        for w in self._items(waveform, sample_rate):
            z = self.latents(w.to(self.quantizer.layers[0]._codebook.embed.device)[None, None])
            first = self.quantizer.layers[0]
            feats.append(self.transform(first.decode(first.encode(z)).transpose(1, 2))[0])
        if len({f.shape[0] for f in feats}) == 1:
            return torch.stack(feats)
        return feats
