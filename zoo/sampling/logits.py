"""Logits processors and random draws for token sampling.

Every random function takes a ``torch.Generator``; pass a seeded one to reproduce a draw. With
``None`` a fresh, randomly seeded generator is used: torch's global RNG is never touched.
Deterministic processors take no generator. All processors work on ``[..., V]`` logits and
return new tensors (inputs are never modified in place).

Example:
    >>> import torch
    >>> g = torch.Generator().manual_seed(0)
    >>> logits = torch.tensor([[2.0, 1.0, 0.0, -1.0]])
    >>> top_k(logits, 2).isinf().tolist()
    [[False, False, True, True]]
    >>> sample(logits, g, temperature=0.0).tolist()   # temperature 0 = greedy
    [[0]]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch

from zoo.errors import InputError

__all__ = [
    "temperature_scale",
    "top_k",
    "top_p",
    "min_p",
    "repetition_penalty",
    "gumbel_noise",
    "add_gumbel_noise",
    "sample",
    "SamplerSettings",
    "own_generator",
]

_NEG_INF = float("-inf")


def own_generator(generator: Optional[torch.Generator], device: torch.device | str | None = None) -> torch.Generator:
    """``generator``, or a new randomly seeded one on ``device`` (never the global RNG).

    Example:
        >>> g = torch.Generator().manual_seed(1)
        >>> own_generator(g) is g
        True
    """
    if generator is not None:
        return generator
    g = torch.Generator(device=torch.device(device) if device is not None else "cpu")
    g.seed()
    return g


def temperature_scale(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """``logits / temperature`` (``temperature > 0``).

    Example:
        >>> temperature_scale(torch.tensor([2.0]), 2.0).tolist()
        [1.0]
    """
    if temperature <= 0:
        raise InputError(f"temperature must be > 0 for scaling, got {temperature} (use temperature=0 in sample() for greedy)")
    return logits / temperature


def top_k(logits: torch.Tensor, k: int) -> torch.Tensor:
    """Keep the ``k`` largest logits per row (ties at the k-th value are kept), set the rest to -inf.

    Example:
        >>> top_k(torch.tensor([1.0, 3.0, 2.0]), 1).tolist()
        [-inf, 3.0, -inf]
    """
    if k <= 0 or k >= logits.shape[-1]:
        return logits
    kth = torch.topk(logits, k, dim=-1).values[..., -1:]
    return logits.masked_fill(logits < kth, _NEG_INF)


def top_p(logits: torch.Tensor, p: float, min_keep: int = 1) -> torch.Tensor:
    """Nucleus filtering: keep the smallest set of tokens whose probability mass reaches ``p``
    (the token that crosses ``p`` is kept; at least ``min_keep`` tokens).

    Example:
        >>> top_p(torch.log(torch.tensor([0.5, 0.3, 0.2])), 0.6).isinf().tolist()
        [False, False, True]
    """
    if p >= 1.0:
        return logits
    if p <= 0:
        raise InputError(f"top_p must lie in (0, 1], got {p}")
    sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
    cum = sorted_logits.float().softmax(dim=-1).cumsum(dim=-1)
    remove = (cum - sorted_logits.float().softmax(dim=-1)) >= p  # mass before this token already >= p
    remove[..., :min_keep] = False
    mask = torch.zeros_like(remove).scatter(-1, order, remove)
    return logits.masked_fill(mask, _NEG_INF)


def min_p(logits: torch.Tensor, p: float) -> torch.Tensor:
    """Keep tokens whose probability is at least ``p`` times the top token's probability.

    Example:
        >>> min_p(torch.log(torch.tensor([0.6, 0.3, 0.1])), 0.4).isinf().tolist()
        [False, False, True]
    """
    if p <= 0:
        return logits
    logp = logits.float().log_softmax(dim=-1)
    thresh = logp.max(dim=-1, keepdim=True).values + torch.log(torch.tensor(p, dtype=logp.dtype, device=logp.device))
    return logits.masked_fill(logp < thresh, _NEG_INF)


def repetition_penalty(
    logits: torch.Tensor,
    history: torch.Tensor,
    penalty: float,
    window: Optional[int] = None,
    history_mask: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """CTRL-style repetition penalty over the last ``window`` ids of ``history`` (vectorised).

    Tokens that occur in the window get ``logit / penalty`` if positive, ``logit * penalty`` if
    negative (each token once, however often it occurs). ``logits``: ``[B, V]``; ``history``:
    ``[B, L]`` ids; ``history_mask`` ``[B, L]`` (True = valid) excludes padding.

    Example:
        >>> repetition_penalty(torch.tensor([[2.0, -2.0, 1.0]]), torch.tensor([[0, 1, 0]]), 2.0).tolist()
        [[1.0, -4.0, 1.0]]
    """
    if penalty == 1.0 or history.numel() == 0:
        return logits
    if penalty <= 0:
        raise InputError(f"repetition penalty must be > 0, got {penalty}")
    if window is not None and window > 0:
        history = history[:, -window:]
        if history_mask is not None:
            history_mask = history_mask[:, -window:]
    hit = torch.zeros_like(logits, dtype=torch.bool)
    if history_mask is None:
        hit.scatter_(-1, history.long(), True)
    else:
        hist = torch.where(history_mask, history.long(), torch.zeros_like(history.long()))
        src = history_mask.to(torch.bool)
        hit = hit.scatter_reduce(-1, hist, src, reduce="amax")
    penalised = torch.where(logits > 0, logits / penalty, logits * penalty)
    return torch.where(hit, penalised, logits)


def gumbel_noise(shape: tuple[int, ...] | torch.Size, generator: Optional[torch.Generator], *,
                 device: torch.device | str | None = None, dtype: torch.dtype = torch.float32, eps: float = 1e-20) -> torch.Tensor:
    """Standard Gumbel noise ``-log(-log(u))`` from ``u ~ U[0, 1)`` drawn with ``generator``
    (both logs clamped at ``eps``, as MaskGIT/MUSE implementations do).

    The draw is ``torch.rand(shape, generator=generator)``, so a seeded generator reproduces a
    reference that calls ``torch.zeros_like(t).uniform_(0, 1)`` on the same stream.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> gumbel_noise((2, 3), g).shape
        torch.Size([2, 3])
    """
    u = torch.rand(shape, generator=own_generator(generator, device), device=device, dtype=dtype)
    return -torch.log((-torch.log(u.clamp(min=eps))).clamp(min=eps))


def add_gumbel_noise(logits: torch.Tensor, temperature: float, generator: Optional[torch.Generator]) -> torch.Tensor:
    """``logits + temperature * gumbel`` (noise drawn in float32 with ``logits``' shape).

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> add_gumbel_noise(torch.zeros(3), 0.0, g).tolist()
        [0.0, 0.0, 0.0]
    """
    noise = gumbel_noise(logits.shape, generator, device=logits.device, dtype=torch.float32)
    return logits + temperature * noise


@dataclass(frozen=True)
class SamplerSettings:
    """Token sampling settings; ``apply`` runs the processors in a fixed order:
    repetition penalty -> temperature -> top-k -> top-p -> min-p.

    ``temperature == 0`` means greedy (argmax).
    """

    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    min_p: float = 0.0
    repetition_penalty: float = 1.0
    repetition_window: Optional[int] = None

    def apply(self, logits: torch.Tensor, history: Optional[torch.Tensor] = None, history_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        if history is not None and self.repetition_penalty != 1.0:
            logits = repetition_penalty(logits, history, self.repetition_penalty, self.repetition_window, history_mask)
        if self.temperature > 0 and self.temperature != 1.0:
            logits = temperature_scale(logits, self.temperature)
        if self.top_k:
            logits = top_k(logits, self.top_k)
        if self.top_p < 1.0:
            logits = top_p(logits, self.top_p)
        if self.min_p > 0:
            logits = min_p(logits, self.min_p)
        return logits


def sample(
    logits: torch.Tensor,
    generator: Optional[torch.Generator],
    *,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    min_p: float = 0.0,
) -> torch.Tensor:
    """Draw one id per row of ``[B, V]`` logits: ``torch.multinomial(softmax(processed), 1,
    generator=generator)`` -> ``[B, 1]``; ``temperature=0`` is greedy (no draw).

    The multinomial draw is the one reference AR samplers use, so a generator seeded like the
    reference's global RNG reproduces its ids.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> sample(torch.tensor([[0.0, 50.0]]), g).tolist()
        [[1]]
    """
    if logits.dim() != 2:
        raise InputError(f"sample expects [B, V] logits, got {tuple(logits.shape)}")
    if temperature == 0:
        return logits.argmax(dim=-1, keepdim=True)
    logits = SamplerSettings(temperature=temperature, top_k=top_k, top_p=top_p, min_p=min_p).apply(logits)
    probs = torch.softmax(logits.float(), dim=-1)
    return torch.multinomial(probs, 1, generator=own_generator(generator, probs.device))
