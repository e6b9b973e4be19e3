"""What zoo's audio codecs share: rates, naming, input preparation, grouping and ``reconstruct``.

:class:`AudioCodecMixin` goes before :class:`~zoo.model.ZooModel` in an audio tokenizer's bases.
The class provides ``sample_rate`` (Hz) and ``hop`` (samples per token frame), ``encode`` and
``decode``; the mixin adds

* ``frame_rate`` = ``sample_rate / hop`` (token frames per second);
* ``name`` (from ``ZooModel``): the card's name once ``zoo.load`` set one, else ``default_name``;
* ``_prepare(waveform, sample_rate)``: :func:`zoo.media.audio.prepare_items` at the codec's
  rate (mono unless ``mono_input`` is False), the one place inputs are checked;
* ``_grouped(items, fn)``: :func:`zoo.media.audio.run_grouped`;
* ``_chunk_frames(chunk_seconds, multiple=1)``: token frames per chunk of a chunked encode (the
  class's ``config.chunk_seconds`` when None; no chunking when unset or <= 0);
* ``reconstruct(waveform, sample_rate, codebooks=None, **options)`` =
  ``decode(encode(x))`` trimmed to each item's length at the codec's rate (``options`` such as
  ``chunk_seconds`` go to both calls, ``codebooks`` to ``encode``).

Example:
    >>> import torch
    >>> from zoo.interfaces import Tokens
    >>> from zoo.model import ZooModel
    >>> class Repeat(AudioCodecMixin, ZooModel):       # a toy codec: one token per 4 samples
    ...     sample_rate, hop, default_name = 16, 4, "repeat"
    ...     def encode(self, waveform, sample_rate=None):
    ...         items = self._prepare(waveform, sample_rate)
    ...         ids = torch.stack([(w[:: self.hop] > 0).long() for w in items])
    ...         return Tokens(ids=ids, codebook_size=2, tokenizer=self.name,
    ...                       meta={"num_samples": [w.shape[-1] for w in items]})
    ...     def decode(self, tokens):
    ...         return tokens.ids.float().repeat_interleave(self.hop, -1)
    >>> codec = Repeat()
    >>> codec.frame_rate, tuple(codec.reconstruct(torch.ones(1, 10), 16).shape)
    (4.0, (1, 10))
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import torch

__all__ = ["AudioCodecMixin"]


class AudioCodecMixin:
    """Shared behaviour of zoo's audio tokenizers (see the module doc)."""

    #: The name used in Tokens and messages before ``zoo.load`` sets a card.
    default_name: str = "audio codec"
    #: How input errors name the model (``"WavTokenizer runs at 24000 Hz"``); None: ``name``.
    display_name: str | None = None
    #: False: ``_prepare`` keeps channels (``[C, L]`` items) for codecs that take several.
    mono_input: bool = True
    #: The ``encode`` keyword that ``reconstruct(codebooks=q)`` passes ``q`` to.
    codebooks_option: str = "codebooks"

    sample_rate: int
    hop: int

    @property
    def frame_rate(self) -> float:
        """Token frames per second (``sample_rate / hop``)."""
        return self.sample_rate / self.hop


    def _prepare(self, waveform: Any, sample_rate: int | None) -> list[torch.Tensor]:
        """Anything ``encode`` accepts (one path or tensor) -> items at the codec's rate."""
        from zoo.media.audio import prepare_items  # noqa: PLC0415

        label = self.display_name or self.name
        return prepare_items(waveform, sample_rate, self.sample_rate, model=label, mono=self.mono_input)

    def _chunk_frames(self, chunk_seconds: float | None, multiple: int = 1) -> int:
        """Token frames per chunk for ``chunk_seconds`` (None: ``self.config.chunk_seconds``),
        rounded down to a multiple of ``multiple`` and at least one; unset or <= 0: no chunking
        (a count longer than any input).

        Example:
            >>> from types import SimpleNamespace
            >>> codec = AudioCodecMixin()
            >>> codec.sample_rate, codec.hop, codec.config = 24000, 320, SimpleNamespace(chunk_seconds=None)
            >>> codec._chunk_frames(2.0), codec._chunk_frames(2.0, multiple=4), codec._chunk_frames(None) > 10**12
            (150, 148, True)
        """
        seconds = self.config.chunk_seconds if chunk_seconds is None else chunk_seconds
        if not seconds or seconds <= 0:
            return 1 << 62
        return max(multiple, int(seconds * self.sample_rate / self.hop) // multiple * multiple)

    @staticmethod
    def _grouped(items: Sequence[torch.Tensor], fn: Callable[[torch.Tensor], Any]) -> list[Any]:
        """Run ``fn`` on items of equal shape together (:func:`zoo.media.audio.run_grouped`)."""
        from zoo.media.audio import run_grouped  # noqa: PLC0415

        return run_grouped(items, fn)

    def reconstruct(self, waveform: Any, sample_rate: int | None = None, *, codebooks: int | None = None,
                    **options: Any) -> torch.Tensor | list[torch.Tensor]:
        """``decode(encode(x))`` trimmed to each item's length at the codec's rate (a tensor when
        the items have one length, else a list)."""
        levels = {} if codebooks is None else {self.codebooks_option: codebooks}
        tokens = self.encode(waveform, sample_rate, **options, **levels)
        wavs = self.decode(tokens, **options)
        n = tokens.meta["num_samples"]
        if isinstance(wavs, torch.Tensor) and len(set(n)) == 1:
            return wavs[..., : n[0]]
        return [w[..., :k] for w, k in zip(wavs, n)]
