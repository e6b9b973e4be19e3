"""The SNAC tokenizer: mono audio <-> a multi-rate hierarchy of codebook ids (3 levels at 24 kHz,
4 at 32/44 kHz, coarse first), as :class:`zoo.MultiRateTokens`.

* ``encode(waveform, sample_rate) -> MultiRateTokens``: a path, ``[L]``, ``[C, L]``, ``[B, C, L]``
  or a list of those (any lengths; mixed to mono, resampled by :mod:`zoo.media.audio`). Each
  item is encoded at its own length (the reference pads a batch to its longest item, which
  changes the last frames of shorter ones). Audio is right-padded with zeros to a multiple of
  ``hop * lcm(vq_strides[0], attn_window_size)`` samples, as the reference's ``preprocess``.
* ``decode(tokens, generator=None) -> [B, 1, L]``: the decoder's NoiseBlocks draw from
  ``generator`` (``torch.randn((B, 1, T_i), generator=...)``, block by block in the reference's
  order); a generator seeded with ``s`` gives the reference's output after
  ``torch.manual_seed(s)``. Without one, a fresh generator seeded 0 is used (decoding never
  touches the global RNG). ``tokens.codebooks(q)`` decodes the first ``q`` levels only.
  Items of different lengths are decoded one by one, in batch order.

Long audio: encoder and decoder are local (convolutions, and attention inside fixed
``attn_window_size`` windows whose positions restart in every window), so both run on chunks of
``chunk_seconds`` (config, default 30 s) with a context of whole attention windows plus the
convolutions' receptive field on each side, aligned to the padding multiple; they equal one pass up
to float rounding. The decoder's noise for the whole signal is drawn first, in the one-pass order,
and each chunk takes its slice, so chunked decoding equals one pass for the same generator.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import torch
from torch import nn

from zoo.audio_codec import AudioCodecMixin
from zoo.errors import InputError
from zoo.interfaces import MultiRateTokens, as_multirate_tokens
from zoo.model import ZooModel
from zoo.nn.rvq import MultiScaleRVQ

from .config import SNACConfig
from .network import Decoder, Encoder

__all__ = ["SNAC"]

#: Reach of a residual unit stack (dilations 1, 3, 9 with kernel 7) in its own samples, one side.
_RESIDUAL_REACH = 3 * (1 + 3 + 9)


def conv_reach_frames(config: SNACConfig) -> int:
    """Latent frames the convolutions of the encoder or decoder reach on one side (whichever is
    more), not counting attention: beyond it a chunk's edge cannot change an output frame."""
    hop, enc, cum = config.hop_length, 3, 1
    for s in config.encoder_rates:
        enc += _RESIDUAL_REACH * cum + 2 * s * cum
        cum *= s
    enc_frames = math.ceil(enc / hop) + 3
    dec, up = 3.0, 1
    for r in config.decoder_rates:
        up *= r
        dec += 1 + _RESIDUAL_REACH / up
    dec_frames = math.ceil(dec + 3 / hop) + 1
    return max(enc_frames, dec_frames)


