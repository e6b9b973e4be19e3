"""``zoo.eval``: reconstruct the user's inputs with one or more tokenizers at several token budgets
and measure what is lost.

For every model, every input is read through :mod:`zoo.datasets` (the readers ``zoo tokenize``
uses), encoded once, and decoded at each setting:

* ``tokens=[1, 4, 16, ...]``: the first ``k`` tokens (``Tokens.truncate(k)``) for tokenizers that
  decode a prefix (FlexTok, One-D-Piece, ...); counts above a model's length are skipped, and a
  model that decodes only its full length (a fixed 2D grid: VQGAN, VAE) is measured once at its
  length; the report says so;
* ``codebooks=[1, 2, 4, 8]``: the first ``q`` residual levels (``Tokens.codebooks(q)``) of audio
  codecs with several codebooks;
* neither: the full tokens.

Each setting yields per-item metric values (summarised as mean and 95% interval), bits per item
(:mod:`zoo.evaluation.rate`), and for images rFID over the set. Decoders that draw noise get a
generator seeded ``seed`` at each batch, so runs repeat exactly.

Example:
    >>> import zoo  # doctest: +SKIP
    >>> report = zoo.eval("flextok.demo_tiny", ["examples/images"], tokens=[1, 4, 32], metrics=["psnr", "ssim"])  # doctest: +SKIP
    >>> print(report.to_markdown())  # doctest: +SKIP
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from zoo.errors import InputError, TokenError

__all__ = ["evaluate", "parse_models"]


def parse_models(models: str | Any | Sequence[str | Any]) -> list[str | Any]:
    """``"a,b"`` / ``["a", "b"]`` / loaded models -> a list (names stripped, duplicates refused).

    Example:
        >>> parse_models("flextok.demo_tiny, flextok_vae.demo_tiny")
        ['flextok.demo_tiny', 'flextok_vae.demo_tiny']
    """
    if isinstance(models, str):
        models = [m for m in (p.strip() for p in models.split(",")) if m]
    elif not isinstance(models, (list, tuple)):
        models = [models]
    if not models:
        raise InputError("no model given: name one or more tokenizers, e.g. --model flextok.demo_tiny")
    names = [m if isinstance(m, str) else getattr(m, "name", type(m).__name__) for m in models]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise InputError(f"model(s) named twice: {', '.join(dupes)}")
    return list(models)


def _counts(values: Sequence[int] | int | None, what: str) -> list[int] | None:
    if values is None:
        return None
    values = [values] if isinstance(values, int) else list(values)
    if not values:
        return None
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise InputError(f"{what} must be whole numbers >= 1, got {v!r}")
    return sorted(set(values))


@dataclass
class _Cell:
    """Per-item values of one (model, setting)."""

    tokens: int | None
    codebooks: int | None
    values: dict[str, list[float]] = field(default_factory=dict)
    bits: list[float] = field(default_factory=list)
    token_counts: list[int] = field(default_factory=list)
    units: list[float] = field(default_factory=list)  # pixels per image / seconds per clip
    keys: list[str] = field(default_factory=list)
    features: list[torch.Tensor] = field(default_factory=list)
    rate_note: str = ""

    def add(self, tokens: Any, scores: Mapping[str, torch.Tensor], units: Sequence[float], keys: Sequence[str]) -> None:
        """Record one decoded group: its scores, bits per item and token counts."""
        from zoo.evaluation.rate import bits_per_item, describe_rate, tokens_per_item

        self.rate_note = describe_rate(tokens)
        for metric, vals in scores.items():
            self.values[metric].extend(vals.tolist())
        self.bits.extend(bits_per_item(tokens).tolist())
        self.token_counts.extend(int(v) for v in tokens_per_item(tokens).tolist())
        self.units.extend(units)
        self.keys.extend(keys)


def _decode_kwargs(model: Any, steps: int | None, guidance_scale: float | None, seed: int, device: str) -> dict[str, Any]:
    params = inspect.signature(model.decode).parameters
    any_kw = any(p.kind is p.VAR_KEYWORD for p in params.values())
    kw: dict[str, Any] = {}
    for key, value in (("steps", steps), ("guidance_scale", guidance_scale)):
        if value is not None:
            if not (any_kw or key in params):
                raise InputError(f"{key} does not apply to {getattr(model, 'name', model)}: its decoder takes no {key}")
            kw[key] = value
    if "generator" in params:
        kw["generator"] = torch.Generator(device).manual_seed(seed)
    return kw


def _load_model(spec: Any, device: str, weights: Mapping[str, Any]) -> Any:
    if not isinstance(spec, str):
        return spec
    import zoo

    card = zoo.get_card(spec)
    if card.kind != "tokenizer":
        raise InputError(f"{card.name} is a {card.kind}; zoo eval measures tokenizers (`zoo list --kind tokenizer`)")
    return zoo.load(spec, device=device, weights=weights.get(spec))


def _modality(model: Any) -> str:
    card = getattr(model, "card", None)
    return getattr(card, "modality", None) or ("audio" if getattr(model, "sample_rate", None) else "image")


def _settings(model: Any, tokens: Any, modality: str, counts: list[int] | None, codebooks: list[int] | None,
              notes: list[str]) -> list[tuple[int | None, int | None]]:
    """The (token count, codebook levels) pairs to decode for this model, from its first batch's tokens."""
    name = getattr(model, "name", type(model).__name__)
    if codebooks:
        levels = getattr(tokens, "num_codebooks", 1)
        fit = [q for q in codebooks if q <= levels]
        if len(fit) < len(codebooks):
            notes.append(f"{name}: codebooks {[q for q in codebooks if q > levels]} skipped (it makes {levels} level(s))")
        if not fit:
            raise InputError(f"--codebooks {codebooks}: {name} makes {levels} codebook level(s); use 1..{levels}")
        return [(None, q) for q in fit]
    if not counts:
        return [(None, None)]
    if isinstance(tokens, torch.Tensor):
        notes.append(f"{name}: returns a latent tensor {tuple(tokens.shape[1:])} per item; measured at its full size "
                     "(token counts do not apply)")
        return [(None, None)]
    full = int(tokens.lengths.max())
    if tokens.meta.get("grid") is not None:
        h, w = (int(v) for v in tokens.meta["grid"])
        notes.append(f"{name}: a fixed {h}x{w} token grid; measured at its full {full} tokens (token counts do not apply)")
        return [(None, None)]
    fit = [k for k in counts if k <= full]
    if len(fit) < len(counts):
        notes.append(f"{name}: token counts {[k for k in counts if k > full]} skipped (it makes {full} tokens per item)")
    if not fit:
        notes.append(f"{name}: every token count exceeds its {full} tokens; measured at its full length")
        return [(None, None)]
    return [(k, None) for k in fit]


