"""Flow-matching time grids with the diffusers conventions, for :func:`~zoo.sampling.flow.sample_flow`.

:func:`flow_match_sigmas` returns the noise levels ``sigma`` (1 = noise, 0 = data) that diffusers'
``FlowMatchEulerDiscreteScheduler.set_timesteps(steps)`` produces, number for number (the same
float32 / float64 steps): the training grid ``1..N`` shifted once in float32 fixes ``sigma_max``
and ``sigma_min``, the inference grid is ``linspace(sigma_max, sigma_min, steps)`` shifted again
(statically, ``shift s t / (1 + (s - 1) t)``, Stable Diffusion 3's 3.0; or with a resolution
dependent ``mu``, ``e^mu / (e^mu + 1/t - 1)``), then a final 0 (so ``sigma_min`` is shifted twice: 0.0089 at shift 3 and 1000 train steps,
as in diffusers). The model is called with the
timestep ``sigma * N`` (:func:`flow_match_timestep`).

Passing the list as ``sample_flow(velocity_fn, noise, times=sigmas)`` runs exactly the scheduler's
Euler update ``x <- x + (sigma_next - sigma) v``. What the scheduler offers beyond this (Karras /
exponential / beta sigmas, ``shift_terminal``, stochastic sampling) is not reproduced here.

Example:
    >>> [round(s, 4) for s in flow_match_sigmas(4, shift=3.0)]
    [1.0, 0.8577, 0.6022, 0.0089, 0.0]
    >>> flow_match_timestep(0.75)
    750.0
"""

from __future__ import annotations

import math
from typing import Optional

import numpy as np
import torch

from zoo.errors import InputError

__all__ = ["flow_match_sigmas", "flow_match_timestep"]


def _static_shift(s, shift: float):
    return shift * s / (1 + (shift - 1) * s)


def flow_match_sigmas(steps: int, *, shift: float = 1.0, num_train_timesteps: int = 1000, mu: Optional[float] = None) -> list[float]:
    """``steps + 1`` noise levels from 1 to 0 as ``FlowMatchEulerDiscreteScheduler`` computes them
    (``mu`` given: its ``use_dynamic_shifting`` exponential shift; otherwise the static ``shift``).
    Values are float32 numbers (as Python floats)."""
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise InputError(f"steps must be a whole number >= 1, got {steps!r}")
    if not math.isfinite(shift) or shift <= 0:
        raise InputError(f"shift must be a positive finite number, got {shift!r}")
    n = int(num_train_timesteps)
    train = torch.from_numpy(np.linspace(1, n, n, dtype=np.float32)[::-1].copy()) / n
    if mu is None:
        train = _static_shift(train, shift)
    sigma_max, sigma_min = train[0].item(), train[-1].item()
    sigmas = np.linspace(sigma_max * n, sigma_min * n, steps) / n
    if mu is not None:
        sigmas = math.exp(mu) / (math.exp(mu) + (1 / sigmas - 1))
    else:
        sigmas = _static_shift(sigmas, shift)
    return torch.from_numpy(sigmas).to(torch.float32).tolist() + [0.0]


def flow_match_timestep(sigma: float, num_train_timesteps: int = 1000) -> float:
    """The timestep a diffusers flow-matching model is called with at noise level ``sigma``
    (``sigma * N`` rounded to float32, as the scheduler's ``timesteps``)."""
    return float(torch.tensor(sigma, dtype=torch.float32) * num_train_timesteps)
