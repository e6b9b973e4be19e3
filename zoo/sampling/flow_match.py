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
exponential / beta sigmas, ``shift_terminal``, inverted sigmas, stochastic sampling) is not
reproduced here: :func:`scheduler_sigmas` refuses a config that turns one on.

:func:`scheduler_sigmas` reads a scheduler config (the release's ``scheduler_config.json`` as a
dict) the way the diffusers pipelines do: with ``use_dynamic_shifting`` the shift ``mu`` comes from
the image's token count through :func:`dynamic_shift_mu` (diffusers' ``calculate_shift``: linear
from ``base_shift`` at ``base_image_seq_len`` tokens to ``max_shift`` at ``max_image_seq_len``)
unless given; without it the static ``shift`` applies and a ``mu`` is ignored, as the scheduler does.

Example:
    >>> [round(s, 4) for s in flow_match_sigmas(4, shift=3.0)]
    [1.0, 0.8577, 0.6022, 0.0089, 0.0]
    >>> flow_match_timestep(0.75)
    750.0
    >>> round(dynamic_shift_mu(4096), 4)   # 1024 px SD3: (1024 / 8 / 2) ** 2 tokens
    1.15
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Optional

import numpy as np
import torch

from zoo.errors import ConfigError, InputError

__all__ = ["flow_match_sigmas", "flow_match_timestep", "dynamic_shift_mu", "scheduler_sigmas", "TIME_SHIFTS"]

#: ``time_shift_type`` values of ``FlowMatchEulerDiscreteScheduler`` (how ``mu`` shifts a sigma).
TIME_SHIFTS = ("exponential", "linear")
#: ``FlowMatchEulerDiscreteScheduler``'s defaults for the keys :func:`scheduler_sigmas` reads.
SCHEDULER_DEFAULTS = {"num_train_timesteps": 1000, "shift": 1.0, "use_dynamic_shifting": False, "base_shift": 0.5, "max_shift": 1.15,
                      "base_image_seq_len": 256, "max_image_seq_len": 4096, "time_shift_type": "exponential"}
_UNSUPPORTED = ("shift_terminal", "use_karras_sigmas", "use_exponential_sigmas", "use_beta_sigmas", "invert_sigmas", "stochastic_sampling")


def _static_shift(s, shift: float):
    return shift * s / (1 + (shift - 1) * s)


def flow_match_sigmas(steps: int, *, shift: float = 1.0, num_train_timesteps: int = 1000, mu: Optional[float] = None,
                      time_shift: str = "exponential") -> list[float]:
    """``steps + 1`` noise levels from 1 to 0 as ``FlowMatchEulerDiscreteScheduler`` computes them
    (``mu`` given: its ``use_dynamic_shifting`` shift, ``e^mu / (e^mu + 1/t - 1)`` or with
    ``time_shift="linear"`` ``mu / (mu + 1/t - 1)``; otherwise the static ``shift``).
    Values are float32 numbers (as Python floats)."""
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise InputError(f"steps must be a whole number >= 1, got {steps!r}")
    if not math.isfinite(shift) or shift <= 0:
        raise InputError(f"shift must be a positive finite number, got {shift!r}")
    if time_shift not in TIME_SHIFTS:
        raise InputError(f"unknown time_shift {time_shift!r}; choose one of {TIME_SHIFTS}")
    if mu is not None and (isinstance(mu, bool) or not isinstance(mu, (int, float)) or not math.isfinite(mu)):
        raise InputError(f"mu must be a finite number, got {mu!r}")
    n = int(num_train_timesteps)
    train = torch.from_numpy(np.linspace(1, n, n, dtype=np.float32)[::-1].copy()) / n
    if mu is None:
        train = _static_shift(train, shift)
    sigma_max, sigma_min = train[0].item(), train[-1].item()
    sigmas = np.linspace(sigma_max * n, sigma_min * n, steps) / n
    if mu is not None and time_shift == "linear":
        sigmas = mu / (mu + (1 / sigmas - 1))
    elif mu is not None:
        sigmas = math.exp(mu) / (math.exp(mu) + (1 / sigmas - 1))
    else:
        sigmas = _static_shift(sigmas, shift)
    return torch.from_numpy(sigmas).to(torch.float32).tolist() + [0.0]


