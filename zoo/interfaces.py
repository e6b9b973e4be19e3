"""The shared interface: Tokenizer / Generator / TokenReducer protocols and the Tokens type.

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
from typing import Any, Protocol, Sequence, runtime_checkable

import torch

__all__ = ["Tokens", "Tokenizer", "Generator", "TokenReducer", "ReducerHandle", "ReducedTokens", "as_tokens"]


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
        if self.ids.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8):
            raise TypeError(f"Tokens.ids must be an integer tensor, got {self.ids.dtype}")
        if self.ids.dim() < 2:
            raise ValueError(f"Tokens.ids must be [B, N] (batch first), got shape {tuple(self.ids.shape)}")
        if self.lengths is None:
            self.lengths = torch.full((self.ids.shape[0],), self.ids.shape[-1], dtype=torch.long)
        self.lengths = torch.as_tensor(self.lengths, dtype=torch.long).cpu()
        if self.lengths.shape != (self.ids.shape[0],):
            raise ValueError(f"Tokens.lengths must be [B]={self.ids.shape[0]}, got {tuple(self.lengths.shape)}")
        if (self.lengths < 0).any() or (self.lengths > self.ids.shape[-1]).any():
            raise ValueError(f"Tokens.lengths must lie in [0, {self.ids.shape[-1]}], got {self.lengths.tolist()}")

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
        keep_t = torch.as_tensor(keep, dtype=torch.long)
        if keep_t.dim() == 0:
            keep_t = keep_t.expand(self.batch_size)
        if keep_t.shape != (self.batch_size,):
            raise ValueError(f"truncate: need one count per item ({self.batch_size}), got {keep_t.tolist()}")
        if (keep_t < 1).any() or (keep_t > self.lengths).any():
            raise ValueError(f"truncate: counts must lie in [1, length] per item; lengths {self.lengths.tolist()}, asked {keep_t.tolist()}")
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

    def to(self, device: torch.device | str) -> "Tokens":
        return replace(self, ids=self.ids.to(device))

    def check_range(self) -> None:
        """Raise ValueError if any valid id lies outside ``[0, codebook_size)``."""
        for b, n in enumerate(self.lengths.tolist()):
            item = self.ids[b, ..., :n]
            if item.numel() and (int(item.min()) < 0 or int(item.max()) >= self.codebook_size):
                raise ValueError(
                    f"token ids of item {b} lie in [{int(item.min())}, {int(item.max())}] but the codebook has "
                    f"{self.codebook_size} entries (valid ids: 0..{self.codebook_size - 1})"
                )


def as_tokens(tokens: "Tokens | torch.Tensor | Sequence[torch.Tensor]", codebook_size: int, tokenizer: str = "") -> Tokens:
    """Accept ``Tokens``, a ``[B, N]`` tensor, or a list of per-item ``[1, k]``/``[k]`` tensors
    (ragged allowed) and return range-checked :class:`Tokens`.

    Example:
        >>> import torch
        >>> as_tokens([torch.tensor([[1, 2, 3]]), torch.tensor([[4]])], 10).lengths.tolist()
        [3, 1]
    """
    if isinstance(tokens, Tokens):
        out = tokens
        if out.codebook_size != codebook_size:
            raise ValueError(f"tokens come from a codebook of {out.codebook_size} ({out.tokenizer or 'unknown'}), this tokenizer has {codebook_size}")
    elif isinstance(tokens, torch.Tensor):
        if tokens.is_floating_point() or tokens.is_complex() or tokens.dtype == torch.bool:
            raise TypeError(f"token ids must be an integer tensor, got {tokens.dtype}")
        if tokens.dim() == 1:
            tokens = tokens[None]
        out = Tokens(ids=tokens.long(), codebook_size=codebook_size, tokenizer=tokenizer)
    elif isinstance(tokens, (list, tuple)):
        if not tokens:
            raise ValueError("no token sequences given")
        items = []
        for i, t in enumerate(tokens):
            t = torch.as_tensor(t)
            if t.is_floating_point() or t.dtype == torch.bool:
                raise TypeError(f"token sequence {i} must hold integer ids, got {t.dtype}")
            if t.dim() == 2 and t.shape[0] == 1:
                t = t[0]
            if t.dim() != 1 or t.numel() == 0:
                raise ValueError(f"token sequence {i} must be [1, k] or [k] with k >= 1, got shape {tuple(t.shape)}")
            items.append(t.long())
        lengths = torch.tensor([len(t) for t in items])
        ids = torch.zeros(len(items), int(lengths.max()), dtype=torch.long, device=items[0].device)
        for i, t in enumerate(items):
            ids[i, : len(t)] = t
        out = Tokens(ids=ids, codebook_size=codebook_size, tokenizer=tokenizer, lengths=lengths)
    else:
        raise TypeError(f"expected Tokens, a tensor, or a list of tensors, got {type(tokens).__name__}")
    out.check_range()
    return out


@runtime_checkable
class Tokenizer(Protocol):
    """Turns media into tokens and back."""

    def encode(self, x: Any, **kwargs: Any) -> Tokens: ...

    def decode(self, tokens: Tokens | torch.Tensor | Sequence[torch.Tensor], **kwargs: Any) -> Any: ...


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


@runtime_checkable
class TokenReducer(Protocol):
    """Cuts the number of tokens a transformer processes, without retraining."""

    def apply(self, model: torch.nn.Module, **schedule: Any) -> ReducerHandle: ...

    def reduce(self, tokens: torch.Tensor, **kwargs: Any) -> ReducedTokens: ...
