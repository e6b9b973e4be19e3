"""Flow / ODE sampling (rectified flow): Euler or Heun steps from noise at ``t = 1`` to data at
``t = 0``, with an optional time shift, CFG and norm-guided CFG (APG).

The plugin supplies one function, ``velocity_fn(x, t, guided) -> v``: ``x`` is ``[B, ...]``
(``[2B, ...]`` when ``guided``, the same states twice; return the conditional velocities first,
then the unconditional ones), ``t`` a Python float in (0, 1]. The update is
``x <- x - (t_i - t_{i+1}) * v``.

With ``shift=1``, Euler and :class:`~zoo.sampling.guidance.APG` this is exactly ml-flextok's
decoder loop: ``t = i / T`` for ``i = T..1``, ``x <- x - v / T`` (``dt = 1 / T``), APG with
momentum -0.5 and norm threshold 2.5, one momentum buffer per sample.

An explicit grid (``times=[t_0, ..., t_T]``, any monotone list, e.g. :func:`time_grid` with a
shift, or a reference's own float32 grid) replaces ``steps``/``shift``; the update is then
``x <- x + (t_{i+1} - t_i) * v(x, t_i)`` — the same formula, so an increasing grid from 0
(noise) to 1 (data) integrates a SiT/LightningDiT-convention velocity as its reference does
(torchdiffeq's fixed-grid Euler). ``guidance_interval=(lo, hi)`` applies CFG only where
``lo <= t <= hi`` and skips the unconditional pass elsewhere; ``guidance_channels`` guides only
those channels (dim 1) and keeps the conditional output on the rest (LightningDiT: ``3``).
``skip_guidance=SkipLayerGuidance(...)`` with ``skip_fn(x, t, layers) -> v`` (the ``B`` conditional
rows run with those blocks skipped) adds skip-layer guidance on the guided steps of its window
(SD3.5's SLG; :class:`~zoo.sampling.cfg.SkipLayerGuidance`).

Example:
    >>> import torch
    >>> x0 = torch.ones(2, 3)
    >>> out = sample_flow(lambda x, t, guided: x, x0, steps=4)   # v = x: x shrinks by (1 - 1/4) per step
    >>> round(float(out[0, 0]), 4)
    0.3164
"""

from __future__ import annotations

from typing import Callable, Optional, Sequence, Union

import torch

from zoo.errors import InputError
from zoo.sampling.cfg import SkipLayerGuidance, cfg_channels, check_interval, in_interval
from zoo.sampling.guidance import APG, Guidance, apg_combine, as_guidance
from zoo.sampling.progress import ProgressArg, progress_reporter

__all__ = ["SOLVERS", "flow_timesteps", "shift_time", "time_grid", "sample_flow"]

SOLVERS = ("euler", "heun")


def shift_time(t: torch.Tensor | float, shift: float) -> torch.Tensor | float:
    """SD3-style time shift ``s t / (1 + (s - 1) t)`` (``shift > 1`` spends more steps near noise).

    Example:
        >>> shift_time(0.5, 3.0)
        0.75
    """
    return shift * t / (1 + (shift - 1) * t)


def flow_timesteps(steps: int, shift: float = 1.0) -> list[float]:
    """``steps + 1`` times from 1 to 0: ``i / steps`` for ``i = steps..0``, then shifted.

    Example:
        >>> flow_timesteps(4)
        [1.0, 0.75, 0.5, 0.25, 0.0]
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise InputError(f"steps must be a whole number >= 1, got {steps!r}")
    ts = [i / steps for i in range(steps, -1, -1)]
    if shift != 1.0:
        ts = [float(shift_time(t, shift)) for t in ts]
    return ts


def time_grid(steps: int, *, shift: float = 1.0, start: float = 1.0, end: float = 0.0) -> list[float]:
    """``steps + 1`` times from ``start`` to ``end``, uniform then shifted with
    :func:`shift_time` (diffusers' ``FlowMatchEulerDiscreteScheduler`` static shift, applied to
    the noise level ``sigma``: the grid is shifted in the direction of noise whichever end it
    starts from, so ``start=0, end=1`` with shift ``s`` equals ``1 - time_grid(steps, shift=s)``).

    Example:
        >>> time_grid(2, shift=3.0)
        [1.0, 0.75, 0.0]
        >>> time_grid(2, shift=3.0, start=0.0, end=1.0)
        [0.0, 0.25, 1.0]
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise InputError(f"steps must be a whole number >= 1, got {steps!r}")
    out = []
    for i in range(steps + 1):
        t = start + (end - start) * i / steps
        # the shift acts on the noise level (1 = noise in zoo's convention)
        sigma = t if start >= end else 1.0 - t
        sigma = float(shift_time(sigma, shift)) if shift != 1.0 else sigma
        out.append(sigma if start >= end else 1.0 - sigma)
    return out