def flow_match_timestep(sigma: float, num_train_timesteps: int = 1000) -> float:
    """The timestep a diffusers flow-matching model is called with at noise level ``sigma``
    (``sigma * N`` rounded to float32, as the scheduler's ``timesteps``)."""
    return float(torch.tensor(sigma, dtype=torch.float32) * num_train_timesteps)


def dynamic_shift_mu(image_seq_len: int, *, base_seq_len: int = 256, max_seq_len: int = 4096, base_shift: float = 0.5,
                     max_shift: float = 1.15) -> float:
    """The resolution-dependent shift ``mu`` for ``image_seq_len`` image tokens (diffusers'
    ``calculate_shift``, the same float operations): linear through ``(base_seq_len, base_shift)``
    and ``(max_seq_len, max_shift)``.

    Example:
        >>> dynamic_shift_mu(256), round(dynamic_shift_mu(1024), 6)
        (0.5, 0.63)
    """
    if isinstance(image_seq_len, bool) or not isinstance(image_seq_len, int) or image_seq_len < 1:
        raise InputError(f"image_seq_len must be a whole number >= 1, got {image_seq_len!r}")
    if max_seq_len == base_seq_len:
        raise InputError(f"dynamic shifting needs max_image_seq_len != base_image_seq_len, both are {base_seq_len}")
    m = (max_shift - base_shift) / (max_seq_len - base_seq_len)
    b = base_shift - m * base_seq_len
    return image_seq_len * m + b


def scheduler_sigmas(steps: int, scheduler: Mapping[str, Any], *, image_seq_len: Optional[int] = None, mu: Optional[float] = None) -> list[float]:
    """The grid of :func:`flow_match_sigmas` for a ``FlowMatchEulerDiscreteScheduler`` config dict
    (missing keys take the scheduler's defaults), as the diffusers pipelines set it: with
    ``use_dynamic_shifting``, ``mu`` (or :func:`dynamic_shift_mu` of ``image_seq_len`` with the
    config's ``base/max_shift`` and ``base/max_image_seq_len``); otherwise the static ``shift``
    (``mu`` ignored, as ``set_timesteps`` ignores it).

    Example:
        >>> [round(s, 4) for s in scheduler_sigmas(2, {"shift": 3.0})]
        [1.0, 0.0089, 0.0]
        >>> [round(s, 4) for s in scheduler_sigmas(2, {"use_dynamic_shifting": True}, image_seq_len=4096)]
        [1.0, 0.0032, 0.0]
    """
    cfg = {**SCHEDULER_DEFAULTS, **{k: v for k, v in scheduler.items() if v is not None or k not in SCHEDULER_DEFAULTS}}
    on = [k for k in _UNSUPPORTED if cfg.get(k)]
    if on:
        raise ConfigError(f"the scheduler config turns on {on}, which zoo's flow-matching grid does not reproduce; drop them from the config")
    n = int(cfg["num_train_timesteps"])
    if not cfg["use_dynamic_shifting"]:
        return flow_match_sigmas(steps, shift=float(cfg["shift"]), num_train_timesteps=n)
    if mu is None:
        if image_seq_len is None:
            raise InputError("this scheduler config uses dynamic shifting: give mu= or the image's token count (image_seq_len=)")
        mu = dynamic_shift_mu(image_seq_len, base_seq_len=int(cfg["base_image_seq_len"]), max_seq_len=int(cfg["max_image_seq_len"]),
                              base_shift=float(cfg["base_shift"]), max_shift=float(cfg["max_shift"]))
    return flow_match_sigmas(steps, num_train_timesteps=n, mu=mu, time_shift=str(cfg["time_shift_type"]))
