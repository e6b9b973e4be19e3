"""Classifier-free guidance: one weight convention, schedules, and norm-guided CFG (APG).

zoo's convention is ``guided = uncond + w * (cond - uncond)``: ``w = 1`` is the conditional
model alone, ``w = 0`` the unconditional one. References that write ``cond + s * (cond -
uncond)`` (MUSE/MaskGIT "guidance_scale" in TiTok's ``constant``/``linear`` modes) map onto it
exactly with :func:`weight_from_cond_scale` (``w = 1 + s``).

Guided drivers run the conditional and unconditional inputs as ONE batch of ``2B`` rows
(conditional rows first); :func:`cfg_combine` splits and combines them.

Example:
    >>> import torch
    >>> g = Guidance(scale=3.0, schedule="linear")
    >>> [g.weight(i, 4) for i in range(4)]
    [1.0, 1.5, 2.0, 2.5]
    >>> out = torch.tensor([[2.0], [1.0]])          # [cond; uncond] rows
    >>> cfg_combine(out, 3.0).tolist()
    [[4.0]]
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Optional, Union

import torch

from zoo.errors import InputError

__all__ = [
    "Guidance",
    "SCHEDULES",
    "weight_from_cond_scale",
    "cond_scale_from_weight",
    "cfg_combine",
    "APG",
    "apg_combine",
    "as_guidance",
]

SCHEDULES = ("constant", "linear", "power_cosine", "interval")


def weight_from_cond_scale(s: float) -> float:
    """Map a reference's ``cond + s * (cond - uncond)`` scale onto zoo's ``w`` (``w = 1 + s``).

    Example:
        >>> weight_from_cond_scale(4.5)
        5.5
    """
    return 1.0 + float(s)


def cond_scale_from_weight(w: float) -> float:
    """Inverse of :func:`weight_from_cond_scale` (``s = w - 1``)."""
    return float(w) - 1.0


def _power_cosine(scale: float, power: float, r: float) -> float:
    # MDT's schedule, evaluated in float32 tensor arithmetic exactly as TiTok/RAR do, so that
    # the weights (and hence the guided logits) are bit-identical to the references'.
    pow_t = torch.ones(1) * power
    step = (1 - torch.cos((torch.tensor(r, dtype=torch.float32) ** pow_t) * torch.pi)) * 1 / 2
    return float(((scale - 1) * step + 1).item())


@dataclass(frozen=True)
class Guidance:
    """A CFG weight schedule over sampling progress ``r = step / total`` (0 at the first step).

    * ``constant``: ``w = scale``
    * ``linear``: ``w = 1 + (scale - 1) * r`` (MUSE's increasing schedule)
    * ``power_cosine``: ``w = 1 + (scale - 1) * (1 - cos(pi * r**power)) / 2`` (MDT)
    * ``interval``: ``w = scale`` for ``interval[0] <= r < interval[1]``, else 1 (guidance in a
      limited interval, Kynkäänniemi et al. 2024)

    ``fn``, when given, overrides the schedule: ``w = fn(r)``.

    Example:
        >>> Guidance(2.0, "interval", interval=(0.25, 0.75)).weight(0, 4), Guidance(2.0, "interval", interval=(0.25, 0.75)).weight(1, 4)
        (1.0, 2.0)
    """

    scale: float = 1.0
    schedule: str = "constant"
    power: float = 1.0
    interval: tuple[float, float] = (0.0, 1.0)
    fn: Optional[Callable[[float], float]] = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if isinstance(self.scale, bool) or not isinstance(self.scale, (int, float)) or not math.isfinite(self.scale):
            raise InputError(f"the guidance scale must be a finite number, got {self.scale!r}")
        if self.schedule not in SCHEDULES:
            raise InputError(f"unknown guidance schedule {self.schedule!r}; choose one of {SCHEDULES}")
        lo, hi = self.interval
        if not 0.0 <= lo <= hi <= 1.0:
            raise InputError(f"guidance interval must satisfy 0 <= lo <= hi <= 1, got {self.interval}")

    @property
    def active(self) -> bool:
        """False when every step has ``w == 1`` (no unconditional pass is needed)."""
        return self.fn is not None or float(self.scale) != 1.0

    def weight(self, step: int, total: int) -> float:
        """The weight ``w`` at ``step`` (0-based) of ``total`` steps (``r = step / total``)."""
        return self.weight_at(step / total)

    def weight_at(self, r: float) -> float:
        """The weight ``w`` at progress ``r`` in [0, 1]."""
        if self.fn is not None:
            return float(self.fn(r))
        if self.schedule == "constant":
            return float(self.scale)
        if self.schedule == "linear":
            return 1.0 + (float(self.scale) - 1.0) * r
        if self.schedule == "power_cosine":
            return _power_cosine(float(self.scale), float(self.power), r)
        lo, hi = self.interval
        return float(self.scale) if lo <= r < hi else 1.0


def as_guidance(g: Union["Guidance", float, int, None, Callable[[float], float]]) -> Guidance:
    """Accept a :class:`Guidance`, a constant weight, ``None`` (no guidance) or ``fn(r) -> w``.

    Example:
        >>> as_guidance(4.0).scale, as_guidance(None).active
        (4.0, False)
    """
    if g is None:
        return Guidance(1.0)
    if isinstance(g, Guidance):
        return g
    if callable(g):
        return Guidance(fn=g)
    if isinstance(g, (str, bytes, bool)):
        raise InputError(f"the guidance scale must be a number, a Guidance or a callable, got {g!r}")
    return Guidance(float(g))


def cfg_combine(out: torch.Tensor, w: float) -> torch.Tensor:
    """``uncond + w * (cond - uncond)`` from a ``[2B, ...]`` batch (conditional rows first).

    Example:
        >>> cfg_combine(torch.tensor([[1.0], [0.0]]), 1.0).tolist()
        [[1.0]]
    """
    if out.shape[0] % 2:
        raise InputError(f"cfg_combine expects [cond; uncond] rows (an even batch), got {out.shape[0]} rows")
    cond, uncond = out.chunk(2, dim=0)
    return uncond + (cond - uncond) * w


@dataclass
class APG:
    """Norm-guided CFG settings (adaptive projected guidance, Sadat et al. 2024,
    arXiv:2410.02416) with FlexTok's defaults: momentum -0.5, norm threshold 2.5, eta 0.

    The running average lives in the sampling loop (see :func:`apg_combine`), never here.
    """

    momentum: float = -0.5
    norm_threshold: float = 2.5
    eta: float = 0.0


def apg_combine(
    cond: torch.Tensor,
    uncond: torch.Tensor,
    w: float,
    running: Optional[torch.Tensor],
    apg: Optional[APG] = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """APG: ``cond + (w - 1) * (orth(d) + eta * par(d))`` with ``d`` the momentum-averaged,
    norm-clipped ``cond - uncond``, projected against ``cond`` per sample (over all dims but
    the first, in float64). Returns ``(guided, new_running_average)``.

    Matches ml-flextok's ``normalized_guidance`` with a ``MomentumBuffer`` per image.

    Example:
        >>> c, u = torch.ones(1, 2, 2, 2), torch.zeros(1, 2, 2, 2)
        >>> guided, run = apg_combine(c, u, 3.0, None)
        >>> torch.allclose(guided, c)    # the difference is parallel to cond: no orthogonal update
        True
    """
    apg = apg or APG()
    diff = cond - uncond
    running = diff if running is None else diff + apg.momentum * running
    diff = running
    dims = list(range(1, diff.dim()))
    if apg.norm_threshold > 0:
        norm = diff.norm(p=2, dim=dims, keepdim=True)
        diff = diff * torch.minimum(torch.ones_like(diff), apg.norm_threshold / norm)
    v0 = diff.double()
    v1 = torch.nn.functional.normalize(cond.double(), dim=dims)
    par = (v0 * v1).sum(dim=dims, keepdim=True) * v1
    orth = v0 - par
    update = orth.to(diff.dtype) + apg.eta * par.to(diff.dtype)
    return cond + (w - 1) * update, running

