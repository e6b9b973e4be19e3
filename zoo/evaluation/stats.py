"""Aggregating per-item values: mean and a 95% confidence interval of the mean.

The interval is Student's t interval, ``mean ± t(0.975, n-1) * s / sqrt(n)`` with ``s`` the sample
standard deviation (``n - 1`` in the denominator): the usual interval for a mean over a few dozen
to thousands of items. With one item there is no interval (``None``). Non-finite values (PSNR of
an exact reconstruction is ``inf``) are counted apart and left out of the mean.

Example:
    >>> s = summarize([30.0, 32.0, 34.0])
    >>> s["mean"], s["n"], [round(v, 3) for v in s["ci95"]]
    (32.0, 3, [27.032, 36.968])
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

__all__ = ["summarize", "t_quantile"]


def t_quantile(p: float, dof: int) -> float:
    """The ``p`` quantile of Student's t with ``dof`` degrees of freedom (scipy).

    Example:
        >>> round(t_quantile(0.975, 2), 4), round(t_quantile(0.975, 10**6), 3)
        (4.3027, 1.96)
    """
    from scipy.stats import t

    return float(t.ppf(p, dof))


def summarize(values: Sequence[float]) -> dict[str, Any]:
    """``{"mean", "std", "ci95": [lo, hi] | None, "n", "non_finite"}`` of per-item ``values``.

    Example:
        >>> summarize([1.0])["ci95"] is None
        True
        >>> summarize([20.0, float("inf")])["non_finite"]
        1
    """
    finite = [float(v) for v in values if math.isfinite(float(v))]
    n = len(finite)
    out: dict[str, Any] = {"mean": None, "std": None, "ci95": None, "n": n, "non_finite": len(values) - n}
    if n == 0:
        return out
    mean = math.fsum(finite) / n
    out["mean"] = mean
    if n > 1:
        std = math.sqrt(math.fsum((v - mean) ** 2 for v in finite) / (n - 1))
        half = t_quantile(0.975, n - 1) * std / math.sqrt(n)
        out["std"] = std
        out["ci95"] = [mean - half, mean + half]
    else:
        out["std"] = 0.0
    return out
