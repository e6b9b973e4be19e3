"""Binary tokens: a sigmoid-threshold quantizer and the maps between bits and integer ids.

A token of ``n`` bits is ``(sigmoid(logit) > 0.5)`` per channel (Instella-T2I's BAE; the same
as ``logit > 0``), a ``{0, 1}`` vector. Bits pack into ids most-significant-first in groups of at
most 62 bits (``bits_to_ids``: ``[..., n] -> [..., ceil(n / group)]``), so a 64-bit BAE token is two
32-bit ids by default and ``ids_to_bits`` inverts it exactly.

Example:
    >>> import torch
    >>> bits = torch.tensor([[1, 0, 1, 1, 0, 0, 1, 0]])
    >>> ids = bits_to_ids(bits, group=4)
    >>> ids.tolist()
    [[11, 2]]
    >>> torch.equal(ids_to_bits(ids, bits=8, group=4), bits)
    True
"""

from __future__ import annotations

import math

import torch
from torch import nn

from zoo.errors import InputError, TokenError

__all__ = ["binarize", "bits_to_ids", "ids_to_bits", "BinaryQuantizer"]

_MAX_GROUP = 62


def binarize(logits: torch.Tensor) -> torch.Tensor:
    """``(sigmoid(logits) > 0.5)`` as ``logits``' dtype (``{0., 1.}``); NaN logits map to 0.

    Example:
        >>> binarize(torch.tensor([-1.0, 0.0, 2.0])).tolist()
        [0.0, 0.0, 1.0]
    """
    return (torch.sigmoid(logits) > 0.5).to(logits.dtype)


def _check_group(bits: int, group: int) -> None:
    if not 1 <= group <= _MAX_GROUP:
        raise InputError(f"bit group must lie in 1..{_MAX_GROUP} (ids are int64), got {group}")
    if bits <= 0:
        raise InputError(f"a binary token needs at least one bit, got {bits}")


def bits_to_ids(bits: torch.Tensor, group: int = 32) -> torch.Tensor:
    """``[..., n]`` bits (0/1, any dtype) -> ``[..., ceil(n / group)]`` int64 ids, most significant bit first.

    The last group holds the remaining ``n % group`` bits when ``group`` does not divide ``n``.
    """
    n = bits.shape[-1]
    _check_group(n, group)
    b = bits.round().long() if bits.is_floating_point() else bits.long()
    if bool(((b != 0) & (b != 1)).any()):
        raise TokenError("bits must be 0 or 1")
    out = []
    for start in range(0, n, group):
        chunk = b[..., start:start + group]
        weights = 2 ** torch.arange(chunk.shape[-1] - 1, -1, -1, device=b.device, dtype=torch.long)
        out.append((chunk * weights).sum(-1))
    return torch.stack(out, dim=-1)


def ids_to_bits(ids: torch.Tensor, bits: int, group: int = 32) -> torch.Tensor:
    """The inverse of :func:`bits_to_ids`: ``[..., ceil(bits / group)]`` ids -> ``[..., bits]`` int64 bits."""
    _check_group(bits, group)
    groups = math.ceil(bits / group)
    if ids.is_floating_point() or ids.shape[-1] != groups:
        raise TokenError(f"{bits}-bit tokens in groups of {group} are {groups} integer ids each, got "
                         f"{ids.dtype} ids of shape {tuple(ids.shape)}")
    out = []
    for g in range(groups):
        width = min(group, bits - g * group)
        v = ids[..., g].long()
        if bool(((v < 0) | (v >= 2 ** width)).any()):
            raise TokenError(f"id group {g} must lie in [0, 2**{width}), got values in "
                             f"[{int(v.min())}, {int(v.max())}]")
        shifts = torch.arange(width - 1, -1, -1, device=v.device, dtype=torch.long)
        out.append((v[..., None] >> shifts) & 1)
    return torch.cat(out, dim=-1)


class BinaryQuantizer(nn.Module):
    """Logits ``proj(h)`` -> bits by a sigmoid threshold -> ``bits @ embed`` (Instella-T2I's
    ``BinaryQuantizer`` at inference: deterministic, no straight-through noise).

    Keys: ``proj.weight``/``proj.bias`` (``[bits, dim]``), ``embed`` (``[bits, dim]``).

    Example:
        >>> q = BinaryQuantizer(bits=8, dim=4)
        >>> z, bits = q(torch.randn(2, 3, 4))
        >>> z.shape, bits.shape, sorted(set(bits.flatten().tolist())) <= [0.0, 1.0]
        (torch.Size([2, 3, 4]), torch.Size([2, 3, 8]), True)
    """

    def __init__(self, bits: int, dim: int):
        super().__init__()
        self.bits = bits
        self.proj = nn.Linear(dim, bits)
        self.embed = nn.Parameter(torch.zeros(bits, dim))

    def logits(self, h: torch.Tensor) -> torch.Tensor:
        """The pre-threshold logits ``[..., bits]``."""
        return self.proj(h)

    def embed_bits(self, bits: torch.Tensor) -> torch.Tensor:
        """``[..., bits]`` 0/1 values -> ``[..., dim]`` (``bits @ embed``)."""
        if bits.shape[-1] != self.bits:
            raise TokenError(f"expected {self.bits} bits per token, got {bits.shape[-1]}")
        return torch.matmul(bits.to(self.embed.dtype), self.embed)

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``h`` ``[..., dim]`` -> ``(bits @ embed, bits)``."""
        bits = binarize(self.logits(h))
        return self.embed_bits(bits), bits
