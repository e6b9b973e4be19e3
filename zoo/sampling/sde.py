"""Euler-Maruyama SDE sampling with a final mean step (SiT's ``sample_sde``, which xAR and
other SiT-derived samplers use).

Time runs forward over an explicit grid ``times = [t_0 < ... < t_K]`` (SiT: ``linspace(t0,
1 - last_step_size, num_steps)``). For ``k = 0..K-1``::

    w      ~ N(0, I)                            (one draw of x's shape from the noise source)
    mean_x = x + drift(x, t_k) * dt             (dt = t_1 - t_0, constant as in SiT)
    x      = mean_x + sqrt(2 * diffusion(x, t_k)) * sqrt(dt) * w

then, with ``last_step="mean"``, ``x <- x + drift(x, t_K) * last_step_size`` (no noise), or the
state as is for ``last_step=None``. ``drift(x, t, guided)`` is the plugin's SDE drift (with
``guided`` it gets ``[2B]`` rows: the states twice, and returns the guided ``[B]`` drift or
``[2B]`` rows that :func:`~zoo.sampling.cfg.cfg_channels` combines — see ``guidance``).

:func:`linear_path_sde` builds SiT's drift and diffusion for a velocity model on the linear
path ``x_t = t x_1 + (1 - t) x_0`` (``x_0`` noise at ``t = 0``): ``score = (t v - x) / (1 -
t)``, SBDM diffusion ``norm (1 - t) / t``, ``drift = v + diffusion * score``.

Example:
    >>> import torch
    >>> drift = lambda x, t, guided: -x                  # an OU process towards 0
    >>> out = sample_sde(drift, lambda x, t: 0.0, torch.ones(2, 2), times=[0.0, 0.5, 0.9],
    ...                  generator=torch.Generator().manual_seed(0), last_step_size=0.1)
    >>> [round(v, 4) for v in out[0].tolist()]             # no diffusion: (1 - .5)(1 - .5)(1 - .1)
    [0.225, 0.225]
"""

from __future__ import annotations

from typing import Callable, Optional, Sequence, Union

import torch

from zoo.errors import InputError
from zoo.sampling.cfg import cfg_channels
from zoo.sampling.guidance import Guidance, as_guidance
from zoo.sampling.noise import NoiseSource, as_noise_source
from zoo.sampling.progress import ProgressArg, progress_reporter

__all__ = ["LAST_STEPS", "sample_sde", "linear_path_sde", "sde_time_grid"]

LAST_STEPS = ("mean", None)

Drift = Callable[[torch.Tensor, float, bool], torch.Tensor]
Diffusion = Callable[[torch.Tensor, float], Union[torch.Tensor, float]]


def sde_time_grid(num_steps: int, *, t0: float = 0.0, last_step_size: float = 0.04) -> list[float]:
    """SiT's grid: ``torch.linspace(t0, 1 - last_step_size, num_steps)`` (float32) as floats;
    ``num_steps - 1`` Euler-Maruyama steps, then the last (mean) step of ``last_step_size``.

    Example:
        >>> [round(t, 6) for t in sde_time_grid(3, last_step_size=0.2)]
        [0.0, 0.4, 0.8]
    """
    if isinstance(num_steps, bool) or not isinstance(num_steps, int) or num_steps < 2:
        raise InputError(f"an SDE grid needs num_steps >= 2, got {num_steps!r}")
    return torch.linspace(t0, 1.0 - last_step_size, num_steps).tolist()


