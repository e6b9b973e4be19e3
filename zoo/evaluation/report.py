"""What ``zoo eval`` found, as JSON, as a Markdown table and as a rate-distortion plot.

One row per (model, setting): the token count or codebook levels decoded, items measured, bits
per item (and bits per pixel for images, kbps for audio), and per metric the mean over items with
its 95% interval (:func:`zoo.evaluation.stats.summarize`); rFID is one value per set.

Example:
    >>> r = EvalReport.from_dict({"modality": "image", "metric_names": ["psnr"], "rows": [
    ...     {"model": "a.x", "tokens": 4, "codebooks": None, "items": 3, "tokens_per_item": 4, "bits_per_item": 64.0,
    ...      "metrics": {"psnr": {"mean": 20.0, "ci95": [19.0, 21.0], "std": 0.4, "n": 3, "non_finite": 0}}}]})
    >>> print(r.to_markdown().splitlines()[2])
    | a.x | 4 | 64 | 20.00 ± 1.00 |
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["EvalReport", "library_versions"]


def library_versions() -> dict[str, str]:
    """Versions of the libraries that computed the numbers (those installed).

    Example:
        >>> "torch" in library_versions()
        True
    """
    from importlib import metadata

    out = {}
    for dist in ("torch", "torchmetrics", "torch-fidelity", "auraloss", "librosa", "pesq", "pystoi"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return out


def _fmt(value: float | None, digits: int) -> str:
    if value is None:
        return "—"
    if math.isinf(value):
        return "inf"
    return f"{value:.{digits}f}"


_DIGITS = {"psnr": 2, "ssim": 4, "lpips": 4, "rfid": 2, "mrstft": 3, "mel": 3, "si_snr": 2, "pesq": 3, "stoi": 3}


@dataclass
class EvalReport:
    """The result of :func:`zoo.eval` (see the module docstring); ``rows`` are JSON-ready dicts."""

    modality: str
    metric_names: list[str]
    rows: list[dict[str, Any]] = field(default_factory=list)
    models: dict[str, dict[str, Any]] = field(default_factory=dict)
    inputs: dict[str, Any] = field(default_factory=dict)
    failures: list[dict[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)

    # -- building -------------------------------------------------------------------------------
    def add_row(self, model: str, cell: Any, *, min_fid_items: int = 2, per_item: bool = False) -> dict[str, Any]:
        """Summarise one (model, setting) of per-item values (``zoo.evaluation.runner._Cell``)."""
        from zoo.evaluation.metrics import METRICS
        from zoo.evaluation.stats import summarize

        n = len(cell.keys)
        row: dict[str, Any] = {
            "model": model, "tokens": cell.tokens, "codebooks": cell.codebooks, "items": n,
            "tokens_per_item": _mean(cell.token_counts), "bits_per_item": _mean(cell.bits), "rate": cell.rate_note,
        }
        if self.modality == "image":
            row["bits_per_pixel"] = _mean([b / u for b, u in zip(cell.bits, cell.units)])
        else:
            seconds = sum(cell.units)
            row["kbps"] = sum(cell.bits) / seconds / 1000 if seconds else None
            row["seconds"] = seconds
        metrics: dict[str, Any] = {}
        for name in self.metric_names:
            if METRICS[name].per_item:
                metrics[name] = summarize(cell.values[name])
            elif name == "rfid":
                metrics[name] = self._rfid(cell.fid, min_fid_items)
        row["metrics"] = metrics
        if per_item:
            row["per_item"] = {"keys": list(cell.keys), "bits": list(cell.bits), **{k: list(v) for k, v in cell.values.items()}}
        self.rows.append(row)
        return row

    @staticmethod
    def _rfid(fid: Any, min_items: int) -> dict[str, Any]:
        n = fid.n if fid is not None else 0
        need = max(2, min_items)
        if n < need:
            return {"value": None, "n": n, "skipped": f"rFID needs at least {need} images, got {n}"}
        out: dict[str, Any] = {"value": fid.compute(), "n": n}
        if n < 2048:
            out["note"] = f"over {n} images (fewer than the 2048 feature dimensions): biased high, compare only at equal n"
        return out

    # -- output ---------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Everything as plain JSON-able values."""
        from zoo.evaluation.metrics import METRICS

        return {
            "modality": self.modality,
            "metrics": {n: METRICS[n].to_dict() for n in self.metric_names},
            "metric_names": list(self.metric_names),
            "rows": self.rows,
            "models": self.models,
            "inputs": self.inputs,
            "failures": self.failures,
            "notes": self.notes,
            "settings": self.settings,
            "rate_convention": ("bits per item = ids x log2(codebook size) for discrete tokens (every codebook level "
                                "counted); latents x channels x dtype bits for continuous tokenizers; no entropy coding"),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EvalReport:
        """Rebuild a report from :meth:`to_dict` output (or a report.json), e.g. to re-plot it."""
        return cls(modality=data["modality"], metric_names=list(data["metric_names"]), rows=list(data.get("rows", [])),
                   models=dict(data.get("models", {})), inputs=dict(data.get("inputs", {})),
                   failures=list(data.get("failures", [])), notes=list(data.get("notes", [])),
                   settings=dict(data.get("settings", {})))

    @classmethod
    def load(cls, path: str | os.PathLike) -> EvalReport:
        """Read a report.json written by :meth:`to_json`."""
        return cls.from_dict(json.loads(Path(path).read_text()))

    def to_json(self, path: str | os.PathLike | None = None) -> str:
        """The report as indented JSON (written to ``path`` when given). ``inf`` (PSNR of an exact
        reconstruction) is written as the string ``"inf"``."""
        text = json.dumps(_json_safe(self.to_dict()), indent=2) + "\n"
        if path is not None:
            Path(path).write_text(text)
        return text

    def to_markdown(self) -> str:
        """One table: a row per (model, setting), ``mean ± half-width of the 95% interval`` per metric."""
        from zoo.evaluation.metrics import METRICS

        audio = self.modality == "audio"
        head = ["model", "codebooks" if audio else "tokens", "kbps" if audio else "bits/item"]
        for name in self.metric_names:
            info = METRICS[name]
            unit = f" ({info.unit})" if info.unit else ""
            head.append(f"{info.label}{unit} {'↑' if info.higher_is_better else '↓'}")
        lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
        for row in self.rows:
            setting = row["codebooks"] if audio else row["tokens"]
            if setting is None:
                setting = (self.models.get(row["model"], {}).get("codebooks", 1) if audio
                           else _fmt(row["tokens_per_item"], 0))
            rate = _fmt(row.get("kbps"), 2) if audio else _fmt(row["bits_per_item"], 0)
            cells = [row["model"], str(setting), rate]
            for name in self.metric_names:
                cells.append(_cell(row["metrics"].get(name, {}), _DIGITS.get(name, 3)))
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines) + "\n"

    def plot(self, path: str | os.PathLike, *, x: str | None = None, metrics: Sequence[str] | None = None,
             title: str | None = None) -> Path:
        """Write the rate-distortion plot (png, pdf or svg by suffix): see :func:`zoo.evaluation.plot.plot_report`."""
        from zoo.evaluation.plot import plot_report

        return plot_report(self, path, x=x, metrics=metrics, title=title)


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _cell(summary: dict[str, Any], digits: int) -> str:
    if "value" in summary:  # a set metric
        return _fmt(summary["value"], digits) if summary["value"] is not None else "— (too few items)"
    mean, ci = summary.get("mean"), summary.get("ci95")
    if mean is None:
        return "—"
    text = _fmt(mean, digits)
    if ci is not None and math.isfinite(mean):
        text += f" ± {_fmt((ci[1] - ci[0]) / 2, digits)}"
    if summary.get("non_finite"):
        text += f" ({summary['non_finite']} inf/nan)"
    return text


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return "inf" if value > 0 else "-inf" if value < 0 else "nan"
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value
