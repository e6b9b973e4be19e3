"""Attention maps for the policies that read them, with bounded memory.

ToMe reads keys and DiffRate / EViT one class-attention row, so their adapters never build an
``N x N`` map. MCTF's one-step-ahead attention needs two things from the full map: the mean
attention each token receives (to plan), and the map with its keys summed and its queries
averaged, applied to the merged values. Both are computed here in query chunks of at most
:data:`MAX_MAP_BYTES` of logits: column sums are accumulated chunk by chunk, and since merging
is linear, ``merge_queries(merge_keys(P) @ v)`` replaces ``merge_attention(P) @ v`` so only a
``[B, H, N, Dh]`` output is kept between chunks. When the whole map fits, it is computed once
and reused (no second pass).

Example:
    >>> import torch
    >>> q = k = torch.randn(2, 3, 10, 4)
    >>> col, probs = column_means(q, k, 0.5, None, max_bytes=2 * 3 * 2 * 10 * 4)  # chunks of 2 queries
    >>> probs is None, torch.allclose(col, (q @ k.transpose(-1, -2) * 0.5).softmax(-1).mean(dim=[1, 2]))
    (True, True)
"""

from __future__ import annotations

import torch

from ..types import Plan

__all__ = ["MAX_MAP_BYTES", "column_means", "merged_attention", "rows_per_chunk"]

#: Largest block of attention logits materialised at once (bytes); larger maps go in query chunks.
MAX_MAP_BYTES = 64 * 2**20


def rows_per_chunk(b: int, h: int, n_k: int, itemsize: int = 4, max_bytes: int | None = None) -> int:
    """How many query rows of a ``[B, H, rows, n_k]`` float map fit in ``max_bytes`` (at least 1)."""
    budget = MAX_MAP_BYTES if max_bytes is None else max_bytes
    return max(1, budget // max(1, b * h * n_k * itemsize))


def _probs(q: torch.Tensor, k: torch.Tensor, scale: float, bias: torch.Tensor | None) -> torch.Tensor:
    logits = (q @ k.transpose(-2, -1)) * scale
    if bias is not None:
        logits = logits + bias.to(logits.dtype)
    return logits.softmax(dim=-1)


def _bias_rows(bias: torch.Tensor | None, start: int, stop: int) -> torch.Tensor | None:
    if bias is None or bias.shape[-2] == 1:
        return bias
    return bias[..., start:stop, :]


def column_means(q: torch.Tensor, k: torch.Tensor, scale: float, bias: torch.Tensor | None,
                 max_bytes: int | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``([B, N] mean attention each key receives, full probabilities or None)``: the full
    ``[B, H, N, N]`` map is returned only when it fits in one chunk."""
    b, h, n, _ = q.shape
    rows = rows_per_chunk(b, h, k.shape[-2], q.element_size(), max_bytes)
    if rows >= n:
        probs = _probs(q, k, scale, bias)
        return probs.mean(dim=[1, 2]), probs
    acc = None
    for start in range(0, n, rows):
        stop = min(n, start + rows)
        part = _probs(q[:, :, start:stop], k, scale, _bias_rows(bias, start, stop)).sum(dim=2)
        acc = part if acc is None else acc + part
    return acc.sum(dim=1) / (h * n), None


def merged_attention(q: torch.Tensor, k: torch.Tensor, scale: float, bias: torch.Tensor | None,
                     probs: torch.Tensor | None, plan: Plan, size: torch.Tensor | None, v: torch.Tensor,
                     max_bytes: int | None = None) -> torch.Tensor:
    """One-step-ahead attention ``[B, H, N_out, Dh]``: the unmerged map (``probs``, or recomputed
    chunk by chunk from ``q``/``k``) with keys summed and queries averaged by ``plan``, applied
    to the merged values ``v`` ``[B, H, N_out, Dh]``; ``size`` are the sizes before merging."""
    if plan.merge_keys is None or plan.merge_queries is None:  # a policy that only merges whole maps
        full = probs if probs is not None else _probs(q, k, scale, bias)
        return plan.merge_attention(full, size).to(v.dtype) @ v
    if probs is not None:
        out = plan.merge_keys(probs).to(v.dtype) @ v
    else:
        b, h, n, _ = q.shape
        rows = rows_per_chunk(b, h, k.shape[-2], q.element_size(), max_bytes)
        out = torch.cat([plan.merge_keys(_probs(q[:, :, s:s + rows], k, scale, _bias_rows(bias, s, s + rows))).to(v.dtype) @ v
                         for s in range(0, n, rows)], dim=2)
    return plan.merge_queries(out, size)

