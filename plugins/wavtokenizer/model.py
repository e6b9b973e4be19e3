"""The WavTokenizer model: 24 kHz mono audio <-> 40 or 75 tokens per second, one 4096-code book.

Public interface (what ``zoo reconstruct in.wav --model wavtokenizer --out out.wav`` uses):

* ``model.encode(waveform, sample_rate) -> Tokens`` (``ids`` ``[B, T]`` int64 + ``lengths``).
  ``waveform`` is a file path (wav/flac, read with ``soundfile``), a tensor ``[L]`` (mono),
  ``[C, L]`` (one item, C channels) or ``[B, C, L]``, or a list of those (any lengths).
  Audio is resampled to 24 kHz (windowed-sinc, ``zoo.media.audio``) and mixed to mono by
  averaging the channels (the reference's ``convert_audio`` rule).
* ``model.decode(tokens) -> waveform [B, T * hop]`` at ``model.sample_rate`` (24 kHz); items
  of different lengths come back as a list.
* ``model.reconstruct(waveform, sample_rate)`` = decode(encode(.)) trimmed to the input length.

Long audio, bounded memory and no seams. Encoding runs the SEANet convolutions on tiles of
at most 2 s (``FRONT_TILE_SECONDS``) with a margin wider than their receptive field on each
side (tile starts are multiples of the hop, so every layer's frames line up and the end
padding is the global one), keeps only each tile's own frames, runs the LSTM over chunks of
``chunk_seconds`` carrying its (h, c) state, then the final conv and VQ. (Tiling also makes
encoding faster: the 32-256-channel activations at up to 24 kHz stay in cache.) Decoding runs the parts of the Vocos
backbone that are global in the reference (the embed conv, GroupNorm statistics and the full
self-attention of ``pos_net``) on the whole sequence -- attention goes through SDPA in query
blocks, so memory is linear in length instead of the reference's ``T x T`` matrix (2 GB at 5
minutes) -- and the local parts (12 ConvNeXt blocks: 36 frames of context, the head, the
overlap-add) chunk by chunk with that context. Both paths therefore compute the same function
as one full-length pass: chunking changes float rounding only (~1e-6), never the result, and
there is no crossfade or seam anywhere. A tqdm progress bar counts tiles/chunks:
``progress=True`` always, ``False`` never, ``None`` (default, or ``model.progress``) on inputs
of several chunks when stderr is a terminal.

Batches: items are run at their own length (items of equal length share one batched pass),
so an item gives the same ids in any batch, and the same audio up to the float rounding of a
batched GEMM (~1e-6 relative). The reference pads a batch to the longest item,
and the padding leaks into real frames through reflect/zero padding, GroupNorm statistics and
attention.

Precision: float32 by default. ``zoo.load("wavtokenizer", dtype="bf16")`` (or
``model.to(torch.bfloat16)``) is an opt-in, inexact mode: the convolutions, LSTM and matmuls run
in bfloat16 (faster on CPUs with AVX512-BF16) while the ISTFT head's spectrum, overlap-add and
window stay float32, so decode still returns float32 audio; expect ~2% of ids to differ and the
waveform to differ by ~1e-2 of its peak.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from zoo.audio_codec import AudioCodecMixin
from zoo.errors import InputError
from zoo.model import ZooModel

from ._core import Tokens, as_tokens
from .config import WavTokenizerConfig
from .decoder import ISTFTHead, VocosBackbone, overlap_add, window_envelope
from .encoder import Codebook, SEANetEncoder, receptive_field

__all__ = ["WavTokenizer"]

FRONT_TILE_SECONDS = 2.0


def _progress(total: int, enabled: bool | None, desc: str):
    """A tqdm bar over chunks: ``True`` always, ``None`` (default) when there are several chunks
    and stderr is a terminal, ``False`` never."""
    if enabled is False or (enabled is None and total <= 2):
        return None
    try:
        from tqdm.auto import tqdm  # noqa: PLC0415
    except ImportError:  # progress is a nicety; tqdm ships with zoo's dependencies
        return None
    return tqdm(total=total, desc=desc, unit="chunk", leave=False, disable=None if enabled is None else False)


class WavTokenizer(AudioCodecMixin, ZooModel, nn.Module):
    """WavTokenizer tokenizer/detokenizer built from a :class:`WavTokenizerConfig`.

    Example:
        >>> import torch
        >>> cfg = WavTokenizerConfig(n_filters=4, dimension=16, codebook_size=32, backbone_dim=64,
        ...                          intermediate_dim=96, num_layers=2)
        >>> m = WavTokenizer(cfg).eval()
        >>> tok = m.encode(torch.zeros(1, 24000), 24000)
        >>> tuple(tok.ids.shape), tuple(m.decode(tok).shape)
        ((1, 75), (1, 24000))
    """

    default_name = "wavtokenizer"
    display_name = "WavTokenizer"

    def __init__(self, config: WavTokenizerConfig | None = None):
        super().__init__()
        cfg = (config if config is not None else WavTokenizerConfig()).validate()
        self.config = cfg
        self.encoder = SEANetEncoder(cfg.ratios, cfg.n_filters, cfg.dimension, cfg.lstm_layers)
        self.quantizer = Codebook(cfg.codebook_size, cfg.dimension)
        self.backbone = VocosBackbone(cfg.dimension, cfg.backbone_dim, cfg.intermediate_dim, cfg.num_layers,
                                      cfg.adanorm_num_embeddings)
        self.backbone.bandwidth_id = cfg.bandwidth_id
        self.head = ISTFTHead(cfg.backbone_dim, cfg.n_fft, cfg.hop_length)
        self.progress: bool | None = None  # None: a bar on long inputs when stderr is a terminal

    # ------------------------------------------------------------------ properties

    @property
    def sample_rate(self) -> int:
        """Sample rate of the audio the model takes and returns (24 kHz for every release)."""
        return int(self.config.sample_rate)

    @property
    def hop(self) -> int:
        """Samples per token."""
        return self.encoder.hop

    @property
    def codebook_size(self) -> int:
        return self.quantizer.size

    # ------------------------------------------------------------------ tensor-level pipeline

    @torch.inference_mode()
    def latents(self, wav: torch.Tensor, *, chunk_seconds: float | None = None, progress: bool | None = None) -> torch.Tensor:
        """Pre-quantisation latents ``[B, D, ceil(L / hop)]`` of 24 kHz mono audio ``[B, L]``."""
        if wav.dim() != 2:
            raise InputError(f"latents() expects [B, L] mono 24 kHz audio, got shape {tuple(wav.shape)}")
        wav = wav.to(self.quantizer.embed.dtype)[:, None]
        length, hop = wav.shape[-1], self.hop
        if length == 0:
            raise InputError("cannot encode empty audio (0 samples)")
        frames = math.ceil(length / hop)
        per = self._chunk_frames(chunk_seconds)
        # The convolutional front runs in tiles of at most FRONT_TILE_SECONDS (exact, see the
        # module docstring): its activations are 32-256 channels at up to 24 kHz, and tiles that
        # stay in cache are faster than one pass over the whole signal.
        tile = min(per, max(1, int(FRONT_TILE_SECONDS * self.sample_rate / hop)))
        n_tiles, n_chunks = math.ceil(frames / tile), math.ceil(frames / per)
        bar = _progress(n_tiles + n_chunks, self.progress if progress is None else progress, "wavtokenizer encode")
        if n_tiles == 1:
            front = self.encoder.front(wav)
            bar and bar.update()
        else:
            ctx = math.ceil(receptive_field(self.encoder) / hop) + 1
            pieces = []
            for f0 in range(0, frames, tile):
                f1 = min(frames, f0 + tile)
                a, b = max(0, f0 - ctx) * hop, min(length, (f1 + ctx) * hop)
                out = self.encoder.front(wav[..., a:b])
                pieces.append(out[..., f0 - a // hop : f1 - a // hop])
                bar and bar.update()
            front = torch.cat(pieces, dim=-1)
        state, outs = None, []
        for f0 in range(0, frames, per):
            y, state = self.encoder.lstm(front[..., f0 : f0 + per], state)
            outs.append(y)
            bar and bar.update()
        bar and bar.close()
        return self.encoder.back(outs[0] if len(outs) == 1 else torch.cat(outs, dim=-1))

    @torch.inference_mode()
    def encode_ids(self, wav: torch.Tensor, **kw: Any) -> torch.Tensor:
        """Token ids ``[B, T]`` of 24 kHz mono audio ``[B, L]``."""
        return self.quantizer.encode(self.latents(wav, **kw))

    @torch.inference_mode()
    def decode_features(self, features: torch.Tensor, *, chunk_seconds: float | None = None,
                        progress: bool | None = None) -> torch.Tensor:
        """Waveform ``[B, T * hop]`` from features ``[B, D, T]`` (codebook vectors)."""
        x = self.backbone.stem(features)
        t = x.shape[1]
        per = self._chunk_frames(chunk_seconds)
        if t <= per:
            return self.head(self.backbone.blocks(x))
        ctx = self.backbone.context
        hop, n_fft = self.head.hop_length, self.head.n_fft
        n_chunks = math.ceil(t / per)
        bar = _progress(n_chunks, self.progress if progress is None else progress, "wavtokenizer decode")
        y = x.new_zeros(x.shape[0], (t - 1) * hop + n_fft, dtype=self.head.float_dtype(x))
        for f0 in range(0, t, per):
            f1 = min(t, f0 + per)
            a, b = max(0, f0 - ctx), min(t, f1 + ctx)
            h = self.backbone.blocks(x[:, a:b])[:, f0 - a : f1 - a]
            seg = overlap_add(self.head.frames(h), hop)  # samples from f0 * hop
            y[:, f0 * hop : f0 * hop + seg.shape[-1]] += seg
            bar and bar.update()
        bar and bar.close()
        pad = (n_fft - hop) // 2
        env = window_envelope(self.head.window_for(y), hop, t)
        return y[:, pad:-pad] / env[pad:-pad]

    @torch.inference_mode()
    def decode_ids(self, ids: torch.Tensor, **kw: Any) -> torch.Tensor:
        """Waveform ``[B, T * hop]`` from ids ``[B, T]``."""
        if ids.dim() == 1:
            ids = ids[None]
        return self.decode_features(self.quantizer.decode(ids), **kw)

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        """Copy-synthesis of 24 kHz mono ``[B, L]``: ``decode(encode(wav))`` -> ``[B, ceil(L/hop)*hop]``."""
        return self.decode_ids(self.encode_ids(wav))

    # ------------------------------------------------------------------ media-level interface

    def encode(self, waveform: Any, sample_rate: int | None = None, *, chunk_seconds: float | None = None,
               progress: bool | None = None) -> Tokens:
        """Audio -> :class:`zoo.interfaces.Tokens` (``ids`` ``[B, T_max]``, per-item ``lengths``).

        ``waveform``: a path, ``[L]``, ``[C, L]``, ``[B, C, L]`` or a list of paths/tensors
        (any lengths; each item is encoded alone, so its ids do not depend on the batch).
        ``meta`` holds ``sample_rate`` (24000), ``frame_rate`` and each item's ``num_samples``
        at 24 kHz (decode returns ``T * hop`` samples; ``reconstruct`` trims to these).
        """
        if isinstance(waveform, (list, tuple)):
            items = [w for x in waveform for w in self._prepare(x, sample_rate)]
        else:
            items = self._prepare(waveform, sample_rate)
        device = self.quantizer.embed.device
        kw = {"chunk_seconds": chunk_seconds, "progress": progress}
        ids = self._grouped([w.to(device) for w in items], lambda x: self.encode_ids(x, **kw))
        lengths = torch.tensor([i.shape[-1] for i in ids])
        padded = torch.zeros(len(ids), int(lengths.max()), dtype=torch.long, device=device)
        for b, row in enumerate(ids):
            padded[b, : row.shape[-1]] = row
        return Tokens(ids=padded, codebook_size=self.codebook_size, tokenizer=self.name, lengths=lengths,
                      meta={"sample_rate": self.sample_rate, "frame_rate": self.frame_rate,
                            "num_samples": [int(w.shape[-1]) for w in items]})

    def decode(self, tokens: Any, *, chunk_seconds: float | None = None, progress: bool | None = None,
               generator: torch.Generator | None = None) -> torch.Tensor | list[torch.Tensor]:
        """Tokens / ids ``[B, T]`` or ``[T]`` / list of per-item ids -> 24 kHz audio.

        Returns ``[B, T * hop]`` when every item has the same length, otherwise a list of
        ``[T_b * hop]`` tensors. Each item is decoded at its own length (no padding leaks).
        ``generator`` is accepted for interface uniformity and unused: decoding is deterministic.
        """
        kw = {"chunk_seconds": chunk_seconds, "progress": progress}
        tok = as_tokens(tokens, self.codebook_size, self.name)
        if tok.ids.dim() != 2:
            raise InputError(f"WavTokenizer has one codebook: ids must be [B, T], got shape {tuple(tok.ids.shape)}")
        device = self.quantizer.embed.device
        items = [row.to(device) for row in tok.to_list()]  # [1, T_b] each
        wavs = self._grouped([i[0] for i in items], lambda x: self.decode_ids(x, **kw))
        if len({w.shape[-1] for w in wavs}) == 1:
            return torch.stack(wavs)
        return wavs


def build_model(config: WavTokenizerConfig) -> WavTokenizer:
    """Random-init model for ``config`` (weights come from the converter)."""
    return WavTokenizer(config)
