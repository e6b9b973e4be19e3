"""MMTok (Dong et al., 2025): keep the visual tokens that best *cover* both the text tokens and
the visual tokens, by greedy maximisation of a coverage function.

Two similarity tables are turned into coverage tables by a softmax over the candidate visual
tokens (rows: what must be covered, columns: candidates):

* text to vision, ``P[t, j] = softmax_j(cos(text_t, token_j) / text_temperature) / T``;
* vision to vision, ``Q[i, j] = softmax_j(cos(v_i, v_j) / vision_temperature) / N``, where ``v``
  are the vision features used for diversity (the encoder's features before the projector in the
  paper; the tokens themselves by default).

Stacking ``C = [P; alpha * Q]``, the greedy loop picks, ``keep`` times, the candidate ``j`` with
the largest gain ``sum_r max(0, C[r, j] - best[r])`` and then sets ``best = max(best, C[:, j])``
(``best`` starts at 0; ties go to the lowest position; a picked or excluded token is never
picked again). Kept indices are returned in ascending order. Batched: every sample has its own
text (padded text rows, ``text_mask`` False, cover nothing and do not count in ``T``).

Example:
    >>> import torch
    >>> tokens = torch.tensor([[[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [-1.0, 0.2]]])
    >>> text = torch.tensor([[[0.0, 1.0]]])                     # the text talks about token 2
    >>> mmtok_select(tokens, text, 1).tolist()
    [[2]]
"""

from __future__ import annotations

import torch

from ..checks import check_real
from ..types import ReducedTokens, ReducerError
from .divprune import resolve_keep

__all__ = ["coverage_table", "mmtok_reduce", "mmtok_select"]


def _unit(x: torch.Tensor) -> torch.Tensor:
    return x / x.norm(dim=-1, keepdim=True).clamp(min=1e-8)


def _check_text(text: torch.Tensor | None, tokens: torch.Tensor, text_mask: torch.Tensor | None) -> torch.Tensor:
    b, _, d = tokens.shape
    if text is None:
        raise ReducerError(f"mmtok needs text=[B, T, {d}]: the prompt's text embeddings in the vision token space "
                           "(e.g. the language model's input embeddings of the question, beside projected vision tokens)")
    if not isinstance(text, torch.Tensor) or text.dim() != 3 or text.shape[0] not in (1, b) or text.shape[2] != d:
        shape = tuple(text.shape) if isinstance(text, torch.Tensor) else type(text).__name__
        raise ReducerError(f"mmtok needs text=[B, T, D] = [{b}, T, {d}] (or [1, T, {d}] shared by the batch), got {shape}")
    if text.shape[1] == 0:
        raise ReducerError("mmtok needs at least one text token (text=[B, T, D] with T >= 1)")
    if text_mask is not None and tuple(text_mask.shape) != (text.shape[0], text.shape[1]):
        raise ReducerError(f"text_mask must be [B, T] = {tuple(text.shape[:2])} (True = a real text token), got {tuple(text_mask.shape)}")
    return text.expand(b, -1, -1)


def coverage_table(tokens: torch.Tensor, text: torch.Tensor, vision: torch.Tensor | None = None,
                   text_mask: torch.Tensor | None = None, alpha: float = 0.5, text_temperature: float = 0.02,
                   vision_temperature: float = 0.2) -> torch.Tensor:
    """The stacked coverage table ``[B, T + N, N]`` (rows: text tokens then visual tokens to cover;
    columns: candidate tokens), in float32.

    Example:
        >>> import torch
        >>> coverage_table(torch.randn(2, 5, 4), torch.randn(2, 3, 4)).shape
        torch.Size([2, 8, 5])
    """
    b, n, _ = tokens.shape
    text = _check_text(text, tokens, text_mask)
    if vision is None:
        vision = tokens
    elif vision.dim() != 3 or tuple(vision.shape[:2]) != (b, n):
        raise ReducerError(f"vision must be [B, N, Dv] = [{b}, {n}, Dv] (one feature per visual token), got {tuple(vision.shape)}")
    x = _unit(tokens.float())
    v = _unit(vision.float())
    z = _unit(text.float())
    p = torch.softmax((z @ x.transpose(-1, -2)) * (1.0 / text_temperature), dim=-1)     # [B, T, N]
    if text_mask is None:
        p = p / text.shape[1]
    else:
        m = text_mask.to(torch.bool).expand(b, -1)
        count = m.sum(dim=1, keepdim=True).clamp(min=1)                                    # [B, 1]
        p = torch.where(m[..., None], p / count[..., None], torch.zeros_like(p))
    q = torch.softmax((v @ v.transpose(-1, -2)) * (1.0 / vision_temperature), dim=-1) / n   # [B, N, N]
    return torch.cat([p, q * alpha], dim=1)