def linear_path_sde(velocity_fn: Callable[[torch.Tensor, float, bool], torch.Tensor], *, form: str = "SBDM",
                    norm: float = 1.0) -> tuple[Drift, Diffusion]:
    """SiT's SDE terms for a velocity model on the linear path (see module docstring).

    ``velocity_fn(x, t, guided)`` returns the (guided) velocity ``[B]``; ``form`` is ``"SBDM"``
    (``norm (1 - t) / t``), ``"sigma"`` (``norm (1 - t)``) or ``"constant"`` (``norm``).

    Example:
        >>> drift, diffusion = linear_path_sde(lambda x, t, g: torch.zeros_like(x))
        >>> round(float(diffusion(torch.zeros(1), 0.5)), 4), drift(torch.ones(1), 0.5, False).tolist()
        (1.0, [-2.0])
    """
    forms = ("SBDM", "sigma", "constant")
    if form not in forms:
        raise InputError(f"unknown SDE diffusion form {form!r}; choose one of {forms}")

    def diffusion(x: torch.Tensor, t: float) -> float:
        if form == "SBDM":
            return norm * ((1 - t) ** 2 / t + (1 - t)) if t > 0 else float("inf")
        if form == "sigma":
            return norm * (1 - t)
        return norm

    def drift(x: torch.Tensor, t: float, guided: bool) -> torch.Tensor:
        v = velocity_fn(x, t, guided)
        xx = x[: v.shape[0]]
        score = (t * v - xx) / ((1 - t) ** 2 + t * (1 - t))
        return v + diffusion(xx, t) * score

    return drift, diffusion


@torch.no_grad()
def sample_sde(
    drift_fn: Drift,
    diffusion_fn: Diffusion,
    init: torch.Tensor,
    *,
    times: Sequence[float],
    generator: Union[torch.Generator, NoiseSource, None],
    last_step: Optional[str] = "mean",
    last_step_size: float = 0.04,
    guidance: Union[Guidance, float, None] = None,
    guidance_channels: Union[slice, int, None] = None,
    progress: ProgressArg = None,
) -> torch.Tensor:
    """Integrate from ``init`` over ``times`` (increasing) and return the final state (float32).

    Args:
        drift_fn: ``drift(x, t, guided)``; with guidance it receives ``[2B]`` rows (conditional
            first) and returns ``[2B]`` rows, which are combined with the CFG weight here, or
            the already guided ``[B]`` drift.
        diffusion_fn: ``diffusion(x, t)`` (a float or a broadcastable tensor).
        generator: every Gaussian draw (one ``x``-shaped draw per step) comes from it (or from
            a :class:`~zoo.sampling.noise.NoiseSource`, e.g. replayed reference noise).
        last_step: ``"mean"`` (SiT's default: a drift step of ``last_step_size``) or ``None``.
        guidance: a CFG weight ``w`` or a :class:`Guidance` over progress ``k / K``.
        guidance_channels: guide only these channels of dim 1.
    """
    if last_step not in LAST_STEPS:
        raise InputError(f"unknown last step {last_step!r}; choose one of {LAST_STEPS}")
    ts = [float(t) for t in times]
    if len(ts) < 2 or any(b <= a for a, b in zip(ts, ts[1:])):
        raise InputError("an SDE time grid must hold at least 2 strictly increasing times")
    noise = as_noise_source(generator, init.device)
    g = as_guidance(guidance)
    x = init.to(torch.float32)
    b = x.shape[0]
    # SiT: dt = t[1] - t[0] of the float32 grid, as a float32 tensor
    dt = torch.tensor(ts[1], dtype=torch.float32) - torch.tensor(ts[0], dtype=torch.float32)
    sqrt_dt = torch.sqrt(dt)
    k_total = len(ts) - 1

    def drift(xx: torch.Tensor, k: int, t: float) -> torch.Tensor:
        if not g.active:
            return drift_fn(xx, t, False).float()
        out = drift_fn(torch.cat([xx, xx], dim=0), t, True).float()
        if out.shape[0] == b:
            return out
        return cfg_channels(out, g.weight(k, k_total), guidance_channels)

    report = progress_reporter(progress, k_total, "sde")
    try:
        for k in range(k_total):
            t = ts[k]
            w = noise.randn(tuple(x.shape), device=x.device)
            dw = w * sqrt_dt
            d = drift(x, k, t)
            diff = diffusion_fn(x, t)
            mean_x = x + d * dt
            scale = torch.sqrt(2 * diff) if isinstance(diff, torch.Tensor) else torch.sqrt(torch.tensor(2.0 * diff))
            x = mean_x + scale * dw
            report(k + 1)
    finally:
        report.close()
    if last_step == "mean":
        x = x + drift(x, k_total, ts[-1]) * last_step_size
    return x
