"""Autoregressive sampling with a static KV cache: one prefill, then one decode step per token.

The plugin supplies one function, ``forward(step, cache) -> logits [B', V]``: run the model on
``step.ids`` ``[B', n]`` (the prompt at prefill, one token per decode step), read/write keys and
values through ``cache`` (a :class:`~zoo.sampling.kv_cache.StaticKVCache`; the model writes at
``cache.length`` and calls ``cache.advance``), and return the logits of the LAST position.
Classifier-free guidance runs as one batch ``B' = 2B`` (conditional rows first).

Example (a toy "model" that always prefers the token after the previous one):
    >>> import torch
    >>> V = 5
    >>> def forward(step, cache):
    ...     cache.advance(step.ids.shape[1])
    ...     return torch.nn.functional.one_hot((step.ids[:, -1] + 1) % V, V).float() * 20
    >>> cache = StaticKVCache(1, 1, 1, 8, 1)
    >>> out = generate_ar(forward, torch.tensor([[0]]), 4, cache, generator=torch.Generator().manual_seed(0))
    >>> out.ids.tolist()
    [[1, 2, 3, 4]]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Union

import torch

from zoo.errors import InputError
from zoo.sampling.guidance import Guidance, as_guidance, cfg_combine
from zoo.sampling.kv_cache import StaticKVCache
from zoo.sampling.logits import SamplerSettings, own_generator
from zoo.sampling.progress import ProgressArg, progress_reporter

__all__ = ["ARStep", "ARSample", "generate_ar"]


@dataclass
class ARStep:
    """What the model runs on in one forward.

    ``ids``: ``[B', n]`` new token ids; ``positions``: ``[B', n]`` position of each new token
    counted over valid (non-padding) tokens; ``key_valid``: ``[B', cache.length + n]`` boolean
    (True = a real token) or ``None`` when nothing is padded; ``index``: 0 at prefill, then the
    decode step number.
    """

    ids: torch.Tensor
    positions: torch.Tensor
    key_valid: Optional[torch.Tensor]
    index: int


@dataclass
class ARSample:
    """Generated ids ``[B, n]`` (after an end token: ``pad_id``) and valid lengths ``[B]``."""

    ids: torch.Tensor
    lengths: torch.Tensor


def _left_pad_positions(valid: torch.Tensor) -> torch.Tensor:
    return (valid.long().cumsum(-1) - 1).clamp(min=0)


@torch.no_grad()
def generate_ar(
    forward: Callable[[ARStep, StaticKVCache], torch.Tensor],
    prompt: torch.Tensor,
    max_new_tokens: int,
    cache: StaticKVCache,
    *,
    generator: Optional[torch.Generator],
    sampler: Optional[SamplerSettings] = None,
    guidance: Union[Guidance, float, None] = None,
    uncond_prompt: Optional[torch.Tensor] = None,
    prompt_valid: Optional[torch.Tensor] = None,
    eos_id: Optional[int] = None,
    pad_id: int = 0,
    logits_hook: Optional[Callable[[torch.Tensor, int], torch.Tensor]] = None,
    penalty_over_prompt: bool = True,
    progress: ProgressArg = None,
) -> ARSample:
    """Sample ``max_new_tokens`` ids after ``prompt`` ``[B, P]``.

    Args:
        forward: the plugin's model step (see module docstring).
        cache: a cache for ``B`` rows (``2B`` with guidance) and ``>= P + max_new_tokens``
            positions (plus whatever the model prepends itself); it is reset first.
        generator: every random draw uses it (``torch.multinomial(..., generator=generator)``);
            ``None``: a fresh randomly seeded one (never the global RNG).
        sampler: temperature / top-k / top-p / min-p / windowed repetition penalty.
        guidance: CFG weight (zoo convention ``uncond + w (cond - uncond)``) or schedule over
            ``step / max_new_tokens``; needs ``uncond_prompt`` ``[B, P]``.
        prompt_valid: ``[B, P]`` bool for left-padded prompts (False = padding).
        eos_id: stop a row after it emits this id (later positions hold ``pad_id``).
        logits_hook: ``fn(logits [B, V], step) -> logits`` applied before the sampler (e.g. to
            restrict the vocabulary).
        penalty_over_prompt: the repetition penalty also sees the prompt (HF ``generate`` does).
        progress: ``True`` for a bar, or ``fn(step, total)``.
    """
    if prompt.dim() != 2:
        raise InputError(f"prompt must be [B, P] ids, got {tuple(prompt.shape)}")
    b, p = prompt.shape
    sampler = sampler or SamplerSettings()
    generator = own_generator(generator, prompt.device)
    g = as_guidance(guidance)
    guided = g.active
    if guided:
        if uncond_prompt is None or uncond_prompt.shape != prompt.shape:
            raise InputError("guidance needs uncond_prompt with the prompt's shape [B, P]")
        rows = torch.cat([prompt, uncond_prompt.to(prompt.device)], dim=0)
        valid_p = None if prompt_valid is None else torch.cat([prompt_valid, prompt_valid], dim=0)
    else:
        rows, valid_p = prompt, prompt_valid
    bb = rows.shape[0]
    if cache.batch != bb:
        raise InputError(f"the KV cache was allocated for batch {cache.batch}, the sampler needs {bb}"
                         + (" (2B rows with guidance)" if guided else ""))
    cache.reset()
    device = prompt.device
    total = p + max_new_tokens
    seq = torch.full((bb, total), pad_id, dtype=torch.long, device=device)
    seq[:, :p] = rows
    valid = None
    if valid_p is not None:
        valid = torch.ones((bb, total), dtype=torch.bool, device=device)
        valid[:, :p] = valid_p.to(device)
    out = torch.full((b, max_new_tokens), pad_id, dtype=torch.long, device=device)
    done = torch.zeros(b, dtype=torch.bool, device=device)
    lengths = torch.full((b,), max_new_tokens, dtype=torch.long)
    report = progress_reporter(progress, max_new_tokens, "tokens")
    hist_start = 0 if penalty_over_prompt else p
    try:
        step = ARStep(rows, _left_pad_positions(valid[:, :p]) if valid is not None else torch.arange(p, device=device).expand(bb, p),
                      None if valid is None else valid[:, :p], 0)
        for i in range(max_new_tokens):
            logits = forward(step, cache)
            if logits.dim() != 2 or logits.shape[0] != bb:
                raise InputError(f"forward must return last-position logits [{bb}, V], got {tuple(logits.shape)}")
            if guided:
                logits = cfg_combine(logits, g.weight(i, max_new_tokens))
            if logits_hook is not None:
                logits = logits_hook(logits, i)
            cur = p + i
            if sampler.repetition_penalty != 1.0:
                hist = seq[:b, hist_start:cur]
                hv = None if valid is None else valid[:b, hist_start:cur]
                logits = sampler.apply(logits, hist, hv)
            else:
                logits = sampler.apply(logits)
            if sampler.temperature == 0:
                nxt = logits.argmax(-1, keepdim=True)
            else:
                nxt = torch.multinomial(torch.softmax(logits.float(), dim=-1), 1, generator=generator)
            nxt = torch.where(done[:, None], torch.full_like(nxt, pad_id), nxt)
            out[:, i] = nxt[:, 0]
            if eos_id is not None:
                newly = (~done) & (nxt[:, 0] == eos_id)
                lengths[newly.cpu()] = i + 1
                done |= newly
            report(i + 1)
            if i + 1 == max_new_tokens or (eos_id is not None and bool(done.all())):
                break
            feed = torch.cat([nxt, nxt], dim=0) if guided else nxt
            seq[:, cur] = feed[:, 0]
            step = ARStep(
                feed,
                (_left_pad_positions(valid[:, : cur + 1])[:, -1:] if valid is not None
                 else torch.full((bb, 1), cur, dtype=torch.long, device=device)),
                None if valid is None else valid[:, : cache.length + 1],
                i + 1,
            )
    finally:
        report.close()
    n = int(lengths.max()) if eos_id is not None else max_new_tokens
    return ARSample(out[:, :n], lengths)