def _select(tokens: Any, k: int | None, q: int | None) -> Any:
    if k is None and q is None:
        return tokens
    out = tokens
    if q is not None:
        out = out.codebooks(q)
    if k is not None:
        out = out.truncate(torch.minimum(out.lengths, torch.tensor(k)))
    return out


def _as_audio_items(decoded: Any, lengths: Sequence[int]) -> list[torch.Tensor]:
    """A decoder's audio (``[B, L]``, ``[B, C, L]`` or a list of ``[C, L]``) -> mono ``[L_b]`` per item, trimmed."""
    items = list(decoded) if isinstance(decoded, (list, tuple)) else list(decoded.unbind(0))
    out = []
    for wav, n in zip(items, lengths):
        wav = wav.float()
        if wav.dim() == 2:
            wav = wav.mean(0)
        out.append(wav[: int(n)].cpu())
    return out


def _unit_images(x: torch.Tensor) -> torch.Tensor:
    """``[-1, 1]`` -> ``[0, 1]`` rounded to 8 bits (what a saved PNG holds)."""
    from zoo.evaluation.metrics import to_uint8

    return to_uint8((x.float().cpu() + 1) / 2).float() / 255


def _batches(items: list, size: int) -> Iterable[list]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def evaluate(
    models: str | Any | Sequence[str | Any],
    inputs: str | os.PathLike | Sequence[str | os.PathLike],
    *,
    tokens: Sequence[int] | int | None = None,
    codebooks: Sequence[int] | int | None = None,
    metrics: Sequence[str] | str | None = None,
    metric_weights: Mapping[str, str | os.PathLike] | None = None,
    lpips_net: str = "alex",
    column: str | None = None,
    batch_size: int = 8,
    device: str = "cpu",
    seed: int = 0,
    steps: int | None = None,
    guidance_scale: float | None = None,
    weights: Mapping[str, str | os.PathLike] | None = None,
    engine: str = "local",
    progress: bool | Callable[[int, int], None] = True,
    per_item: bool = False,
    cache_dir: str | os.PathLike | None = None,
    min_fid_items: int = 2,
):
    """Measure tokenizers on ``inputs``: see the module docstring. Returns an
    :class:`~zoo.evaluation.report.EvalReport` (``.to_json``, ``.to_markdown``, ``.plot``).

    ``models``: names (``"a,b"`` or a list) or loaded tokenizers; ``inputs``: files, directories,
    globs, Parquet files (``column``: the bytes column), WebDataset ``.tar`` shards.
    ``metrics``: names from :data:`~zoo.evaluation.metrics.METRICS` (default: every metric of the
    modality; PESQ/STOI when installed). ``metric_weights``: local files for the metric networks
    (``{"lpips": PATH, "rfid": PATH}``); otherwise they come from zoo's cache or are downloaded
    once. ``weights``: local model weights per model name. rFID is reported when at least
    ``min_fid_items`` images were measured. Inputs that cannot be read are listed in the report's
    ``failures`` and skipped.
    """
    from zoo.datasets import ItemLoader, list_items
    from zoo.evaluation.metrics import MetricSuite
    from zoo.evaluation.report import EvalReport

    if engine not in ("local", "ray"):
        raise InputError(f"engine must be 'local' or 'ray', got {engine!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InputError(f"batch_size must be an int >= 1, got {batch_size!r}")
    counts = _counts(tokens, "token counts")
    levels = _counts(codebooks, "codebook levels")
    if counts and levels:
        raise InputError("give token counts (image tokenizers that decode prefixes) or codebook levels (RVQ audio codecs), not both")
    if isinstance(metrics, str):
        metrics = [m for m in (p.strip() for p in metrics.split(",")) if m]
    specs = parse_models(models)
    listing = list_items(inputs if not isinstance(inputs, (str, os.PathLike)) else [inputs], column=column)
    if not listing.items:
        raise InputError(f"no image or audio inputs found in {', '.join(map(str, inputs if isinstance(inputs, (list, tuple)) else [inputs]))}")
    weights = dict(weights or {})
    loaded = [_load_model(s, device, weights) for s in specs]
    modalities = {_modality(m) for m in loaded}
    if len(modalities) > 1:
        raise InputError(f"compare tokenizers of one modality at a time; got {', '.join(sorted(modalities))}")
    modality = modalities.pop()
    if modality == "image" and levels:
        raise InputError("--codebooks applies to audio codecs with several codebook levels; image tokenizers use --tokens")
    if modality == "audio" and counts:
        raise InputError("--tokens applies to image tokenizers that decode a prefix; audio codecs use --codebooks 1,2,4,8")
    suite = MetricSuite(modality, metrics, weights=metric_weights, lpips_net=lpips_net, device=device, cache_dir=cache_dir)
    if engine == "ray":
        from zoo.evaluation.engines import ray_measure  # noqa: F401 -- raises the install hint when Ray is absent

    import zoo
    from zoo.evaluation.report import library_versions

    report = EvalReport(modality=modality, metric_names=suite.names, inputs={
        "count": len(listing.items), "listing_sha256": listing.digest(), "ignored": [p for p, _ in listing.ignored]})
    report.settings = {"tokens": counts, "codebooks": levels, "batch_size": batch_size, "device": str(device), "seed": seed,
                       "steps": steps, "guidance_scale": guidance_scale, "lpips_net": lpips_net if "lpips" in suite.names else None,
                       "engine": engine, "zoo": zoo.__version__, "libraries": library_versions()}
    total_hint = len(listing.items) * max(len(counts or levels or [1]), 1) * len(loaded)
    bar = _progress(progress, total_hint)
    for model in loaded:
        name = getattr(model, "name", type(model).__name__)
        cells, real_features, model_info, failures = _measure_model(
            model, listing.items, ItemLoader.for_model(model), suite, modality, counts, levels, batch_size, device, seed,
            steps, guidance_scale, report.notes, lambda n: _advance(bar, n))
        report.failures.extend({"model": name, "key": k, "error": e} for k, e in failures)
        report.models[name] = model_info
        for cell in cells:
            report.add_row(name, cell, real_features, min_fid_items=min_fid_items, per_item=per_item)
    _close(bar)
    return report


def _progress(progress: Any, total: int) -> Any:
    if callable(progress):
        return ("callback", progress, [0, total])
    if not progress:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="zoo eval", unit="decode")


