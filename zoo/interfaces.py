"""The shared interface: Tokenizer / Generator / TokenReducer protocols, the Tokens type and its
continuous sibling Latents.

Example:
    >>> import torch
    >>> t = Tokens(ids=torch.arange(8).view(2, 4), codebook_size=16, tokenizer="demo.tiny")
    >>> t.truncate([1, 3]).lengths.tolist()
    [1, 3]
    >>> [x.shape for x in t.truncate(2).to_list()]
    [torch.Size([1, 2]), torch.Size([1, 2])]
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol, Sequence, runtime_checkable

import torch

from zoo import _valuetools as _vt

if TYPE_CHECKING:
    from zoo.cards import ModelCard
from zoo.errors import InputTypeError, TokenError

__all__ = [
    "Tokens", "MultiRateTokens", "Latents", "Tokenizer", "Generator", "TokenReducer", "ReducerHandle", "ReducedTokens", "as_tokens",
    "as_latents", "as_multirate_tokens", "LoadedModel", "LoadedTokenizer", "LoadedGenerator", "LoadedReducer", "Model",
]


@dataclass
class Tokens:
    """Discrete tokens with their valid lengths and the tokenizer that made them.

    ``ids`` is ``[B, N]`` (or ``[B, Q, N]`` for several codebooks), right-padded with
    ``pad_id``; ``lengths[b]`` tokens of item ``b`` are valid. ``meta`` carries what decoding
    needs besides ids (e.g. ``sample_rate``, a latent grid shape).
    """

    ids: torch.Tensor
    codebook_size: int
    tokenizer: str = ""
    lengths: torch.Tensor | None = None
    pad_id: int = 0
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.ids, torch.Tensor):
            raise InputTypeError(f"Tokens.ids must be an integer tensor [B, N], got {type(self.ids).__name__}")
        if self.ids.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8):
            raise InputTypeError(f"Tokens.ids must be an integer tensor, got {self.ids.dtype}")
        if self.ids.dim() not in (2, 3):
            raise TokenError(f"Tokens.ids must be [B, N] or [B, Q, N] (batch first), got shape {tuple(self.ids.shape)}")
        if isinstance(self.codebook_size, bool) or not isinstance(self.codebook_size, int) or self.codebook_size < 1:
            raise InputTypeError(f"Tokens.codebook_size must be a positive int, got {self.codebook_size!r}")
        if not isinstance(self.tokenizer, str):
            raise InputTypeError(f"Tokens.tokenizer must be a model name (str), got {type(self.tokenizer).__name__}")
        if self.lengths is None:
            self.lengths = torch.full((self.ids.shape[0],), self.ids.shape[-1], dtype=torch.long)
        lengths = self.lengths
        if not (type(lengths) is torch.Tensor and lengths.dtype == torch.long and lengths.is_cpu):  # else as given
            lengths = torch.as_tensor(lengths)
            if lengths.is_floating_point() or lengths.is_complex() or lengths.dtype == torch.bool:
                raise InputTypeError(f"Tokens.lengths must hold integer counts, got {lengths.dtype}")
            self.lengths = lengths = lengths.to(dtype=torch.long).cpu()
        if lengths.shape != (self.ids.shape[0],):
            raise TokenError(f"Tokens.lengths must be [B]={self.ids.shape[0]}, got {tuple(lengths.shape)}")
        if lengths.numel():  # one reduction, not four elementwise ops: encoders build Tokens per batch
            low, high = torch.aminmax(lengths)
            if int(low) < 0 or int(high) > self.ids.shape[-1]:
                raise TokenError(f"Tokens.lengths must lie in [0, {self.ids.shape[-1]}], got {lengths.tolist()}")

    def __len__(self) -> int:
        return self.ids.shape[0]

    @property
    def batch_size(self) -> int:
        return self.ids.shape[0]

    @property
    def max_length(self) -> int:
        return self.ids.shape[-1]

    def truncate(self, keep: int | Sequence[int] | torch.Tensor) -> "Tokens":
        """Keep the first ``keep`` tokens of every item (an int, or one count per item)."""
        keep_t = _counts(keep)
        if keep_t.dim() == 0:
            keep_t = keep_t.expand(self.batch_size)
        if keep_t.shape != (self.batch_size,):
            raise TokenError(f"truncate: need one count per item ({self.batch_size}), got {keep_t.tolist()}")
        if (keep_t < 1).any() or (keep_t > self.lengths).any():
            raise TokenError(f"truncate: counts must lie in [1, length] per item; lengths {self.lengths.tolist()}, asked {keep_t.tolist()}")
        new_max = int(keep_t.max())
        ids = self.ids[..., :new_max].clone()
        pos = torch.arange(new_max, device=ids.device)
        pad = pos[None, :] >= keep_t.to(ids.device)[:, None]
        if ids.dim() == 3:
            pad = pad[:, None, :].expand_as(ids)
        ids[pad] = self.pad_id
        return replace(self, ids=ids, lengths=keep_t.clone())

    def to_list(self) -> list[torch.Tensor]:
        """Per-item ``[1, length]`` id tensors (the format several reference repos use)."""
        return [self.ids[b : b + 1, ..., : int(n)] for b, n in enumerate(self.lengths)]

    def tolist(self) -> list[torch.Tensor]:
        """Same as :meth:`to_list` (spelled like ``torch.Tensor.tolist``)."""
        return self.to_list()

    def __getitem__(self, index: int | slice | Sequence[int] | torch.Tensor) -> Tokens:
        """Items of the batch as :class:`Tokens`: ``tokens[0]`` has batch 1, ``tokens[1:3]`` and
        ``tokens[[0, 2]]`` a sub-batch; per-item ``meta`` (e.g. ``num_samples``) follows."""
        sel = _vt.batch_index(index, self.batch_size)
        lengths = self.lengths[sel]
        keep = int(lengths.max()) if lengths.numel() else self.max_length  # drop padding no chosen item needs
        return replace(self, ids=self.ids[sel][..., :keep], lengths=lengths,
                       meta=_vt.select_meta(self.meta, sel, self.batch_size))

    def __repr__(self) -> str:
        codebooks = f", codebooks={self.ids.shape[1]}" if self.ids.dim() == 3 else ""
        meta = f", meta={{{', '.join(sorted(self.meta))}}}" if self.meta else ""
        return (f"Tokens(tokenizer={self.tokenizer or '?'!r}, batch={self.batch_size}, ids={_vt.tensor_summary(self.ids)}"
                f", lengths={_vt.lengths_summary(self.lengths)}, codebook={self.codebook_size}{codebooks}{meta})")

    def to(self, device: torch.device | str) -> "Tokens":
        """The same tokens on ``device`` (an unknown or absent device is an :class:`~zoo.errors.InputError`)."""
        _vt.check_device(device)
        return replace(self, ids=self.ids.to(device))

    @property
    def num_codebooks(self) -> int:
        """Residual codebook levels ``Q`` (1 for ``[B, N]`` ids)."""
        return self.ids.shape[1] if self.ids.dim() == 3 else 1

    @property
    def levels(self) -> list[torch.Tensor]:
        """One ``[B, N]`` id tensor per codebook level (coarse first); the same API as
        :attr:`MultiRateTokens.levels`, where each level has its own frame rate."""
        return list(self.ids.unbind(1)) if self.ids.dim() == 3 else [self.ids]

    @property
    def level_lengths(self) -> list[torch.Tensor]:
        """Valid lengths per level: at one rate every level has ``lengths``."""
        return [self.lengths.clone() for _ in range(self.num_codebooks)]

    def codebooks(self, q: int) -> "Tokens":
        """Keep the first ``q`` residual levels of ``[B, Q, N]`` ids (the bitrate knob of RVQ codecs).

        Example:
            >>> import torch
            >>> t = Tokens(ids=torch.zeros(2, 8, 5, dtype=torch.long), codebook_size=1024, tokenizer="demo.rvq")
            >>> t.codebooks(2).ids.shape, t.codebooks(2).num_codebooks
            (torch.Size([2, 2, 5]), 2)
        """
        _check_levels(q, self.num_codebooks)
        if self.ids.dim() == 2:
            return self
        return replace(self, ids=self.ids[:, :q], meta=dict(self.meta))

    def check_range(self) -> None:
        """Raise :class:`~zoo.errors.TokenError` (a ValueError) if any valid id lies outside
        ``[0, codebook_size)``."""
        for b, n in enumerate(self.lengths.tolist()):
            item = self.ids[b, ..., :n]
            if item.numel() and (int(item.min()) < 0 or int(item.max()) >= self.codebook_size):
                raise TokenError(
                    f"token ids of item {b} lie in [{int(item.min())}, {int(item.max())}] but the codebook has "
                    f"{self.codebook_size} entries (valid ids: 0..{self.codebook_size - 1})"
                )


def _same_tokenizer(made_by: str, expected: str) -> bool:
    """Whether tokens made by ``made_by`` may be decoded by ``expected``. Only card names
    (``family.tag``) are compared: an empty name or a bare one (a model built without a card, e.g.
    ``"FlexTok"``) says nothing about provenance and matches anything."""
    if "." not in made_by or "." not in expected:
        return True
    return made_by.lower() == expected.lower()


def as_tokens(tokens: "Tokens | torch.Tensor | Sequence[torch.Tensor]", codebook_size: int, tokenizer: str = "") -> Tokens:
    """Accept ``Tokens``, a ``[B, N]`` tensor, or a list of per-item ``[1, k]``/``[k]`` tensors
    (ragged allowed) and return range-checked :class:`Tokens`.

    ``tokenizer`` is the card name of the model that will decode them: :class:`Tokens` made by
    another model (``Tokens.tokenizer`` names a different card) are refused with a
    :class:`~zoo.errors.TokenError`, even when the codebook sizes match. Raw ids carry no name and
    are taken as they are. Empty batches and empty items are refused.

    Example:
        >>> import torch
        >>> as_tokens([torch.tensor([[1, 2, 3]]), torch.tensor([[4]])], 10).lengths.tolist()
        [3, 1]
        >>> t = Tokens(ids=torch.zeros(1, 4, dtype=torch.long), codebook_size=10, tokenizer="a.x")
        >>> as_tokens(t, 10, tokenizer="b.y")  # doctest: +IGNORE_EXCEPTION_DETAIL
        Traceback (most recent call last):
        zoo.errors.TokenError: these tokens were made by 'a.x'; this model is 'b.y'
    """
    if isinstance(tokens, Tokens):
        out = tokens
        if not _same_tokenizer(out.tokenizer, tokenizer):
            raise TokenError(
                f"these tokens were made by {out.tokenizer!r}; this model is {tokenizer!r}, whose codebook means "
                f"something else. Decode them with zoo.load({out.tokenizer!r}), or pass the raw ids "
                "(tokens.ids) if you know they belong to this model"
            )
        if out.codebook_size != codebook_size:
            raise TokenError(f"tokens come from a codebook of {out.codebook_size} ({out.tokenizer or 'unknown'}), this tokenizer has {codebook_size}")
    elif isinstance(tokens, torch.Tensor):
        if tokens.is_floating_point() or tokens.is_complex() or tokens.dtype == torch.bool:
            raise InputTypeError(f"token ids must be an integer tensor, got {tokens.dtype}")
        if tokens.dim() == 1:
            tokens = tokens[None]
        out = Tokens(ids=tokens.long(), codebook_size=codebook_size, tokenizer=tokenizer)
    elif isinstance(tokens, (list, tuple)):
        if not tokens:
            raise TokenError("no token sequences given (an empty batch)")
        items = []
        for i, t in enumerate(tokens):
            if not isinstance(t, torch.Tensor):
                try:
                    t = torch.as_tensor(t)
                except (TypeError, ValueError, RuntimeError) as exc:
                    raise InputTypeError(f"token sequence {i} is not a tensor of integer ids ({exc})") from None
            if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
                raise InputTypeError(f"token sequence {i} must hold integer ids, got {t.dtype}")
            if t.dim() == 2 and t.shape[0] == 1:
                t = t[0]
            if t.dim() != 1 or t.numel() == 0:
                raise TokenError(f"token sequence {i} must be [1, k] or [k] with k >= 1, got shape {tuple(t.shape)}")
            items.append(t.long())
        lengths = torch.tensor([len(t) for t in items])
        ids = torch.zeros(len(items), int(lengths.max()), dtype=torch.long, device=items[0].device)
        for i, t in enumerate(items):
            ids[i, : len(t)] = t
        out = Tokens(ids=ids, codebook_size=codebook_size, tokenizer=tokenizer, lengths=lengths)
    else:
        raise InputTypeError(f"expected Tokens, a tensor, or a list of tensors, got {type(tokens).__name__}")
    if out.batch_size == 0 or out.max_length == 0:
        raise TokenError(f"no tokens to decode: ids have shape {tuple(out.ids.shape)} (an empty batch or empty sequences)")
    if int(out.lengths.min()) < 1:
        raise TokenError(f"every item needs at least one valid token, got lengths {out.lengths.tolist()}")
    out.check_range()
    return out


def _check_levels(q: int, available: int) -> None:
    """``q`` must be an int in ``[1, available]`` (how many residual levels to keep)."""
    if isinstance(q, bool) or not isinstance(q, int):
        raise InputTypeError(f"codebooks: the number of levels to keep must be an int, got {q!r}")
    if not 1 <= q <= available:
        raise TokenError(f"codebooks({q}): these tokens have {available} codebook level(s); keep 1..{available}")


@dataclass
class MultiRateTokens:
    """Discrete tokens of a multi-rate codebook hierarchy (SNAC): one id tensor per level, each
    at its own frame rate.

    ``levels[l]`` is ``[B, N * (strides[0] // strides[l])]`` (coarse first); ``strides[l]`` is
    how many of the finest frames one id of level ``l`` spans (SNAC 24 kHz: ``(4, 2, 1)``).
    ``lengths[b]`` counts valid *coarsest* frames of item ``b`` (the time unit of
    :meth:`truncate`); :attr:`level_lengths` gives them per level. Padding is ``pad_id``. The API
    matches :class:`Tokens`: ``truncate``, ``codebooks(q)`` (first ``q`` levels), ``tokens[i]``,
    ``to_list``, ``check_range``, ``to`` and a one-line repr.

    Example:
        >>> import torch
        >>> t = MultiRateTokens(levels=[torch.zeros(2, 3, dtype=torch.long), torch.zeros(2, 6, dtype=torch.long),
        ...                             torch.zeros(2, 12, dtype=torch.long)], strides=(4, 2, 1), codebook_size=4096)
        >>> [x.shape[-1] for x in t.truncate([1, 2]).levels], [n.tolist() for n in t.truncate([1, 2]).level_lengths]
        ([2, 4, 8], [[1, 2], [2, 4], [4, 8]])
        >>> t.codebooks(2).strides, t.num_codebooks
        ((4, 2), 3)
    """

    levels: list[torch.Tensor]
    strides: tuple[int, ...]
    codebook_size: int
    tokenizer: str = ""
    lengths: torch.Tensor | None = None
    pad_id: int = 0
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if isinstance(self.levels, torch.Tensor) or not isinstance(self.levels, (list, tuple)) or not self.levels:
            raise InputTypeError("MultiRateTokens.levels must be a non-empty list of integer tensors [B, N_l]")
        self.levels = list(self.levels)
        try:
            self.strides = tuple(int(s) for s in self.strides)
        except (TypeError, ValueError):
            raise InputTypeError(f"MultiRateTokens.strides must be ints, got {self.strides!r}") from None
        if len(self.strides) != len(self.levels):
            raise TokenError(f"MultiRateTokens: {len(self.levels)} levels but {len(self.strides)} strides")
        top = self.strides[0]
        if any(s < 1 or top % s for s in self.strides):
            raise TokenError(f"MultiRateTokens.strides must be positive and divide the first (coarsest) one, got {self.strides}")
        for i, ids in enumerate(self.levels):
            if not isinstance(ids, torch.Tensor) or ids.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8):
                got = ids.dtype if isinstance(ids, torch.Tensor) else type(ids).__name__
                raise InputTypeError(f"MultiRateTokens.levels[{i}] must be an integer tensor, got {got}")
            if ids.dim() != 2 or ids.shape[0] != self.levels[0].shape[0]:
                raise TokenError(f"MultiRateTokens.levels[{i}] must be [B, N_l] with the batch of level 0, got {tuple(ids.shape)}")
        if isinstance(self.codebook_size, bool) or not isinstance(self.codebook_size, int) or self.codebook_size < 1:
            raise InputTypeError(f"MultiRateTokens.codebook_size must be a positive int, got {self.codebook_size!r}")
        if not isinstance(self.tokenizer, str):
            raise InputTypeError(f"MultiRateTokens.tokenizer must be a model name (str), got {type(self.tokenizer).__name__}")
        frames = self.levels[0].shape[1]
        for i, ids in enumerate(self.levels):
            if ids.shape[1] != frames * self.ratio(i):
                raise TokenError(f"MultiRateTokens.levels[{i}] has {ids.shape[1]} frames; with strides {self.strides} and "
                                 f"{frames} coarsest frames it needs {frames * self.ratio(i)}")
        if self.lengths is None:
            self.lengths = torch.full((self.batch_size,), frames, dtype=torch.long)
        lengths = torch.as_tensor(self.lengths)
        if lengths.is_floating_point() or lengths.is_complex() or lengths.dtype == torch.bool:
            raise InputTypeError(f"MultiRateTokens.lengths must hold integer counts, got {lengths.dtype}")
        self.lengths = lengths.to(dtype=torch.long).cpu()
        if self.lengths.shape != (self.batch_size,):
            raise TokenError(f"MultiRateTokens.lengths must be [B]={self.batch_size}, got {tuple(self.lengths.shape)}")
        if (self.lengths < 0).any() or (self.lengths > frames).any():
            raise TokenError(f"MultiRateTokens.lengths (coarsest frames) must lie in [0, {frames}], got {self.lengths.tolist()}")

    def ratio(self, level: int) -> int:
        """Ids of ``level`` per coarsest frame (``strides[0] // strides[level]``)."""
        return self.strides[0] // self.strides[level]

    def __len__(self) -> int:
        return self.levels[0].shape[0]

    @property
    def batch_size(self) -> int:
        return self.levels[0].shape[0]

    @property
    def max_length(self) -> int:
        """Coarsest frames of the longest item (the unit of ``lengths`` and ``truncate``)."""
        return self.levels[0].shape[1]

    @property
    def num_codebooks(self) -> int:
        """Number of levels."""
        return len(self.levels)

    @property
    def level_lengths(self) -> list[torch.Tensor]:
        """Valid ids per item for each level (``lengths * ratio(l)``)."""
        return [self.lengths * self.ratio(i) for i in range(self.num_codebooks)]

    def truncate(self, keep: int | Sequence[int] | torch.Tensor) -> "MultiRateTokens":
        """Keep the first ``keep`` coarsest frames of every item (an int, or one count per item) and
        the ids of every finer level that cover the same time; the rest becomes ``pad_id``."""
        keep_t = _keep_counts(keep, self.lengths)
        new_max = int(keep_t.max())
        levels = []
        for i, ids in enumerate(self.levels):
            r = self.ratio(i)
            cut = ids[:, : new_max * r].clone()
            pad = torch.arange(cut.shape[1], device=cut.device)[None, :] >= (keep_t * r).to(cut.device)[:, None]
            cut[pad] = self.pad_id
            levels.append(cut)
        return replace(self, levels=levels, lengths=keep_t)

    def codebooks(self, q: int) -> "MultiRateTokens":
        """Keep the first ``q`` levels (coarse first)."""
        _check_levels(q, self.num_codebooks)
        return replace(self, levels=self.levels[:q], strides=self.strides[:q], lengths=self.lengths.clone(), meta=dict(self.meta))

    def to_list(self) -> list[list[torch.Tensor]]:
        """Per item, its levels as ``[1, n_l]`` tensors (SNAC's own ``codes`` format at batch 1)."""
        return [[ids[b : b + 1, : int(n) * self.ratio(i)] for i, ids in enumerate(self.levels)]
                for b, n in enumerate(self.lengths)]

    def tolist(self) -> list[list[torch.Tensor]]:
        """Same as :meth:`to_list`."""
        return self.to_list()

    def __getitem__(self, index: int | slice | Sequence[int] | torch.Tensor) -> "MultiRateTokens":
        """Items of the batch (``tokens[0]`` has batch 1); padding no chosen item needs is dropped."""
        sel = _vt.batch_index(index, self.batch_size)
        lengths = self.lengths[sel]
        keep = int(lengths.max()) if lengths.numel() else self.max_length
        levels = [ids[sel][:, : keep * self.ratio(i)] for i, ids in enumerate(self.levels)]
        return replace(self, levels=levels, lengths=lengths, meta=_vt.select_meta(self.meta, sel, self.batch_size))

    def __repr__(self) -> str:
        shapes = "/".join(f"[{ids.shape[0]}, {ids.shape[1]}]" for ids in self.levels)
        first = self.levels[0]
        meta = f", meta={{{', '.join(sorted(self.meta))}}}" if self.meta else ""
        return (f"MultiRateTokens(tokenizer={self.tokenizer or '?'!r}, batch={self.batch_size}, levels={shapes} "
                f"{str(first.dtype).replace('torch.', '')} {first.device}, strides={','.join(map(str, self.strides))}, "
                f"lengths={_vt.lengths_summary(self.lengths)}, codebook={self.codebook_size}{meta})")

    def to(self, device: torch.device | str) -> "MultiRateTokens":
        """The same tokens on ``device`` (an unknown or absent device is an :class:`~zoo.errors.InputError`)."""
        _vt.check_device(device)
        return replace(self, levels=[ids.to(device) for ids in self.levels])

    def check_range(self) -> None:
        """Raise :class:`~zoo.errors.TokenError` if any valid id lies outside ``[0, codebook_size)``."""
        for i, (ids, lengths) in enumerate(zip(self.levels, self.level_lengths)):
            for b, n in enumerate(lengths.tolist()):
                item = ids[b, :n]
                if item.numel() and (int(item.min()) < 0 or int(item.max()) >= self.codebook_size):
                    raise TokenError(
                        f"token ids of item {b}, level {i} lie in [{int(item.min())}, {int(item.max())}] but the codebook "
                        f"has {self.codebook_size} entries (valid ids: 0..{self.codebook_size - 1})")


def as_multirate_tokens(tokens: "MultiRateTokens | Sequence[torch.Tensor]", codebook_size: int, strides: Sequence[int],
                        tokenizer: str = "") -> MultiRateTokens:
    """Accept :class:`MultiRateTokens` or a list of per-level ``[B, N_l]`` (or ``[N_l]``) id tensors
    (SNAC's ``codes``) and return range-checked :class:`MultiRateTokens` with the given ``strides``
    (fewer levels than ``strides`` are taken as the first ones: see :meth:`MultiRateTokens.codebooks`).

    Example:
        >>> import torch
        >>> as_multirate_tokens([torch.tensor([[1, 2]]), torch.tensor([[3, 4, 5]])], 8, strides=(4, 2))
        Traceback (most recent call last):
        zoo.errors.TokenError: MultiRateTokens.levels[1] has 3 frames; with strides (4, 2) and 2 coarsest frames it needs 4
        >>> as_multirate_tokens([torch.tensor([[1, 2]]), torch.tensor([[3, 4, 5, 6]])], 8, strides=(4, 2)).level_lengths
        [tensor([2]), tensor([4])]
    """
    strides = tuple(int(s) for s in strides)
    if isinstance(tokens, MultiRateTokens):
        out = tokens
        if not _same_tokenizer(out.tokenizer, tokenizer):
            raise TokenError(
                f"these tokens were made by {out.tokenizer!r}; this model is {tokenizer!r}, whose codebooks mean something "
                f"else. Decode them with zoo.load({out.tokenizer!r}), or pass the raw levels (tokens.levels)")
        if out.codebook_size != codebook_size:
            raise TokenError(f"tokens come from a codebook of {out.codebook_size} ({out.tokenizer or 'unknown'}), this model has {codebook_size}")
        if out.strides != strides[: out.num_codebooks]:
            raise TokenError(f"tokens have level strides {out.strides}; this model's levels have strides {strides}")
    elif isinstance(tokens, Tokens):
        raise TokenError(f"{tokens.tokenizer or 'these'} tokens have one frame rate; this model takes one id tensor per level at "
                         f"strides {strides} (MultiRateTokens or a list of [B, N_l] tensors)")
    elif isinstance(tokens, (list, tuple)):
        if not tokens:
            raise TokenError("no token levels given (an empty list)")
        if len(tokens) > len(strides):
            raise TokenError(f"{len(tokens)} levels given; this model has {len(strides)} (strides {strides})")
        levels = []
        for i, t in enumerate(tokens):
            if not isinstance(t, torch.Tensor) or t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
                raise InputTypeError(f"token level {i} must be an integer tensor [B, N_l]")
            levels.append((t[None] if t.dim() == 1 else t).long())
        out = MultiRateTokens(levels=levels, strides=strides[: len(levels)], codebook_size=codebook_size, tokenizer=tokenizer)
    else:
        raise InputTypeError(f"expected MultiRateTokens or a list of per-level tensors, got {type(tokens).__name__}")
    if out.batch_size == 0 or out.max_length == 0:
        raise TokenError("no tokens to decode (an empty batch or empty sequences)")
    if int(out.lengths.min()) < 1:
        raise TokenError(f"every item needs at least one valid frame, got lengths {out.lengths.tolist()}")
    out.check_range()
    return out


def _counts(keep: int | Sequence[int] | torch.Tensor) -> torch.Tensor:
    """``keep`` as a long tensor; fractional, bool or non-numeric counts are refused (not truncated)."""
    if isinstance(keep, (str, bytes)):
        raise InputTypeError(f"truncate: token counts must be ints, got {keep!r}")
    try:
        raw = torch.as_tensor(keep)
    except (TypeError, ValueError, RuntimeError):
        raise InputTypeError(f"truncate: token counts must be ints, got {keep!r}") from None
    if raw.is_floating_point() or raw.is_complex() or raw.dtype == torch.bool:
        raise InputTypeError(f"truncate: token counts must be ints, got {keep!r}")
    return raw.to(torch.long)


def _keep_counts(keep: int | Sequence[int] | torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """``keep`` as one count per item, each in ``[1, lengths[b]]``."""
    keep_t = _counts(keep).cpu()
    if keep_t.dim() == 0:
        keep_t = keep_t.expand(len(lengths))
    if keep_t.shape != lengths.shape:
        raise TokenError(f"truncate: need one count per item ({len(lengths)}), got {keep_t.tolist()}")
    if (keep_t < 1).any() or (keep_t > lengths).any():
        raise TokenError(f"truncate: counts must lie in [1, length] per item; lengths {lengths.tolist()}, asked {keep_t.tolist()}")
    return keep_t.clone()


@dataclass
class Latents:
    """Continuous tokens (a VAE-style tokenizer's output) with their valid lengths: the float
    sibling of :class:`Tokens`.

    ``values`` is ``[B, N, C]`` (N tokens of C channels), right-padded with zeros;
    ``lengths[b]`` tokens of item ``b`` are valid. ``truncate``, ``lengths``, ``max_length`` and
    ``to_list`` work as on :class:`Tokens`, so code that handles prefixes (``zoo reconstruct
    --tokens``) treats both alike; whether a model *decodes* a shorter prefix is the model's
    call (it raises a clear error when it only decodes the full length).

    Example:
        >>> import torch
        >>> z = Latents(values=torch.ones(2, 4, 3), tokenizer="demo.vae")
        >>> z.max_length, z.dim, z.truncate([1, 3]).lengths.tolist()
        (4, 3, [1, 3])
        >>> z.truncate([1, 3]).values[0, :, 0].tolist()  # dropped tokens are zeroed
        [1.0, 0.0, 0.0]
    """

    values: torch.Tensor
    tokenizer: str = ""
    lengths: torch.Tensor | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.values, torch.Tensor) or not self.values.is_floating_point():
            got = self.values.dtype if isinstance(self.values, torch.Tensor) else type(self.values).__name__
            raise InputTypeError(f"Latents.values must be a float tensor, got {got}")
        if self.values.dim() != 3:
            raise TokenError(f"Latents.values must be [B, N, C] (batch first), got shape {tuple(self.values.shape)}")
        if not isinstance(self.tokenizer, str):
            raise InputTypeError(f"Latents.tokenizer must be a model name (str), got {type(self.tokenizer).__name__}")
        if self.lengths is None:
            self.lengths = torch.full((self.values.shape[0],), self.values.shape[1], dtype=torch.long)
        lengths = torch.as_tensor(self.lengths)
        if lengths.is_floating_point() or lengths.is_complex() or lengths.dtype == torch.bool:
            raise InputTypeError(f"Latents.lengths must hold integer counts, got {lengths.dtype}")
        self.lengths = lengths.to(dtype=torch.long).cpu()
        if self.lengths.shape != (self.values.shape[0],):
            raise TokenError(f"Latents.lengths must be [B]={self.values.shape[0]}, got {tuple(self.lengths.shape)}")
        if (self.lengths < 0).any() or (self.lengths > self.values.shape[1]).any():
            raise TokenError(f"Latents.lengths must lie in [0, {self.values.shape[1]}], got {self.lengths.tolist()}")

    def __len__(self) -> int:
        return self.values.shape[0]

    @property
    def batch_size(self) -> int:
        return self.values.shape[0]

    @property
    def max_length(self) -> int:
        return self.values.shape[1]

    @property
    def dim(self) -> int:
        """Channels per token (C)."""
        return self.values.shape[2]

    def truncate(self, keep: int | Sequence[int] | torch.Tensor) -> "Latents":
        """Keep the first ``keep`` tokens of every item (an int, or one count per item); the
        rest are zeroed and ``values`` is cut to the longest kept prefix."""
        keep_t = _keep_counts(keep, self.lengths)
        new_max = int(keep_t.max())
        values = self.values[:, :new_max].clone()
        pad = torch.arange(new_max, device=values.device)[None, :] >= keep_t.to(values.device)[:, None]
        values[pad] = 0
        return replace(self, values=values, lengths=keep_t)

    def to_list(self) -> list[torch.Tensor]:
        """Per-item ``[1, length, C]`` tensors."""
        return [self.values[b : b + 1, : int(n)] for b, n in enumerate(self.lengths)]

    def tolist(self) -> list[torch.Tensor]:
        """Same as :meth:`to_list` (spelled like ``torch.Tensor.tolist``)."""
        return self.to_list()

    def __getitem__(self, index: int | slice | Sequence[int] | torch.Tensor) -> Latents:
        """Items of the batch as :class:`Latents` (``latents[0]`` has batch 1)."""
        sel = _vt.batch_index(index, self.batch_size)
        lengths = self.lengths[sel]
        keep = int(lengths.max()) if lengths.numel() else self.max_length
        return replace(self, values=self.values[sel][:, :keep], lengths=lengths,
                       meta=_vt.select_meta(self.meta, sel, self.batch_size))

    def __repr__(self) -> str:
        meta = f", meta={{{', '.join(sorted(self.meta))}}}" if self.meta else ""
        return (f"Latents(tokenizer={self.tokenizer or '?'!r}, batch={self.batch_size}, values={_vt.tensor_summary(self.values)}"
                f", lengths={_vt.lengths_summary(self.lengths)}, dim={self.dim}{meta})")

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> "Latents":
        """The same latents on ``device`` and/or in ``dtype`` (an unknown or absent device is an
        :class:`~zoo.errors.InputError`)."""
        _vt.check_device(device)
        return replace(self, values=self.values.to(device=device, dtype=dtype))


def as_latents(latents: "Latents | torch.Tensor | Sequence[torch.Tensor]", dim: int | None = None, tokenizer: str = "") -> Latents:
    """Accept ``Latents``, a float ``[B, N, C]`` (or ``[N, C]``) tensor, or a list of per-item
    ``[1, k, C]`` / ``[k, C]`` tensors (ragged allowed) and return :class:`Latents`, checking
    that every token has ``dim`` channels when ``dim`` is given.

    Example:
        >>> import torch
        >>> as_latents([torch.zeros(1, 3, 16), torch.zeros(2, 16)], dim=16).lengths.tolist()
        [3, 2]
    """
    if isinstance(latents, Latents):
        out = latents
        if not _same_tokenizer(out.tokenizer, tokenizer):
            raise TokenError(
                f"these latents were made by {out.tokenizer!r}; this model is {tokenizer!r}. Decode them with "
                f"zoo.load({out.tokenizer!r}), or pass the raw values (latents.values) if you know they fit"
            )
    elif isinstance(latents, torch.Tensor):
        if not latents.is_floating_point():
            raise InputTypeError(f"latents must be a float tensor [B, N, C], got {latents.dtype} (integer ids are Tokens)")
        out = Latents(values=latents[None] if latents.dim() == 2 else latents, tokenizer=tokenizer)
    elif isinstance(latents, (list, tuple)):
        if not latents:
            raise TokenError("no latent sequences given (an empty batch)")
        items = []
        for i, t in enumerate(latents):
            if not isinstance(t, torch.Tensor) or not t.is_floating_point():
                raise InputTypeError(f"latent sequence {i} must be a float tensor [1, k, C] or [k, C]")
            if t.dim() == 3 and t.shape[0] == 1:
                t = t[0]
            if t.dim() != 2 or t.shape[0] == 0:
                raise TokenError(f"latent sequence {i} must be [1, k, C] or [k, C] with k >= 1, got shape {tuple(t.shape)}")
            items.append(t)
        if len({t.shape[1] for t in items}) != 1:
            raise TokenError(f"latent sequences have different channel counts: {[t.shape[1] for t in items]}")
        lengths = torch.tensor([t.shape[0] for t in items])
        values = items[0].new_zeros(len(items), int(lengths.max()), items[0].shape[1])
        for i, t in enumerate(items):
            values[i, : len(t)] = t
        out = Latents(values=values, tokenizer=tokenizer, lengths=lengths)
    else:
        raise InputTypeError(f"expected Latents, a float tensor, or a list of tensors, got {type(latents).__name__}")
    if out.batch_size == 0 or out.max_length == 0:
        raise TokenError(f"no latents to decode: values have shape {tuple(out.values.shape)} (an empty batch or empty sequences)")
    if dim is not None and out.dim != dim:
        raise TokenError(f"latents have {out.dim} channels per token ({out.tokenizer or 'unknown'}), this tokenizer takes {dim}")
    if not bool(torch.isfinite(out.values).all()):
        raise TokenError("latents hold NaN or Inf values; encode finite inputs (check the images/audio for NaN)")
    return out

@runtime_checkable
class Tokenizer(Protocol):
    """Turns media into tokens and back: :class:`Tokens` for discrete tokenizers, :class:`Latents`
    for continuous ones."""

    def encode(self, x: Any, **kwargs: Any) -> Tokens | Latents: ...

    def decode(self, tokens: Tokens | Latents | torch.Tensor | Sequence[torch.Tensor], **kwargs: Any) -> Any: ...


@runtime_checkable
class Generator(Protocol):
    """Produces token sequences (and, by default, the decoded media) from a condition."""

    def generate(self, condition: Any, **kwargs: Any) -> Any: ...


@runtime_checkable
class ReducerHandle(Protocol):
    """Returned by :meth:`TokenReducer.apply`; ``remove()`` restores the original model exactly."""

    def remove(self) -> None: ...


@dataclass
class ReducedTokens:
    """Output of :meth:`TokenReducer.reduce`: kept (or merged) tokens, their source indices and
    how many original tokens each one stands for."""

    tokens: torch.Tensor
    indices: torch.Tensor
    sizes: torch.Tensor

    def __repr__(self) -> str:
        batch, kept = (self.tokens.shape[0], self.tokens.shape[1]) if self.tokens.dim() >= 2 else ("?", "?")
        sizes = self.sizes.detach().float()
        if sizes.numel():
            lo, hi = float(sizes.min()), float(sizes.max())
            per_item = float(sizes.flatten(1).sum(1).mean()) if sizes.dim() >= 2 else float(sizes.sum())
            size_text = f"{lo:g}" if lo == hi else f"{lo:g}..{hi:g}"
            size_text += f" (stand for {per_item:g} tokens per item)"
        else:
            size_text = "none"
        return (f"{type(self).__name__}(batch={batch}, kept={kept}, tokens={_vt.tensor_summary(self.tokens)}, "
                f"indices={_vt.tensor_summary(self.indices)}, sizes={size_text})")


@runtime_checkable
class TokenReducer(Protocol):
    """Cuts the number of tokens a transformer processes, without retraining."""

    def apply(self, model: torch.nn.Module, **schedule: Any) -> ReducerHandle: ...

    def reduce(self, tokens: torch.Tensor, **kwargs: Any) -> ReducedTokens: ...


@runtime_checkable
class LoadedModel(Protocol):
    """What every model ``zoo.load`` returns has besides its kind's methods
    (:class:`zoo.model.ZooModel`): its card, merged config and card name."""

    card: ModelCard
    config: Any

    @property
    def name(self) -> str: ...

    def num_parameters(self, trainable_only: bool = False) -> int: ...

    def module_tree(self) -> str: ...


@runtime_checkable
class LoadedTokenizer(LoadedModel, Tokenizer, Protocol):
    """A tokenizer as ``zoo.load`` returns it: ``encode`` / ``decode`` plus :class:`LoadedModel`."""


@runtime_checkable
class LoadedGenerator(LoadedModel, Generator, Protocol):
    """A generator as ``zoo.load`` returns it: ``generate`` plus :class:`LoadedModel`."""


@runtime_checkable
class LoadedReducer(LoadedModel, TokenReducer, Protocol):
    """A token reducer as ``zoo.load`` returns it: ``apply`` / ``reduce`` plus :class:`LoadedModel`."""


#: The return type of ``zoo.load``: narrow it with ``isinstance(model, zoo.interfaces.Tokenizer)``
#: (the protocols are runtime-checkable) or by the card's ``kind``.
Model = LoadedTokenizer | LoadedGenerator | LoadedReducer
