"""Composable classifier-free-guidance pieces for continuous generators, all in zoo's one
convention ``guided = uncond + w * (cond - uncond)`` (``w = 1``: conditional alone).

* :func:`cfg_channels` — CFG on a channel subset; the other channels keep the conditional
  output. ``channels=slice(0, C)`` of a ``[eps | variance]`` output is **CFG on the noise
  prediction only** (DiT/MAR ``forward_with_cfg``: the learned variance stays the conditional
  one); ``slice(0, 3)`` of a 32-channel velocity is LightningDiT's default (its
  ``model_out[:, :3]``).
* :func:`in_interval` — a **guidance interval on t**: outside it ``w = 1`` and a driver may
  skip the unconditional pass altogether (the result is the conditional output either way).
* :func:`ramp_progress` — what a schedule of :class:`~zoo.sampling.guidance.Guidance` reads in
  a block-wise loop: the **block index** (``"block"``: ``i / n``; ``"block_end"``:
  ``i / (n - 1)``, VAR's ``si / (num_stages - 1)``) or the **generated fraction** after the
  block (``"fraction"``, MAR's linear ramp ``1 + (cfg - 1) (L - masked) / L``).
* :class:`SkipLayerGuidance` — **skip-layer guidance** (SLG, Stability's SD3.5 recipe and diffusers'
  ``StableDiffusion3Pipeline``): on guided steps ``start * T < i < stop * T`` one more pass of the
  ``B`` conditional rows with ``layers`` skipped adds ``scale * (cond - skipped)`` to the CFG result.

How the references' formulas map onto ``w``: MAR ``cfg`` (``uncond + cfg (cond - uncond)``) and
LightningDiT ``cfg_scale`` are ``w`` itself; VAR's ``(1 + t) cond - t uncond`` is ``w = 1 + t``
(:func:`~zoo.sampling.guidance.weight_from_cond_scale`).

Example:
    >>> import torch
    >>> out = torch.tensor([[2.0, 5.0], [1.0, 0.0]])          # rows [cond; uncond], 2 channels
    >>> cfg_channels(out, 3.0, slice(0, 1)).tolist()           # channel 0 guided, channel 1 = cond
    [[4.0, 5.0]]
    >>> in_interval(0.05, (0.11, 1.0)), in_interval(0.5, (0.11, 1.0))
    (False, True)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Optional, Union

import torch

from zoo.errors import InputError

__all__ = ["RAMPS", "cfg_channels", "in_interval", "check_interval", "ramp_progress", "SkipLayerGuidance", "as_skip_layer_guidance"]

RAMPS = ("block", "block_end", "fraction")

Channels = Union[slice, int, None]


def _as_slice(channels: Channels) -> Optional[slice]:
    if channels is None or isinstance(channels, slice):
        return channels
    if isinstance(channels, bool) or not isinstance(channels, int) or channels < 1:
        raise InputError(f"guided channels must be a slice or a count >= 1, got {channels!r}")
    return slice(0, channels)


def cfg_channels(out: torch.Tensor, w: float, channels: Channels = None, dim: int = 1) -> torch.Tensor:
    """``[2B, ...]`` rows (conditional first) -> ``[B, ...]``: ``uncond + w (cond - uncond)`` on
    ``channels`` of ``dim`` (a slice, or ``k`` for the first ``k``; ``None``: all), the
    conditional rows elsewhere.

    Example:
        >>> out = torch.tensor([[1.0, 1.0], [0.0, 0.0]])
        >>> cfg_channels(out, 2.0).tolist(), cfg_channels(out, 2.0, 1).tolist()
        ([[2.0, 2.0]], [[2.0, 1.0]])
    """
    if out.shape[0] % 2:
        raise InputError(f"CFG expects [cond; uncond] rows (an even batch), got {out.shape[0]} rows")
    cond, uncond = out.chunk(2, dim=0)
    sl = _as_slice(channels)
    if sl is None:
        return uncond + w * (cond - uncond)
    d = dim % out.dim()
    idx = (slice(None),) * d + (sl,)
    guided = uncond[idx] + w * (cond[idx] - uncond[idx])
    result = cond.clone()
    result[idx] = guided
    return result


def check_interval(interval: Optional[tuple[float, float]]) -> Optional[tuple[float, float]]:
    """Validate a guidance interval ``(lo, hi)`` with ``lo <= hi`` (finite numbers)."""
    if interval is None:
        return None
    try:
        lo, hi = (float(v) for v in interval)
    except (TypeError, ValueError):
        raise InputError(f"a guidance interval is (lo, hi), got {interval!r}") from None
    if not (lo <= hi) or lo != lo or hi != hi:
        raise InputError(f"a guidance interval needs lo <= hi, got {interval!r}")
    return lo, hi


def in_interval(t: float, interval: Optional[tuple[float, float]]) -> bool:
    """True when guidance applies at time ``t``: ``lo <= t <= hi`` (always, for ``None``).

    LightningDiT's ``cfg_interval_start = 0.11`` (its time, 0 = noise, 1 = data) is
    ``interval=(0.11, 1.0)``: ``t < 0.11`` runs the conditional model alone.

    Example:
        >>> in_interval(0.11, (0.11, 1.0)), in_interval(0.3, None)
        (True, True)
    """
    if interval is None:
        return True
    lo, hi = interval
    return lo <= float(t) <= hi


def ramp_progress(ramp: str, index: int, total: int, fraction: float) -> float:
    """The progress ``r`` a CFG schedule reads at block ``index`` of ``total`` (see module doc).

    Example:
        >>> ramp_progress("block", 1, 4, 0.9), ramp_progress("block_end", 1, 3, 0.9), ramp_progress("fraction", 1, 4, 0.9)
        (0.25, 0.5, 0.9)
    """
    if ramp == "block":
        return index / total
    if ramp == "block_end":
        return index / (total - 1) if total > 1 else 1.0
    if ramp == "fraction":
        return float(fraction)
    raise InputError(f"unknown CFG ramp {ramp!r}; choose one of {RAMPS}")


@dataclass(frozen=True)
class SkipLayerGuidance:
    """Skip-layer guidance: ``guided + scale * (cond - skipped)`` at steps ``start * T < i < stop * T``.

    ``skipped`` is the conditional output of the model run with the transformer blocks ``layers``
    skipped (the plugin's ``skip_fn``; for SD3, ``SD3Transformer2DModel(..., skip_layers=layers)``).
    The window is on the step index ``i`` of ``T`` steps with strict bounds, as in diffusers'
    ``StableDiffusion3Pipeline`` and Stability's ``sd3_infer.py``; it acts only on steps that run CFG.
    Defaults are the pipeline's argument defaults (scale 2.8, window 0.01..0.2).

    Example:
        >>> slg = SkipLayerGuidance(layers=(7, 8, 9), scale=2.5)
        >>> [i for i in range(40) if slg.active(i, 40)]
        [1, 2, 3, 4, 5, 6, 7]
    """

    layers: tuple[int, ...]
    scale: float = 2.8
    start: float = 0.01
    stop: float = 0.2

    def __post_init__(self) -> None:
        layers = self.layers
        if isinstance(layers, (int, str)) or not all(isinstance(k, int) and not isinstance(k, bool) and k >= 0 for k in layers) or not layers:
            raise InputError(f"skip-layer guidance needs a non-empty list of block indices >= 0, got {layers!r}")
        object.__setattr__(self, "layers", tuple(int(k) for k in layers))
        for name in ("scale", "start", "stop"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise InputError(f"skip-layer guidance {name} must be a finite number, got {v!r}")
            object.__setattr__(self, name, float(v))
        if not self.start <= self.stop:
            raise InputError(f"skip-layer guidance needs start <= stop, got start={self.start}, stop={self.stop}")

    def active(self, step: int, steps: int) -> bool:
        """True when step ``step`` (0-based) of ``steps`` runs the skipped-layer pass."""
        return steps * self.start < step < steps * self.stop

    def combine(self, guided: torch.Tensor, cond: torch.Tensor, skipped: torch.Tensor) -> torch.Tensor:
        """``guided + (cond - skipped) * scale`` (the pipeline's order of operations)."""
        return guided + (cond - skipped) * self.scale

    def check_layers(self, num_layers: int) -> None:
        """Raise InputError when a layer index is not a block of a ``num_layers``-block model."""
        bad = [k for k in self.layers if k >= num_layers]
        if bad:
            raise InputError(f"skip-layer guidance layers {bad} do not exist: the model has {num_layers} blocks (0..{num_layers - 1})")


def as_skip_layer_guidance(value: Union[SkipLayerGuidance, Mapping[str, Any], bool, None]) -> Optional[SkipLayerGuidance]:
    """``None`` / ``False`` / ``{}`` -> off; a mapping (``layers``, ``scale``, ``start``, ``stop``) or an instance -> on.

    Example:
        >>> as_skip_layer_guidance({"layers": [7, 8, 9], "scale": 2.5}).layers
        (7, 8, 9)
        >>> as_skip_layer_guidance(False) is None
        True
    """
    if value is None or value is False or (isinstance(value, Mapping) and not value):
        return None
    if isinstance(value, SkipLayerGuidance):
        return value
    if isinstance(value, Mapping):
        unknown = set(value) - {"layers", "scale", "start", "stop"}
        if unknown or "layers" not in value:
            raise InputError(f"skip-layer guidance is {{layers, scale, start, stop}} (layers required), got keys {sorted(value)}")
        return SkipLayerGuidance(**{k: (tuple(v) if k == "layers" and not isinstance(v, (int, str)) else v) for k, v in value.items()})
    raise InputError(f"skip-layer guidance must be a SkipLayerGuidance, a dict with 'layers', or None/False, got {value!r}")