def mmtok_select(tokens: torch.Tensor, text: torch.Tensor | None, keep: int, vision: torch.Tensor | None = None,
                 text_mask: torch.Tensor | None = None, exclude: torch.Tensor | None = None, alpha: float = 0.5,
                 text_temperature: float = 0.02, vision_temperature: float = 0.2) -> torch.Tensor:
    """Indices ``[B, keep]`` (ascending) of the greedy multimodal-coverage subset of ``tokens``.

    ``exclude`` (``[B, N]`` bool, True = never keep, e.g. padding patches) must leave at least
    ``keep`` candidates per sample.
    """
    if tokens.dim() != 3:
        raise ReducerError(f"MMTok expects tokens [B, N, D], got {tuple(tokens.shape)}")
    b, n, _ = tokens.shape
    text = _check_text(text, tokens, text_mask)
    if vision is not None and (vision.dim() != 3 or tuple(vision.shape[:2]) != (b, n)):
        raise ReducerError(f"vision must be [B, N, Dv] = [{b}, {n}, Dv] (one feature per visual token), got {tuple(vision.shape)}")
    with torch.no_grad():
        mask = torch.zeros(b, n, dtype=torch.float32, device=tokens.device)
        if exclude is not None:
            if tuple(exclude.shape) != (b, n):
                raise ReducerError(f"exclude must be [B, N] = {(b, n)} (True = never keep), got {tuple(exclude.shape)}")
            exclude = exclude.to(torch.bool)
            if int((~exclude).sum(dim=1).min()) < keep:
                raise ReducerError(f"exclude leaves fewer than keep={keep} candidate tokens in some sample")
            mask.masked_fill_(exclude, float("-inf"))
        if keep >= n:
            return torch.arange(n, device=tokens.device).expand(b, n).clone()
        picked = torch.empty(b, keep, dtype=torch.long, device=tokens.device)
        for s in range(b):  # one sample at a time: its table stays in cache (faster than one batched table)
            one = slice(s, s + 1)
            c = coverage_table(tokens[one], text[one], None if vision is None else vision[one],
                               None if text_mask is None else text_mask.expand(b, -1)[one], alpha, text_temperature,
                               vision_temperature)[0]
            m = mask[s]
            best = torch.zeros(c.shape[0], 1, dtype=c.dtype, device=c.device)
            gain = torch.empty_like(c)
            for i in range(keep):
                torch.sub(c, best, out=gain)
                idx = gain.clamp_(min=0).sum(dim=0).add_(m).argmax().view(1)
                picked[s, i : i + 1] = idx
                torch.maximum(best, c.index_select(1, idx), out=best)
                m.index_fill_(0, idx, float("-inf"))
        return picked.sort(dim=1).values


def mmtok_reduce(tokens: torch.Tensor, keep: float, text: torch.Tensor | None, **options: object) -> ReducedTokens:
    """Keep the MMTok subset of ``tokens`` ``[B, N, D]`` (kept tokens in their input order).

    Example:
        >>> import torch
        >>> out = mmtok_reduce(torch.randn(2, 16, 8), keep=0.25, text=torch.randn(2, 3, 8))
        >>> out.tokens.shape, out.indices.shape
        (torch.Size([2, 4, 8]), torch.Size([2, 4]))
    """
    n = tokens.shape[1]
    k = resolve_keep(keep, n)
    for name in ("alpha", "text_temperature", "vision_temperature"):
        if name in options:
            value = check_real(f"mmtok {name}", options[name])
            if value < 0 or (value == 0 and name != "alpha"):
                raise ReducerError(f"mmtok {name} must be {'>= 0' if name == 'alpha' else '> 0'}, got {value}")
    idx = mmtok_select(tokens, text, k, **options)  # type: ignore[arg-type]
    kept = tokens.gather(1, idx[..., None].expand(-1, -1, tokens.shape[-1]))
    assign = torch.full(tokens.shape[:2], -1, dtype=torch.long, device=tokens.device)
    assign.scatter_(1, idx, torch.arange(k, device=tokens.device).expand_as(idx))
    return ReducedTokens(tokens=kept, indices=idx, sizes=torch.ones_like(kept[..., :1]), assignment=assign)
