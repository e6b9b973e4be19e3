"""MaskGIT parallel decoding: start fully masked, sample every masked position each step, keep
the most confident samples and re-mask the rest along a schedule (Chang et al. 2022).

The plugin supplies one function, ``logits_fn(ids, positions, guided) -> logits``:

* ``ids`` ``[B, N]`` current ids (``mask_id`` where still masked);
* ``positions`` ``[B, M]`` the positions whose logits are needed (the masked ones, padded with
  other positions when rows differ; computing logits only there is the point);
* ``guided``: when True return ``[2B, M, V]``, conditional rows first, then unconditional
  (ONE batched forward); otherwise ``[B, M, V]``.

The step semantics are those of TiTok's ``ImageBert.generate`` (MUSE): Gumbel-max sampling with
an annealed ``randomize_temperature``, confidence = the sampled logit plus annealed Gumbel
noise, re-mask the ``floor(N * schedule(r))`` least confident. Random draws per step, in order:
``torch.rand([B, N, V])`` for sampling then ``torch.rand([B, N])`` for confidence, from the
given generator (the reference's order, so a seeded generator reproduces it).

Example:
    >>> import torch
    >>> def logits_fn(ids, positions, guided):
    ...     return torch.zeros(positions.shape + (8,)).scatter(-1, positions[..., None] % 8, 5.0)
    >>> out = generate_maskgit(logits_fn, batch=1, seq_len=4, mask_id=8, steps=2,
    ...                        generator=torch.Generator().manual_seed(0), randomize_temperature=0.0)
    >>> out.tolist()
    [[0, 1, 2, 3]]
"""

from __future__ import annotations

import math
from typing import Callable, Optional, Union

import numpy as np
import torch

from zoo.errors import InputError
from zoo.sampling.guidance import Guidance, as_guidance, cfg_combine
from zoo.sampling.logits import own_generator
from zoo.sampling.progress import ProgressArg, progress_reporter

__all__ = ["MASK_SCHEDULES", "mask_ratio", "generate_maskgit"]

MASK_SCHEDULES = ("arccos", "cosine", "linear")


def mask_ratio(schedule: str, r: float) -> float:
    """Fraction of tokens still masked after progress ``r`` in (0, 1] (float64, as the references).

    Example:
        >>> round(mask_ratio("arccos", 0.5), 4), mask_ratio("linear", 0.25)
        (0.6667, 0.75)
    """
    if schedule == "arccos":
        return float(np.arccos(r) / (math.pi * 0.5))
    if schedule == "cosine":
        return float(np.cos(r * math.pi * 0.5))
    if schedule == "linear":
        return 1.0 - r
    raise InputError(f"unknown mask schedule {schedule!r}; choose one of {MASK_SCHEDULES}")


def _gumbel_from_uniform(u: torch.Tensor, eps: float = 1e-20) -> torch.Tensor:
    return -torch.log((-torch.log(u.clamp(min=eps))).clamp(min=eps))


@torch.no_grad()
def generate_maskgit(
    logits_fn: Callable[[torch.Tensor, torch.Tensor, bool], torch.Tensor],
    *,
    batch: int,
    seq_len: int,
    mask_id: int,
    steps: int,
    generator: Optional[torch.Generator],
    guidance: Union[Guidance, float, None] = None,
    randomize_temperature: float = 1.0,
    softmax_temperature_annealing: bool = False,
    schedule: str = "arccos",
    vocab_size: Optional[int] = None,
    device: Union[torch.device, str, None] = None,
    progress: ProgressArg = None,
) -> torch.Tensor:
    """Sample ``[batch, seq_len]`` ids in ``steps`` parallel steps.

    Args:
        guidance: zoo-convention CFG weight or :class:`Guidance` over ``r = step / steps``;
            steps whose weight is exactly 1 run the conditional pass only.
        randomize_temperature: Gumbel temperature, annealed as ``t0 * (1 - (step + 1) / steps)``.
        softmax_temperature_annealing: divide logits by ``0.5 + 0.8 * (1 - (step + 1) / steps)``.
        schedule: re-masking schedule, ``arccos`` (TiTok/MUSE), ``cosine`` or ``linear``.
        vocab_size: needed only to draw the reference-order noise before the first logits
            (defaults to the width ``logits_fn`` returns).
    """
    if steps < 1:
        raise InputError(f"steps must be >= 1, got {steps}")
    mask_ratio(schedule, 1.0)  # validates the name
    g = as_guidance(guidance)
    generator = own_generator(generator, device)
    ids = torch.full((batch, seq_len), mask_id, dtype=torch.long, device=device)
    arange = torch.arange(seq_len, device=device)
    report = progress_reporter(progress, steps, "maskgit")
    try:
        for step in range(steps):
            ratio = 1.0 * (step + 1) / steps
            temp = randomize_temperature * (1.0 - ratio)
            is_mask = ids == mask_id
            counts = is_mask.sum(-1)
            m = int(counts.max())
            # masked positions first (ascending), then the others: the first m per row
            order = torch.sort((~is_mask).to(torch.uint8), dim=-1, stable=True).indices[:, :m]
            w = g.weight(step, steps)
            guided = g.active and w != 1.0
            logits = logits_fn(ids, order, guided)
            if guided:
                logits = cfg_combine(logits, w)
            if softmax_temperature_annealing:
                logits = logits / (0.5 + 0.8 * (1 - ratio))
            v = logits.shape[-1] if vocab_size is None else vocab_size
            u = torch.rand((batch, seq_len, v), generator=generator, device=ids.device)
            u = torch.gather(u, 1, order[..., None].expand(-1, -1, v))
            noisy = logits + temp * _gumbel_from_uniform(u)
            picked = noisy.argmax(dim=-1)
            picked_logits = torch.gather(logits, -1, picked[..., None])[..., 0].float()
            sel_valid = arange[:m][None, :] < counts[:, None]
            sampled_ids = ids.clone()
            sampled_logits = torch.full((batch, seq_len), float("inf"), device=ids.device)
            rows = torch.arange(batch, device=ids.device)[:, None].expand(-1, m)
            sampled_ids[rows[sel_valid], order[sel_valid]] = picked[sel_valid]
            sampled_logits[rows[sel_valid], order[sel_valid]] = picked_logits[sel_valid]
            n_mask = math.floor(seq_len * mask_ratio(schedule, ratio))
            # the reference takes row 0's count (all rows share it)
            n_mask = max(1, min(int(counts[0]) - 1, n_mask))
            confidence = sampled_logits + temp * _gumbel_from_uniform(
                torch.rand((batch, seq_len), generator=generator, device=ids.device))
            cut_off = torch.sort(confidence, dim=-1).values[:, n_mask - 1 : n_mask]
            if step == steps - 1:
                ids = sampled_ids
            else:
                ids = torch.where(confidence <= cut_off, torch.full_like(sampled_ids, mask_id), sampled_ids)
            report(step + 1)
    finally:
        report.close()
    return ids