def _advance(bar: Any, n: int) -> None:
    if bar is None:
        return
    if isinstance(bar, tuple):
        _, fn, state = bar
        state[0] += n
        fn(state[0], state[1])
        return
    bar.update(n)


def _close(bar: Any) -> None:
    if bar is not None and not isinstance(bar, tuple):
        bar.close()


def _measure_model(model: Any, items: list, loader: Any, suite: Any, modality: str, counts: list[int] | None,
                   levels: list[int] | None, batch_size: int, device: str, seed: int, steps: int | None,
                   guidance_scale: float | None, notes: list[str], advance: Callable[[int], None]):
    """Every item through ``model`` at every setting -> (cells, real-image features, model facts, failures)."""
    from zoo.evaluation.rate import describe_rate, token_kind, tokens_per_item

    name = getattr(model, "name", type(model).__name__)
    failures: list[tuple[str, str]] = []
    cells: dict[tuple[int | None, int | None], _Cell] = {}
    settings: list[tuple[int | None, int | None]] | None = None
    probed = False
    real_features: list[torch.Tensor] = []
    info: dict[str, Any] = {}
    rate = getattr(model, "sample_rate", None)
    decode_kw = dict(steps=None if modality == "audio" else steps, guidance_scale=guidance_scale, seed=seed, device=device)
    for batch in _batches(items, 1 if modality == "audio" else batch_size):
        loaded = loader.load_many(batch)
        ok = [(it, x) for it, x, err in loaded if err is None]
        failures.extend((it.key, err) for it, _, err in loaded if err is not None)
        for group in _same_shape(ok):
            keys = [ok[i][0].key for i in group]
            x = torch.stack([ok[i][1] for i in group]).to(device)
            with torch.inference_mode():
                tokens = model.encode(x, rate) if modality == "audio" else model.encode(x)
            if settings is None:
                settings = _settings(model, tokens, modality, counts, levels, notes)
                info = {"token_kind": token_kind(tokens), "tokens_per_item": int(tokens_per_item(tokens).max()),
                        "rate": describe_rate(tokens), "settings": [list(s) for s in settings]}
                if hasattr(tokens, "codebook_size"):
                    info["codebook_size"] = tokens.codebook_size
                if getattr(tokens, "num_codebooks", 1) > 1:
                    info["codebooks"] = tokens.num_codebooks
                card = getattr(model, "card", None)
                if card is not None:
                    info["revision"] = getattr(card, "revision", None) or "not pinned"
            if modality == "image":
                target = _unit_images(x)
                if suite._inception is not None:
                    real_features.append(suite.features(target))
                sizes = [float(x.shape[-1] * x.shape[-2])] * len(group)
            else:
                target_items = [w.float().cpu() for w in x]
                sizes = [w.shape[-1] / rate for w in target_items]
            i = 0
            while i < len(settings):
                setting = settings[i]
                try:
                    sel, decoded = _decode(model, tokens, setting, decode_kw)
                except (TokenError, InputError) as exc:
                    if probed or setting[0] is None or setting[0] >= int(tokens.lengths.max()):
                        raise
                    # a model that decodes only its full length says so at its first prefix
                    notes.append(f"{name}: decodes only its full length ({exc}); measured at its full length")
                    settings = [(None, None)]
                    info["settings"] = [[None, None]]
                    continue
                probed = True
                i += 1
                cell = cells.setdefault(setting, _Cell(tokens=setting[0], codebooks=setting[1],
                                                       values={n: [] for n in suite.item_metrics}))
                if modality == "image":
                    pred = _unit_images(decoded)
                    if pred.shape != target.shape:
                        raise InputError(f"{name} decoded {tuple(pred.shape)} from inputs of {tuple(target.shape)}; "
                                         "zoo eval compares reconstructions with their inputs at one size")
                    scores = suite.item_scores(pred, target)
                    if suite._inception is not None:
                        cell.features.append(suite.features(pred))
                else:
                    scores = _audio_scores(suite, decoded, target_items, rate)
                cell.add(sel, scores, sizes, keys)
                advance(len(group))
    if settings is None:
        why = f": {failures[0][1]}" if failures else ""
        raise InputError(f"{name}: none of the {len(items)} input(s) could be read{why}")
    info["items"] = len(cells[settings[0]].keys)
    return [cells[s] for s in settings], real_features, info, failures


def _decode(model: Any, tokens: Any, setting: tuple[int | None, int | None], kw: dict[str, Any]) -> tuple[Any, Any]:
    sel = _select(tokens, *setting)
    with torch.inference_mode():
        return sel, model.decode(sel, **_decode_kwargs(model, **kw))


def _audio_scores(suite: Any, decoded: Any, targets: list[torch.Tensor], rate: int) -> dict[str, torch.Tensor]:
    """Per-item audio scores, each clip compared over the samples both signals have."""
    preds = _as_audio_items(decoded, [t.shape[-1] for t in targets])
    per = []
    for p, t in zip(preds, targets):
        m = min(p.shape[-1], t.shape[-1])
        per.append(suite.item_scores(p[None, :m], t[None, :m], rate))
    return {n: torch.cat([s[n] for s in per]) for n in suite.item_metrics}


def _same_shape(ok: list) -> list[list[int]]:
    groups: dict[tuple, list[int]] = {}
    for i, (_, x) in enumerate(ok):
        groups.setdefault(tuple(x.shape), []).append(i)
    return list(groups.values())
