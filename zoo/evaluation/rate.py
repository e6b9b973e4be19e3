"""Bits per item: what a tokenizer's output costs to store, from its codebook sizes and token counts.

* discrete tokens (:class:`~zoo.interfaces.Tokens` ``[B, N]``): ``N_valid * log2(codebook_size)``;
* several codebooks (``[B, Q, N]``, e.g. residual VQ after ``codebooks(q)``): ``Q * N_valid * log2(codebook_size)``;
* multi-rate levels (:class:`~zoo.interfaces.MultiRateTokens`): the sum over levels of
  ``level_lengths[l] * log2(codebook_size)``;
* continuous latents (:class:`~zoo.interfaces.Latents` ``[B, N, C]``): ``N_valid * C * bits of the
  dtype`` (32 for float32): the raw size of the latents as the model returns them, not an
  entropy-coded rate; a tokenizer that returns a bare float tensor ``[B, C, h, w]`` is counted
  the same way (``C * h * w`` values per item, ``h * w`` positions as its tokens).

These are fixed-length code costs (every id costs ``log2`` of its codebook), the convention of
tokenizer papers; an entropy coder would spend fewer bits.

Example:
    >>> import torch
    >>> from zoo.interfaces import Tokens, Latents
    >>> t = Tokens(ids=torch.zeros(2, 4, dtype=torch.long), codebook_size=1024, lengths=torch.tensor([4, 2]))
    >>> bits_per_item(t).tolist()
    [40.0, 20.0]
    >>> bits_per_item(Latents(values=torch.zeros(1, 16, 4))).tolist()  # 16 tokens x 4 channels x 32 bits
    [2048.0]
"""

from __future__ import annotations

import math
from typing import Any

import torch

from zoo.errors import InputTypeError

__all__ = ["bits_per_item", "describe_rate", "token_kind", "tokens_per_item"]


def _dtype_bits(dtype: torch.dtype) -> int:
    return torch.finfo(dtype).bits if dtype.is_floating_point else torch.iinfo(dtype).bits


def token_kind(tokens: Any) -> str:
    """``"discrete"``, ``"multi-codebook"``, ``"multi-rate"`` or ``"continuous"``.

    Example:
        >>> import torch
        >>> from zoo.interfaces import Tokens
        >>> token_kind(Tokens(ids=torch.zeros(1, 8, 5, dtype=torch.long), codebook_size=1024))
        'multi-codebook'
    """
    from zoo.interfaces import Latents, MultiRateTokens, Tokens

    if isinstance(tokens, Latents):
        return "continuous"
    if isinstance(tokens, MultiRateTokens):
        return "multi-rate"
    if isinstance(tokens, Tokens):
        return "multi-codebook" if tokens.ids.dim() == 3 else "discrete"
    if isinstance(tokens, torch.Tensor) and tokens.is_floating_point() and tokens.dim() >= 2:
        return "continuous"
    raise InputTypeError(f"bits per item: expected Tokens, MultiRateTokens or Latents, got {type(tokens).__name__}")


def tokens_per_item(tokens: Any) -> torch.Tensor:
    """Valid token positions per item (``lengths``; the coarsest frames for multi-rate tokens;
    the positions ``h * w`` of a bare ``[B, C, h, w]`` latent tensor).

    Example:
        >>> import torch
        >>> tokens_per_item(torch.zeros(2, 16, 8, 8)).tolist()
        [64, 64]
    """
    token_kind(tokens)  # type check
    if isinstance(tokens, torch.Tensor):
        return torch.full((tokens.shape[0],), math.prod(tokens.shape[2:]), dtype=torch.long)
    return tokens.lengths.clone()


def bits_per_item(tokens: Any) -> torch.Tensor:
    """Bits each item of ``tokens`` costs (float64 ``[B]``); see the module docstring for the rules.

    Example:
        >>> import torch
        >>> from zoo.interfaces import MultiRateTokens
        >>> levels = [torch.zeros(1, 2, dtype=torch.long), torch.zeros(1, 4, dtype=torch.long)]
        >>> bits_per_item(MultiRateTokens(levels=levels, strides=(2, 1), codebook_size=4096)).tolist()  # (2 + 4) x 12
        [72.0]
    """
    kind = token_kind(tokens)
    if isinstance(tokens, torch.Tensor):
        return torch.full((tokens.shape[0],), float(math.prod(tokens.shape[1:]) * _dtype_bits(tokens.dtype)), dtype=torch.float64)
    if kind == "continuous":
        per_value = _dtype_bits(tokens.values.dtype)
        return tokens.lengths.to(torch.float64) * tokens.dim * per_value
    per_id = math.log2(tokens.codebook_size)
    if kind == "multi-rate":
        total = sum(n.to(torch.float64) for n in tokens.level_lengths)
        return total * per_id
    return tokens.lengths.to(torch.float64) * tokens.num_codebooks * per_id


def describe_rate(tokens: Any) -> str:
    """One sentence saying how :func:`bits_per_item` counted ``tokens`` (goes into reports).

    Example:
        >>> import torch
        >>> from zoo.interfaces import Tokens
        >>> describe_rate(Tokens(ids=torch.zeros(1, 4, dtype=torch.long), codebook_size=64000))
        'discrete: tokens x log2(64000) = 15.97 bits per token'
    """
    kind = token_kind(tokens)
    if isinstance(tokens, torch.Tensor):
        dtype = str(tokens.dtype).replace("torch.", "")
        return (f"continuous: a [B, {', '.join(map(str, tokens.shape[1:]))}] latent tensor, "
                f"{math.prod(tokens.shape[1:])} values x {_dtype_bits(tokens.dtype)} bits ({dtype} as returned; not entropy coded)")
    if kind == "continuous":
        bits = _dtype_bits(tokens.values.dtype)
        dtype = str(tokens.values.dtype).replace("torch.", "")
        return f"continuous: tokens x {tokens.dim} channels x {bits} bits ({dtype} as returned; not entropy coded)"
    per_id = math.log2(tokens.codebook_size)
    if kind == "multi-rate":
        return (f"multi-rate: ids over {tokens.num_codebooks} levels (strides {','.join(map(str, tokens.strides))}) "
                f"x log2({tokens.codebook_size}) = {per_id:.2f} bits per id")
    if kind == "multi-codebook":
        return f"multi-codebook: tokens x {tokens.num_codebooks} codebooks x log2({tokens.codebook_size}) = {per_id:.2f} bits per id"
    return f"discrete: tokens x log2({tokens.codebook_size}) = {per_id:.2f} bits per token"
