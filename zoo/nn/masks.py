"""Attention mask types understood by every attention backend.

A mask says which keys each query may attend to. Backends lower a mask to what their kernel
takes (SDPA: ``is_causal`` or a boolean/additive tensor; xformers: its attention-bias objects;
math: an additive tensor). ``to_dense`` is the ground truth every lowering must agree with.

Example:
    >>> import torch
    >>> from zoo.nn.masks import CausalMask, KeyPaddingMask
    >>> CausalMask().to_dense(1, 3, 3).squeeze().int().tolist()
    [[1, 0, 0], [1, 1, 0], [1, 1, 1]]
    >>> KeyPaddingMask(torch.tensor([2])).to_dense(1, 1, 3).squeeze().tolist()
    [True, True, False]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from zoo.errors import InputError, InputTypeError

__all__ = [
    "Mask",
    "CausalMask",
    "KeyPaddingMask",
    "BlockDiagonalMask",
    "DenseMask",
    "AdditiveBias",
    "as_additive",
]


class Mask:
    """Base class: a description of which keys every query may see."""

    def to_dense(self, batch: int, q_len: int, k_len: int, device: torch.device | str = "cpu") -> torch.Tensor:
        """Boolean tensor ``[B or 1, H or 1, q_len, k_len]``; True means "may attend"."""
        raise NotImplementedError

    def check(self, batch: int, q_len: int, k_len: int) -> None:
        """Raise ``ValueError`` if the mask cannot apply to these sizes."""


@dataclass(frozen=True)
class CausalMask(Mask):
    """Query ``i`` sees keys ``j <= i + offset``; with ``q_len < k_len`` the queries are the last
    ``q_len`` positions (bottom-right aligned, as in a KV-cached decode step) unless ``offset``
    is given explicitly."""

    offset: int | None = None

    def _offset(self, q_len: int, k_len: int) -> int:
        return (k_len - q_len) if self.offset is None else self.offset

    def to_dense(self, batch: int, q_len: int, k_len: int, device: torch.device | str = "cpu") -> torch.Tensor:
        i = torch.arange(q_len, device=device)[:, None]
        j = torch.arange(k_len, device=device)[None, :]
        return (j <= i + self._offset(q_len, k_len))[None, None]


class KeyPaddingMask(Mask):
    """Per-sample valid key lengths: sample ``b`` sees keys ``[0, lengths[b])``.

    Args:
        lengths: ``[B]`` integer tensor of valid lengths, or a ``[B, k_len]`` boolean tensor
            (True = valid key).
        causal: combine with a (bottom-right aligned) causal mask.
    """

    def __init__(self, lengths: torch.Tensor, causal: bool = False):
        if lengths.dtype == torch.bool:
            if lengths.dim() != 2:
                raise InputError(f"KeyPaddingMask: a boolean mask must be [B, k_len], got {tuple(lengths.shape)}")
            self.valid = lengths
            self.lengths = None
        else:
            if lengths.dim() != 1:
                raise InputError(f"KeyPaddingMask: lengths must be [B], got {tuple(lengths.shape)}")
            self.valid = None
            self.lengths = lengths.long()
        self.causal = causal

    def check(self, batch: int, q_len: int, k_len: int) -> None:
        n = (self.valid if self.valid is not None else self.lengths).shape[0]
        if n != batch:
            raise InputError(f"KeyPaddingMask has {n} rows but the batch has {batch}")
        if self.valid is not None and self.valid.shape[1] != k_len:
            raise InputError(f"KeyPaddingMask covers {self.valid.shape[1]} keys but there are {k_len}")

    def key_valid(self, k_len: int, device: torch.device | str) -> torch.Tensor:
        if self.valid is not None:
            return self.valid.to(device)
        return torch.arange(k_len, device=device)[None, :] < self.lengths.to(device)[:, None]

    def to_dense(self, batch: int, q_len: int, k_len: int, device: torch.device | str = "cpu") -> torch.Tensor:
        m = self.key_valid(k_len, device)[:, None, None, :].expand(-1, 1, q_len, -1)
        if self.causal:
            m = m & CausalMask().to_dense(batch, q_len, k_len, device)
        return m


class BlockDiagonalMask(Mask):
    """Packed variable-length sequences along one axis (batch must be 1): tokens attend only
    within their own segment.

    Args:
        q_seqlens: length of each packed query segment.
        k_seqlens: length of each key segment (defaults to ``q_seqlens``).
        causal: causal within each segment (bottom-right aligned per segment).
    """

    def __init__(self, q_seqlens: Sequence[int], k_seqlens: Sequence[int] | None = None, causal: bool = False):
        self.q_seqlens = [int(s) for s in q_seqlens]
        self.k_seqlens = [int(s) for s in (k_seqlens if k_seqlens is not None else q_seqlens)]
        if len(self.q_seqlens) != len(self.k_seqlens):
            raise InputError("BlockDiagonalMask: q_seqlens and k_seqlens need the same number of segments")
        self.causal = causal

    def check(self, batch: int, q_len: int, k_len: int) -> None:
        if batch != 1:
            raise InputError(f"BlockDiagonalMask packs sequences into batch 1, got batch {batch}")
        if sum(self.q_seqlens) != q_len or sum(self.k_seqlens) != k_len:
            raise InputError(
                f"BlockDiagonalMask segments sum to {sum(self.q_seqlens)}x{sum(self.k_seqlens)} "
                f"but the packed sequences are {q_len}x{k_len}"
            )

    def to_dense(self, batch: int, q_len: int, k_len: int, device: torch.device | str = "cpu") -> torch.Tensor:
        m = torch.zeros(q_len, k_len, dtype=torch.bool, device=device)
        q0 = k0 = 0
        for ql, kl in zip(self.q_seqlens, self.k_seqlens):
            block = torch.ones(ql, kl, dtype=torch.bool, device=device)
            if self.causal:
                block = CausalMask().to_dense(1, ql, kl, device)[0, 0]
            m[q0 : q0 + ql, k0 : k0 + kl] = block
            q0 += ql
            k0 += kl
        return m[None, None]


class DenseMask(Mask):
    """An explicit boolean mask broadcastable to ``[B, H, q_len, k_len]`` (True = attend)."""

    def __init__(self, mask: torch.Tensor):
        if mask.dtype != torch.bool:
            raise InputTypeError(f"DenseMask needs a boolean tensor (True = attend), got {mask.dtype}; use AdditiveBias for float biases")
        while mask.dim() < 4:
            mask = mask.unsqueeze(0)
        self.mask = mask

    def check(self, batch: int, q_len: int, k_len: int) -> None:
        _check_broadcast("DenseMask", self.mask.shape, batch, q_len, k_len)

    def to_dense(self, batch: int, q_len: int, k_len: int, device: torch.device | str = "cpu") -> torch.Tensor:
        return self.mask.to(device)


class AdditiveBias(Mask):
    """A float bias added to the attention logits, broadcastable to ``[B, H, q_len, k_len]``
    (e.g. ToMe's proportional attention ``log(size)``); ``-inf`` entries mask keys out."""

    def __init__(self, bias: torch.Tensor):
        if not bias.is_floating_point():
            raise InputTypeError(f"AdditiveBias needs a floating tensor, got {bias.dtype}; use DenseMask for boolean masks")
        while bias.dim() < 4:
            bias = bias.unsqueeze(0)
        self.bias = bias

    def check(self, batch: int, q_len: int, k_len: int) -> None:
        _check_broadcast("AdditiveBias", self.bias.shape, batch, q_len, k_len)

    def to_dense(self, batch: int, q_len: int, k_len: int, device: torch.device | str = "cpu") -> torch.Tensor:
        return torch.isfinite(self.bias.to(device))


def _check_broadcast(name: str, shape: torch.Size, batch: int, q_len: int, k_len: int) -> None:
    want = (batch, None, q_len, k_len)
    for dim, (have, need) in enumerate(zip(shape, want)):
        if need is not None and have not in (1, need):
            raise InputError(f"{name} of shape {tuple(shape)} does not broadcast to [B={batch}, H, {q_len}, {k_len}] (dim {dim})")


def as_additive(mask: Mask | None, batch: int, q_len: int, k_len: int, dtype: torch.dtype,
                device: torch.device | str) -> torch.Tensor | None:
    """Lower any mask to a float tensor added to the logits (0 = attend, -inf = masked)."""
    if mask is None:
        return None
    if isinstance(mask, AdditiveBias):
        return mask.bias.to(device=device, dtype=dtype)
    allowed = mask.to_dense(batch, q_len, k_len, device)
    bias = torch.zeros(allowed.shape, dtype=dtype, device=device)
    return bias.masked_fill_(~allowed, float("-inf"))
