"""The work ``zoo eval`` does on one batch of decoded inputs, on any engine: encode, decode at
every setting, score. A :class:`~zoo.datasets.engines.BatchJob` (``setup()`` loads the model and
builds the metric networks where the job runs), so the local engine and every Ray actor run the
same code on the same batches.

Each measured item becomes one row::

    {"key": "cats/1.png", "units": 4096.0,            # pixels (images) or seconds (audio)
     "real_features": tensor[2048] | None,            # Inception features of the input (rFID)
     "settings": [{"bits": 63.9, "tokens": 4, "scores": {"psnr": 17.2, ...},
                   "features": tensor[2048] | None}, ...]}   # one per setting, in order

Inputs that cannot be read, or that the model refuses, become ``{"key", "error"}`` failures.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from zoo.errors import InputError, ZooError

__all__ = ["EvalJob"]


@dataclass
class EvalJob:
    """Measure one batch (see the module docstring). The model is ``model`` (the local engine's)
    or loaded from ``spec`` in :meth:`setup` (each Ray actor its own replica). ``metric_weights``
    are local files resolved on the driver: workers never download."""

    loader: Any
    modality: str
    settings: list[tuple[int | None, int | None]]
    metrics: list[str]
    spec: Any = None  # a zoo.datasets.engines.ModelSpec
    model: Any = None
    metric_weights: dict[str, str] = field(default_factory=dict)
    lpips_net: str = "alex"
    steps: int | None = None
    guidance_scale: float | None = None
    seed: int = 0
    suite: Any = None  # a MetricSuite, built in setup() where the job runs (never pickled)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["suite"] = None
        if self.spec is not None:
            state["model"] = None  # each Ray actor loads its own replica in setup()
        return state

    def setup(self) -> None:
        if self.model is None:
            self.model = self.spec.load()
        if self.suite is None:
            from zoo.evaluation.metrics import MetricSuite

            self.suite = MetricSuite(self.modality, self.metrics, weights=self.metric_weights, lpips_net=self.lpips_net,
                                     device=_model_device(self.model))

    def __call__(self, decoded: Sequence[tuple[Any, Any, str | None]]) -> Any:
        from zoo.datasets.engines import BatchResult

        result = BatchResult()
        slots: list[Any] = [None] * len(decoded)
        groups: dict[tuple, list[int]] = {}
        for i, (item, x, error) in enumerate(decoded):
            if error is not None:
                slots[i] = {"key": item.key, "error": error}
            else:
                groups.setdefault(tuple(x.shape), []).append(i)
        for idx in groups.values():
            entries = [decoded[i] for i in idx]
            try:
                rows = self.measure(entries)
            except ZooError:  # one bad input must not sink its neighbours: measure them one by one
                rows = []
                for entry in entries:
                    try:
                        rows.extend(self.measure([entry]))
                    except ZooError as exc:
                        rows.append({"key": entry[0].key, "error": f"{type(exc).__name__}: {exc}"})
            for i, row in zip(idx, rows):
                slots[i] = row
        for slot in slots:
            (result.failures if "error" in slot else result.rows).append(slot)
        return result

    def measure(self, entries: Sequence[tuple[Any, Any, Any]]) -> list[dict[str, Any]]:
        """Rows for equal-shape decoded inputs ``[(item, tensor, None), ...]``."""
        from zoo.evaluation.rate import bits_per_item, tokens_per_item
        from zoo.evaluation.runner import _audio_scores, _decode, _unit_images

        model, suite = self.model, self.suite
        device = _model_device(model)
        x = torch.stack([e[1] for e in entries]).to(device)
        rate = self.loader.sample_rate
        with torch.inference_mode():
            tokens = model.encode(x[:, None, :], rate) if self.modality == "audio" else model.encode(x)
        rows = [{"key": e[0].key, "settings": [], "real_features": None} for e in entries]
        if self.modality == "image":
            target = _unit_images(x)
            real = suite.features(target) if suite.wants_features else None
            for i, row in enumerate(rows):
                row["units"] = float(x.shape[-1] * x.shape[-2])
                row["real_features"] = None if real is None else real[i].float()
        else:
            targets = [w.float().cpu() for w in x]
            for row, w in zip(rows, targets):
                row["units"] = w.shape[-1] / rate
        kw = {"steps": None if self.modality == "audio" else self.steps, "guidance_scale": self.guidance_scale,
              "seed": self.seed, "device": str(device)}
        for setting in self.settings:
            sel, out = _decode(model, tokens, setting, kw)
            feats = None
            if self.modality == "image":
                pred = _unit_images(out)
                if pred.shape != target.shape:
                    raise InputError(f"{getattr(model, 'name', 'the model')} decoded {tuple(pred.shape)} from inputs of "
                                     f"{tuple(target.shape)}; zoo eval compares reconstructions with their inputs at one size")
                scores = suite.item_scores(pred, target)
                feats = suite.features(pred) if suite.wants_features else None
            else:
                scores = _audio_scores(suite, out, targets, rate)
            bits, counts = bits_per_item(sel).tolist(), tokens_per_item(sel).tolist()
            for i, row in enumerate(rows):
                row["settings"].append({"bits": bits[i], "tokens": int(counts[i]),
                                        "scores": {m: float(v[i]) for m, v in scores.items()},
                                        "features": None if feats is None else feats[i].float()})
        return rows


def _model_device(model: Any) -> torch.device:
    try:
        return next(model.parameters()).device
    except (AttributeError, StopIteration, TypeError):
        return torch.device("cpu")
