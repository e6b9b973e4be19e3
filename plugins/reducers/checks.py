"""Argument checks every reducer shares: counts, ratios, rates and the tokens themselves.

Each raises :class:`zoo.errors.ReducerError` naming the argument and what it accepts, so
``r=2.5``, ``r="8"``, ``keep=True`` or NaN tokens never reach the arithmetic.

Example:
    >>> check_count("r", 8)
    8
    >>> check_count("r", "8")  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    zoo.errors.ReducerError: r must be a whole number (an int), got '8' (str)
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import torch

from zoo.errors import ReducerError

__all__ = ["check_count", "check_rate", "check_real", "check_tokens"]


def _describe(value: Any) -> str:
    return f"{value!r} ({type(value).__name__})"


def check_count(name: str, value: Any, *, minimum: int = 0) -> int:
    """``value`` as an int >= ``minimum``: ints (numpy / 0-d integer tensors too), not bools,
    floats or strings."""
    if isinstance(value, torch.Tensor) and value.dim() == 0 and not value.is_floating_point() and value.dtype != torch.bool:
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ReducerError(f"{name} must be a whole number (an int), got {_describe(value)}")
    if int(value) < minimum:
        raise ReducerError(f"{name} must be >= {minimum}, got {int(value)}")
    return int(value)


def check_real(name: str, value: Any) -> float:
    """``value`` as a finite float: ints and floats, not bools or strings."""
    if isinstance(value, torch.Tensor) and value.dim() == 0 and value.dtype != torch.bool:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ReducerError(f"{name} must be a number, got {_describe(value)}")
    if not math.isfinite(float(value)):
        raise ReducerError(f"{name} must be finite, got {value}")
    return float(value)


def check_rate(name: str, value: Any, *, low: float = 0.0, high: float = 1.0) -> float:
    """``value`` as a float in ``(low, high]``."""
    rate = check_real(name, value)
    if not low < rate <= high:
        raise ReducerError(f"{name} must be in ({low:g}, {high:g}], got {value}")
    return rate


def check_tokens(tokens: Any, what: str = "reduce()") -> None:
    """Tokens a reducer can take: a float ``[B, N, D]`` tensor, B, N, D >= 1, all finite."""
    if not isinstance(tokens, torch.Tensor) or tokens.dim() != 3 or not tokens.is_floating_point():
        shape = tuple(tokens.shape) if isinstance(tokens, torch.Tensor) else type(tokens).__name__
        dtype = f" {tokens.dtype}" if isinstance(tokens, torch.Tensor) else ""
        raise ReducerError(f"{what} expects floating tokens [B, N, D], got {shape}{dtype}")
    if 0 in tokens.shape:
        raise ReducerError(f"{what} got no tokens: shape {tuple(tokens.shape)} (an empty batch, sequence or feature)")
    if not bool(torch.isfinite(tokens).all()):
        raise ReducerError(f"{what}: tokens hold NaN/Inf values; a reducer cannot rank them (check the encoder's input)")
