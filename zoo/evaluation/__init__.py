"""Measure tokenizers: reconstruction quality against rate, on the user's own data (``zoo eval``).

* :func:`evaluate` (exported as ``zoo.eval``) runs models over inputs at several token budgets;
* :mod:`zoo.evaluation.metrics`: the metrics and the libraries that compute them;
* :mod:`zoo.evaluation.metric_weights`: weights of metric networks (LPIPS, FID Inception),
  resolved through zoo's cache and offline rules;
* :mod:`zoo.evaluation.rate`: bits per item; :mod:`zoo.evaluation.stats`: mean and 95% interval;
* :class:`~zoo.evaluation.report.EvalReport`: JSON, Markdown and the rate-distortion plot.

Importing this package does not import torch.
"""

from __future__ import annotations

from typing import Any

__all__ = ["EvalReport", "evaluate"]


def __getattr__(name: str) -> Any:
    if name == "evaluate":
        from zoo.evaluation.runner import evaluate

        return evaluate
    if name == "EvalReport":
        from zoo.evaluation.report import EvalReport

        return EvalReport
    raise AttributeError(f"module 'zoo.evaluation' has no attribute {name!r}")
