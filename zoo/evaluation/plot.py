"""The rate-distortion plot of an :class:`~zoo.evaluation.report.EvalReport` (matplotlib).

One panel per metric; x is the rate (bits per item by default for images, kbps for audio; or
tokens per item, bits per pixel), on a log-2 axis; one line per model through its settings (each
point labelled with its token count, or ``q<levels>`` for codebook levels), with the 95% interval
of the mean as a band (rFID, one value per set, has none). A model measured at
one setting (a fixed-length tokenizer) is one marker. Each panel says which way is better.
Written with matplotlib's object API (no pyplot state, no display needed); the suffix of the path
picks the format (png at 200 dpi, pdf, svg).

Example:
    >>> import tempfile, os
    >>> from zoo.evaluation.report import EvalReport
    >>> r = EvalReport.from_dict({"modality": "image", "metric_names": ["psnr"], "rows": [
    ...     {"model": "a.x", "tokens": k, "codebooks": None, "items": 3, "tokens_per_item": k, "bits_per_item": 16.0 * k,
    ...      "metrics": {"psnr": {"mean": 10.0 + k, "ci95": [9.0 + k, 11.0 + k], "n": 3}}} for k in (1, 4, 16)]})
    >>> path = plot_report(r, os.path.join(tempfile.mkdtemp(), "rd.png"))
    >>> path.stat().st_size > 1000
    True
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from zoo.errors import InputError, ZooError

__all__ = ["X_AXES", "plot_report"]

X_AXES = {
    "bits": ("bits_per_item", "bits per item"),
    "tokens": ("tokens_per_item", "tokens per item"),
    "bpp": ("bits_per_pixel", "bits per pixel"),
    "kbps": ("kbps", "bitrate (kbit/s)"),
}
_SUFFIXES = (".png", ".pdf", ".svg")


def _figure(n_panels: int):
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise ZooError("the rate-distortion plot needs matplotlib: pip install 'zoo[eval]'") from None
    cols = min(n_panels, 4)
    rows = math.ceil(n_panels / cols)
    fig = Figure(figsize=(3.6 * cols, 3.0 * rows + 0.5), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel().tolist()
    for ax in axes[n_panels:]:
        ax.set_visible(False)
    return fig, axes[:n_panels]


def plot_report(report: Any, path: str | os.PathLike, *, x: str | None = None, metrics: Sequence[str] | None = None,
                title: str | None = None) -> Path:
    """Draw ``report`` (see the module docstring) to ``path``; returns the path.

    ``x``: ``"bits"``, ``"tokens"``, ``"bpp"`` (images) or ``"kbps"`` (audio); default bits for
    images, kbps for audio. ``metrics``: the panels (default: every metric with a value).
    """
    from zoo.evaluation.metrics import METRICS

    path = Path(path)
    if path.suffix.lower() not in _SUFFIXES:
        raise InputError(f"plot file must end in {', '.join(_SUFFIXES)}; got {path.name!r}")
    x = x or ("kbps" if report.modality == "audio" else "bits")
    if x not in X_AXES:
        raise InputError(f"x axis must be one of {', '.join(X_AXES)}, got {x!r}")
    key, xlabel = X_AXES[x]
    if (x == "kbps") != (report.modality == "audio") and x in ("kbps", "bpp"):
        raise InputError(f"x axis {x!r} does not apply to {report.modality} reports")
    names = list(metrics) if metrics else [n for n in report.metric_names if any(_value(r, n) is not None for r in report.rows)]
    unknown = [n for n in names if n not in report.metric_names]
    if unknown:
        raise InputError(f"the report has no metric {', '.join(unknown)}; it has {', '.join(report.metric_names)}")
    if not names:
        raise InputError("nothing to plot: the report holds no metric values")
    fig, axes = _figure(len(names))
    models = list(dict.fromkeys(r["model"] for r in report.rows))
    colours = [f"C{i % 10}" for i in range(len(models))]
    markers = "osD^vP*Xh<>"
    for ax, name in zip(axes, names):
        info = METRICS[name]
        for i, model in enumerate(models):
            rows = sorted((r for r in report.rows if r["model"] == model and r.get(key) is not None and _value(r, name) is not None),
                          key=lambda r: r[key])
            if not rows:
                continue
            xs = [r[key] for r in rows]
            ys = [_value(r, name) for r in rows]
            ax.plot(xs, ys, marker=markers[i % len(markers)], color=colours[i], label=model, linewidth=1.6, markersize=5)
            if x != "tokens" and len(rows) > 1:  # which setting each point is: its token count / codebook levels
                for r, xv, yv in zip(rows, xs, ys):
                    label = f"q{r['codebooks']}" if r.get("codebooks") else f"{r['tokens_per_item']:g}"
                    ax.annotate(label, (xv, yv), textcoords="offset points", xytext=(0, 6), ha="center", fontsize=7,
                                color=colours[i])
            bands = [r["metrics"][name].get("ci95") for r in rows]
            if all(b is not None for b in bands) and len(rows) > 1:
                ax.fill_between(xs, [b[0] for b in bands], [b[1] for b in bands], color=colours[i], alpha=0.15, linewidth=0)
            elif all(b is not None for b in bands):
                ax.errorbar(xs, ys, yerr=[[y - b[0] for y, b in zip(ys, bands)], [b[1] - y for y, b in zip(ys, bands)]],
                            color=colours[i], fmt="none", capsize=3)
        ax.set_xscale("log", base=2)
        ax.set_xlabel(xlabel)
        unit = f" ({info.unit})" if info.unit else ""
        ax.set_ylabel(f"{info.label}{unit}")
        ax.set_title(f"{info.label} ({'higher' if info.higher_is_better else 'lower'} is better)", fontsize=10)
        ax.grid(True, which="major", alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    n_items = report.inputs.get("count")
    fig.suptitle(title or f"Rate-distortion on {n_items} {report.modality} input(s)" if n_items else title or "Rate-distortion",
                 fontsize=11)
    if handles:
        fig.legend(handles, labels, loc="outside lower center", ncols=min(len(labels), 4), frameon=False, fontsize=9)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=200)
    return path


def _value(row: dict[str, Any], name: str) -> float | None:
    summary = row.get("metrics", {}).get(name) or {}
    value = summary.get("value", summary.get("mean"))
    if value is None or isinstance(value, str) or not math.isfinite(value):
        return None
    return float(value)