def _check_times(times) -> list[float]:
    ts = [float(t) for t in (times.tolist() if isinstance(times, torch.Tensor) else times)]
    if len(ts) < 2:
        raise InputError(f"a time grid needs at least 2 points, got {len(ts)}")
    diffs = [b - a for a, b in zip(ts, ts[1:])]
    if not (all(d > 0 for d in diffs) or all(d < 0 for d in diffs)):
        raise InputError("a time grid must be strictly increasing or strictly decreasing")
    return ts


@torch.no_grad()
def sample_flow(
    velocity_fn: Callable[[torch.Tensor, float, bool], torch.Tensor],
    noise: torch.Tensor,
    *,
    steps: Optional[int] = None,
    solver: str = "euler",
    shift: float = 1.0,
    guidance: Union[Guidance, float, Callable[[float], float], None] = None,
    guidance_on_time: bool = True,
    norm_guidance: Union[bool, APG] = False,
    progress: ProgressArg = None,
    times: Optional[Sequence[float]] = None,
    guidance_interval: Optional[tuple[float, float]] = None,
    guidance_channels: Union[slice, int, None] = None,
    skip_guidance: Optional[SkipLayerGuidance] = None,
    skip_fn: Optional[Callable[[torch.Tensor, float, tuple[int, ...]], torch.Tensor]] = None,
) -> torch.Tensor:
    """Integrate from ``noise`` (``t = 1``) to ``t = 0`` and return the final state (float32).

    Args:
        guidance: CFG weight ``w`` (zoo convention), a :class:`Guidance`, or ``fn(t) -> w``
            (ml-flextok's callable ``guidance_scale(t)``).
        guidance_on_time: schedules/callables receive the time ``t`` (True, the FlexTok
            convention) rather than the progress ``step / steps``.
        norm_guidance: ``True`` (FlexTok's APG defaults) or an :class:`APG` for norm-guided CFG.
        times: an explicit grid (replaces ``steps`` and ``shift``; see the module docstring).
        guidance_interval: ``(lo, hi)``: CFG only where ``lo <= t <= hi``; elsewhere one
            conditional pass of ``B`` rows (``velocity_fn(x, t, False)``).
        guidance_channels: guide only these channels of dim 1 (a slice or the first ``k``).
        skip_guidance, skip_fn: skip-layer guidance and the skipped-blocks velocity of the ``B``
            conditional rows (both or neither); acts on guided steps inside its window only.
    """
    if solver not in SOLVERS:
        raise InputError(f"unknown solver {solver!r}; choose one of {SOLVERS}")
    g = as_guidance(guidance)
    apg = (APG() if norm_guidance is True else norm_guidance) or None
    interval = check_interval(guidance_interval)
    if (skip_guidance is None) != (skip_fn is None):
        raise InputError("skip-layer guidance needs both skip_guidance= and skip_fn= (the velocity with its layers skipped)")
    if apg is not None and (interval is not None or guidance_channels is not None):
        raise InputError("norm guidance (APG) sees every step and all channels: drop guidance_interval/guidance_channels")
    if times is not None:
        if steps is not None and steps != len(times) - 1:
            raise InputError(f"steps={steps} disagrees with a time grid of {len(times)} points; give one of them")
        ts = _check_times(times)
        steps = len(ts) - 1
        uniform = False
    else:
        if steps is None:
            raise InputError("give steps= (a uniform grid from 1 to 0) or times= (an explicit grid)")
        ts = flow_timesteps(steps, shift)
        uniform = shift == 1.0
    increasing = ts[-1] > ts[0]
    x = noise.to(torch.float32)
    b = x.shape[0]
    running: Optional[torch.Tensor] = None
    report = progress_reporter(progress, steps, "flow")

    def weight(i: int, t: float) -> float:
        if g.fn is not None:
            return float(g.fn(t if guidance_on_time else i / steps))
        return g.weight_at(((t - ts[0]) if increasing else (1.0 - t)) if guidance_on_time else i / steps)

    def velocity(xx: torch.Tensor, i: int, t: float) -> torch.Tensor:
        nonlocal running
        if not g.active or not in_interval(t, interval):
            return velocity_fn(xx, t, False).float()
        # as ml-flextok: once guidance is on, every step runs both passes (APG's momentum
        # sees every step, even where w == 1)
        w = weight(i, t)
        v = velocity_fn(torch.cat([xx, xx], dim=0), t, True).float()
        cond, uncond = v[:b], v[b:]
        if apg is None:
            out = cfg_channels(v, w, guidance_channels) if guidance_channels is not None else uncond + w * (cond - uncond)
        else:
            out, running = apg_combine(cond, uncond, w, running, apg)
        if skip_guidance is not None and skip_guidance.active(i, steps):
            out = skip_guidance.combine(out, cond, skip_fn(xx, t, skip_guidance.layers).float())
        return out

    try:
        for i in range(steps):
            t, t_next = ts[i], ts[i + 1]
            dt = 1.0 / steps if uniform else t - t_next  # x - dt v == x + (t_next - t) v
            v = velocity(x, i, t)
            if solver == "euler":
                x = x - dt * v
            else:
                x_pred = x - dt * v
                v2 = velocity(x_pred, i, t_next)
                x = x - dt * 0.5 * (v + v2)
            report(i + 1)
    finally:
        report.close()
    return x