class SNAC(AudioCodecMixin, ZooModel, nn.Module):
    """SNAC built from a :class:`SNACConfig`.

    Example:
        >>> import torch
        >>> cfg = SNACConfig(sampling_rate=8000, encoder_dim=4, encoder_rates=[2, 2], decoder_dim=16,
        ...                  decoder_rates=[2, 2], attn_window_size=None, codebook_size=16, vq_strides=[2, 1])
        >>> m = SNAC(cfg).eval()
        >>> tok = m.encode(torch.zeros(1, 1, 30), 8000)
        >>> [x.shape[-1] for x in tok.levels], tuple(m.decode(tok).shape)
        ([4, 8], (1, 1, 32))
    """

    default_name = "snac"
    display_name = "this SNAC"

    def __init__(self, config: SNACConfig | None = None):
        super().__init__()
        cfg = (config if config is not None else SNACConfig()).validate()
        self.config = cfg
        self.encoder = Encoder(cfg.encoder_dim, cfg.encoder_rates, cfg.depthwise, cfg.attn_window_size)
        self.quantizer = MultiScaleRVQ(cfg.latent, cfg.codebook_size, cfg.codebook_dim, cfg.vq_strides)
        self.decoder = Decoder(cfg.latent, cfg.decoder_dim, cfg.decoder_rates, cfg.noise, cfg.depthwise, cfg.attn_window_size)

    # ------------------------------------------------------------------ properties

    @property
    def sample_rate(self) -> int:
        return int(self.config.sampling_rate)

    @property
    def hop(self) -> int:
        """Samples per finest frame."""
        return self.config.hop_length

    @property
    def codebook_size(self) -> int:
        return self.config.codebook_size

    @property
    def strides(self) -> tuple[int, ...]:
        """Finest frames per id of each level (``vq_strides``), coarse first."""
        return tuple(self.config.vq_strides)

    @property
    def frame_rates(self) -> list[float]:
        """Ids per second of each level."""
        return [self.sample_rate / (self.hop * s) for s in self.strides]

    def _context(self) -> int:
        """Latent frames of context per chunk side, a multiple of ``frame_multiple``."""
        window = self.config.attn_window_size or 0
        need = conv_reach_frames(self.config) + 2 * window
        m = self.config.frame_multiple
        return math.ceil(need / m) * m

    def _chunk_frames(self, chunk_seconds: float | None) -> int:
        return super()._chunk_frames(chunk_seconds, self.config.frame_multiple)

    # ------------------------------------------------------------------ tensor-level pipeline

    def preprocess(self, wav: torch.Tensor) -> torch.Tensor:
        """Right-pad ``[B, 1, L]`` with zeros to a multiple of :attr:`SNACConfig.pad_multiple`."""
        pad_to = self.config.pad_multiple
        return nn.functional.pad(wav, (0, math.ceil(wav.shape[-1] / pad_to) * pad_to - wav.shape[-1]))

    @torch.inference_mode()
    def encode_codes(self, wav: torch.Tensor, *, chunk_seconds: float | None = None) -> list[torch.Tensor]:
        """``[B, 1, L]`` audio at :attr:`sample_rate` -> ids per level ``[B, T / vq_strides[l]]``."""
        if wav.dim() != 3 or wav.shape[1] != 1:
            raise InputError(f"SNAC encodes mono audio [B, 1, L], got shape {tuple(wav.shape)}")
        wav = self.preprocess(wav.to(self.quantizer.quantizers[0].codebook.weight.dtype))
        frames = wav.shape[-1] // self.hop
        per = self._chunk_frames(chunk_seconds)
        if frames <= per:
            return self.quantizer.encode(self.encoder(wav))
        ctx = self._context()
        parts: list[list[torch.Tensor]] = []
        for f0 in range(0, frames, per):
            f1 = min(frames, f0 + per)
            a, b = max(0, f0 - ctx), min(frames, f1 + ctx)
            z = self.encoder(wav[..., a * self.hop : b * self.hop])[..., f0 - a : f1 - a]
            parts.append(self.quantizer.encode(z))
        return [torch.cat([p[level] for p in parts], dim=-1) for level in range(len(self.strides))]

    def draw_noise(self, batch: int, frames: int, generator: torch.Generator | None) -> list[torch.Tensor]:
        """The decoder's noise for ``frames`` latent frames, drawn in the reference's order."""
        weight = self.quantizer.quantizers[0].codebook.weight
        g = generator if generator is not None else torch.Generator(weight.device).manual_seed(0)
        return [torch.randn(shape, generator=g, device=weight.device, dtype=weight.dtype)
                for shape in self.decoder.noise_shapes(batch, frames)]

    @torch.inference_mode()
    def decode_codes(self, codes: Sequence[torch.Tensor], *, generator: torch.Generator | None = None,
                     chunk_seconds: float | None = None) -> torch.Tensor:
        """Ids of the first ``q`` levels -> audio ``[B, 1, T * hop]``."""
        z = self.quantizer.decode(codes)
        frames = z.shape[-1]
        noise = self.draw_noise(z.shape[0], frames, generator)
        per = self._chunk_frames(chunk_seconds)
        if frames <= per:
            return self.decoder(z, noise if noise else None)
        ctx = self._context()
        outs = []
        for f0 in range(0, frames, per):
            f1 = min(frames, f0 + per)
            a, b = max(0, f0 - ctx), min(frames, f1 + ctx)
            seg_noise, up = [], 1
            for n, r in zip(noise, self.decoder.rates):
                up *= r
                seg_noise.append(n[..., a * up : b * up])
            y = self.decoder(z[..., a:b], seg_noise if noise else None)
            outs.append(y[..., (f0 - a) * self.hop : (f1 - a) * self.hop])
        return torch.cat(outs, dim=-1)

    def forward(self, wav: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Copy-synthesis of ``[B, 1, L]``: decode(encode(wav)) trimmed to ``L`` samples."""
        return self.decode_codes(self.encode_codes(wav), generator=generator)[..., : wav.shape[-1]]

    # ------------------------------------------------------------------ media-level interface

    def encode(self, waveform: Any, sample_rate: int | None = None, *, chunk_seconds: float | None = None) -> MultiRateTokens:
        """Audio -> :class:`~zoo.MultiRateTokens` (``levels`` coarse first, ``lengths`` in coarsest frames,
        ``meta``: ``sample_rate``, ``frame_rates`` and each item's ``num_samples`` at the model's rate)."""
        if isinstance(waveform, (list, tuple)):
            if not waveform:
                raise InputError("encode() got an empty list of audio items")
            items = [w for x in waveform for w in self._prepare(x, sample_rate)]
        else:
            items = self._prepare(waveform, sample_rate)
        device = self.quantizer.quantizers[0].codebook.weight.device
        out: list[list[torch.Tensor] | None] = [None] * len(items)
        groups: dict[int, list[int]] = {}
        for i, w in enumerate(items):
            groups.setdefault(int(w.shape[-1]), []).append(i)
        for idx in groups.values():
            codes = self.encode_codes(torch.stack([items[i] for i in idx]).to(device)[:, None], chunk_seconds=chunk_seconds)
            for j, i in enumerate(idx):
                out[i] = [c[j] for c in codes]
        lengths = torch.tensor([c[0].shape[-1] for c in out])
        top = int(lengths.max())
        levels = []
        for level, s in enumerate(self.strides):
            ratio = self.strides[0] // s
            padded = torch.zeros(len(out), top * ratio, dtype=torch.long, device=device)
            for b, c in enumerate(out):
                padded[b, : c[level].shape[-1]] = c[level]
            levels.append(padded)
        return MultiRateTokens(levels=levels, strides=self.strides, codebook_size=self.codebook_size, tokenizer=self.name,
                               lengths=lengths, meta={"sample_rate": self.sample_rate, "frame_rates": self.frame_rates,
                                                      "num_samples": [int(w.shape[-1]) for w in items]})

    def decode(self, tokens: Any, *, generator: torch.Generator | None = None,
               chunk_seconds: float | None = None) -> torch.Tensor | list[torch.Tensor]:
        """:class:`~zoo.MultiRateTokens` (or SNAC's list of per-level ``[B, T_l]`` ids; fewer levels
        decode the coarse ones only) -> audio ``[B, 1, lengths * strides[0] * hop]`` at
        :attr:`sample_rate`, or a list of ``[1, L_b]`` when items differ in length."""
        tok = as_multirate_tokens(tokens, self.codebook_size, self.strides, self.name)
        device = self.quantizer.quantizers[0].codebook.weight.device
        kw = {"generator": generator, "chunk_seconds": chunk_seconds}
        if int(tok.lengths.min()) == tok.max_length:
            return self.decode_codes([x.to(device) for x in tok.levels], **kw)
        return [self.decode_codes([x.to(device) for x in item], **kw)[0] for item in tok.to_list()]
