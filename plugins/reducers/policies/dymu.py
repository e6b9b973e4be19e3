"""DyMU's dynamic token merging, DToMe (Wang et al., 2025): bipartite matching as in ToMe, but a
layer merges *every* pair whose similarity exceeds that layer's threshold, so each image keeps as
many tokens as its content needs (simple images fewer, busy images more).

One DToMe step on ``[B, N, C]`` tokens (:func:`dtome_merge`):

1. tokens alternate into two sets, even positions (sources) and odd positions (destinations);
   each source finds its most similar destination by cosine similarity of ``metric`` (the
   attention keys averaged over heads inside a ViT; the tokens themselves by default);
2. every source whose best similarity is ``> threshold`` is merged into that destination: the
   destination becomes the size-weighted mean, sizes add up. Prefix tokens (CLS, ...) and
   padding are never merged;
3. per sample, the kept tokens are the unmerged sources, then all destinations, in input order;
   samples shorter than the longest are padded (zero tokens, size 0, ``lengths`` says how many
   are real).

Thresholds are "trained" without gradients (:func:`batch_threshold`, :class:`ThresholdMeter`):
on calibration batches a layer merges the ``r * B`` most similar pairs of the whole batch (``r``
per image on average, from :func:`dymu_schedule`), and the threshold of that layer is the
average, over batches, of the best similarity left unmerged (clamped at 0).

Virtual Token Unmerging (VTU), the second half of DyMU, adapts the *language model*'s attention
to the merged sequence (RoPE positions of the merged tokens); it is not part of zoo's reducers.

Example:
    >>> import torch
    >>> x = torch.tensor([[[1.0, 0.0], [1.0, 0.01], [0.0, 1.0], [-1.0, 0.0]]])
    >>> out = dtome_merge(x, threshold=0.9)                 # token 0 merges into token 1
    >>> out.lengths.tolist(), out.sizes[..., 0].tolist()
    ([3], [[1.0, 2.0, 1.0]])
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch

from ..checks import check_real
from ..types import ReducedTokens, ReducerError

__all__ = ["MergedTokens", "ThresholdMeter", "batch_threshold", "calibrate_threshold", "dtome_merge", "dymu_schedule"]


@dataclass
class MergedTokens(ReducedTokens):
    """A DToMe result: :class:`ReducedTokens` of variable length per sample, padded.

    Attributes:
        lengths: ``[B]`` long; real tokens per sample (``tokens[b, lengths[b]:]`` is padding:
            zero tokens, size 0, index -1).
        threshold: the batch threshold of a calibration step (``r=`` / ``keep=``), else None.
    """

    lengths: torch.Tensor | None = None
    threshold: torch.Tensor | None = None

    @property
    def padding_mask(self) -> torch.Tensor:
        """``[B, K]`` bool, True where a row is padding."""
        k = self.tokens.shape[1]
        return torch.arange(k, device=self.tokens.device)[None] >= self.lengths[:, None]


def dymu_schedule(num_layers: int, r_total: int, schedule: str = "constant") -> list[int]:
    """Merges per layer used while calibrating: ``r_total`` spread over ``num_layers``.

    ``constant``: as even as possible, the remainder on the first layers; ``linear``: decreasing
    from ``2 * r_total // num_layers`` to 0 (``reverse_linear``: increasing), as in DyMU.

    Example:
        >>> dymu_schedule(4, 10), dymu_schedule(4, 10, "linear")
        ([3, 3, 2, 2], [5, 3, 2, 0])
    """
    if r_total < 0 or num_layers < 1:
        raise ReducerError(f"dymu_schedule needs num_layers >= 1 and r_total >= 0, got {num_layers}, {r_total}")
    if r_total == 0:
        return [0] * num_layers
    if schedule == "constant":
        base, extra = divmod(r_total, num_layers)
        return [base + (i < extra) for i in range(num_layers)]
    if schedule not in ("linear", "reverse_linear"):
        raise ReducerError(f"schedule must be 'constant', 'linear' or 'reverse_linear', got {schedule!r}")
    first = (2 * r_total) // num_layers
    step = first / num_layers
    out: list[int] = []
    while sum(out) + int(first - len(out) * step) < r_total:
        out.append(int(first - len(out) * step))
    if sum(out) < r_total:
        out.append(r_total - sum(out))
    out += [0] * (num_layers - len(out))
    if len(out) != num_layers:
        raise ReducerError(f"cannot spread r_total={r_total} over {num_layers} layers linearly")
    return out if schedule == "linear" else out[::-1]


def _best_edges(metric: torch.Tensor, num_prefix: int, padding: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Best similarity ``[B, Na]`` and best destination ``[B, Na]`` of every source token."""
    m = metric.float()
    m = m / m.norm(dim=-1, keepdim=True)
    scores = m[:, ::2] @ m[:, 1::2].transpose(-1, -2)                          # [B, Na, Nb]
    na, nb = scores.shape[1:]
    src_blocked = torch.arange(na, device=m.device) * 2 < num_prefix
    dst_blocked = torch.arange(nb, device=m.device) * 2 + 1 < num_prefix
    scores[:, src_blocked] = float("-inf")
    scores[:, :, dst_blocked] = float("-inf")
    if padding is not None:
        blocked = padding[:, ::2, None] | padding[:, None, 1::2]
        scores.masked_fill_(blocked, float("-inf"))
    return scores.max(dim=-1)


def batch_threshold(metric: torch.Tensor, r: int, num_prefix: int = 0, padding_mask: torch.Tensor | None = None) -> torch.Tensor:
    """The calibration statistic of one layer on one batch: with the ``r * B`` most similar
    source-destination pairs of the batch merged, the best similarity left (clamped at 0).

    Example:
        >>> import torch
        >>> float(batch_threshold(torch.randn(4, 50, 16), r=5)) >= 0
        True
    """
    node_max, _ = _best_edges(metric, num_prefix, padding_mask)
    return _threshold_and_merged(node_max, r, metric.shape[1], num_prefix)[0]


def _threshold_and_merged(node_max: torch.Tensor, r: int, n: int, num_prefix: int) -> tuple[torch.Tensor, torch.Tensor]:
    b = node_max.shape[0]
    r = min(r, (n - num_prefix) // 2)
    flat = node_max.flatten()
    order = flat.argsort(descending=True)
    rb = r * b
    value = flat[order[min(rb, flat.numel() - 1)]]
    merged = torch.zeros_like(flat, dtype=torch.bool)
    merged[order[:rb]] = True
    merged &= torch.isfinite(flat)                                             # never a protected / padded source
    return value.clamp(min=0), merged.view_as(node_max)


class ThresholdMeter:
    """Running mean of each layer's :func:`batch_threshold` over calibration batches.

    Example:
        >>> meter = ThresholdMeter(2)
        >>> meter.update(0, 0.5); meter.update(0, 0.7); meter.update(1, 0.9)
        >>> [round(t, 6) for t in meter.thresholds]
        [0.6, 0.9]
    """

    def __init__(self, num_layers: int):
        self.sums = [0.0] * num_layers
        self.counts = [0] * num_layers

    def update(self, layer: int, value: float | torch.Tensor) -> None:
        self.sums[layer] += float(value)
        self.counts[layer] += 1

    @property
    def thresholds(self) -> list[float]:
        """Per-layer thresholds; 1.0 (merge nothing) for a layer that saw no batch."""
        return [s / c if c else 1.0 for s, c in zip(self.sums, self.counts)]


def calibrate_threshold(metrics: Iterable[torch.Tensor], r: int, num_prefix: int = 0) -> float:
    """One layer's DToMe threshold from calibration batches ``[B, N, C]`` of its metric: the mean
    of :func:`batch_threshold` over the batches (``r`` merges per image on average).

    Example:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> t = calibrate_threshold([torch.randn(8, 65, 16, generator=g) for _ in range(3)], r=8, num_prefix=1)
        >>> 0.0 <= t <= 1.0
        True
    """
    meter = ThresholdMeter(1)
    for m in metrics:
        meter.update(0, batch_threshold(m, r, num_prefix))
    if not meter.counts[0]:
        raise ReducerError("calibrate_threshold needs at least one batch of metrics [B, N, C]")
    return meter.thresholds[0]


def dtome_merge(x: torch.Tensor, metric: torch.Tensor | None = None, *, threshold: float | None = None, r: int | None = None,
                num_prefix: int = 0, size: torch.Tensor | None = None, padding_mask: torch.Tensor | None = None) -> MergedTokens:
    """One DToMe step: merge every source whose best similarity is ``> threshold`` (inference), or
    the ``r * B`` best pairs of the batch (calibration; ``.threshold`` is then the batch statistic).

    ``size``: ``[B, N, 1]`` token sizes (None = ones); ``padding_mask``: ``[B, N]`` bool, True for
    padding rows of an already-merged batch. Returns :class:`MergedTokens`; ``assignment`` maps
    every input token to its output row (-1 for input padding).
    """
    if (threshold is None) == (r is None):
        raise ReducerError("dtome_merge needs exactly one of threshold= (inference) or r= (calibration)")
    b, n, c = x.shape
    metric = x if metric is None else metric
    if metric.shape[:2] != x.shape[:2]:
        raise ReducerError(f"metric must be [B, N, C'] = [{b}, {n}, C'], got {tuple(metric.shape)}")
    dev = x.device
    pad = torch.zeros(b, n, dtype=torch.bool, device=dev) if padding_mask is None else padding_mask.to(torch.bool)
    if tuple(pad.shape) != (b, n):
        raise ReducerError(f"padding_mask must be [B, N] = {(b, n)} (True = padding), got {tuple(pad.shape)}")
    unit_size = size is None
    size = torch.ones(b, n, 1, dtype=x.dtype, device=dev) if size is None else size
    if n < 2:  # nothing to pair
        assign = torch.arange(n, device=dev).expand(b, n).masked_fill(pad, -1)
        lengths = (~pad).sum(dim=1)
        return MergedTokens(tokens=x, indices=assign.clone(), sizes=size, assignment=assign, lengths=lengths)
    with torch.no_grad():
        node_max, node_idx = _best_edges(metric, num_prefix, pad if padding_mask is not None else None)
        stat = None
        if threshold is not None:
            merged = node_max > threshold
        else:
            stat, merged = _threshold_and_merged(node_max, int(r), n, num_prefix)
    src, dst = slice(0, None, 2), slice(1, None, 2)
    # new order: unmerged sources, then destinations, then padding (stable)
    alive = torch.cat([~merged & ~pad[:, src], ~pad[:, dst]], dim=1)          # [B, N] in [src..., dst...] order
    order = (~alive).to(torch.uint8).sort(dim=1, stable=True).indices
    lengths = alive.sum(dim=1)
    k = int(lengths.max())
    order = order[:, :k]
    real = torch.arange(k, device=dev)[None] < lengths[:, None]
    # where every input token goes
    cat_pos = torch.cat([torch.arange(0, n, 2, device=dev), torch.arange(1, n, 2, device=dev)])
    slot_of_cat = torch.full((b, n), -1, dtype=torch.long, device=dev)
    slot_of_cat.scatter_(1, order, torch.where(real, torch.arange(k, device=dev)[None].expand(b, k), -1))
    assign = torch.empty(b, n, dtype=torch.long, device=dev)
    assign[:, cat_pos] = slot_of_cat
    assign[:, src] = torch.where(merged, assign[:, dst].gather(1, node_idx), assign[:, src])
    assign.masked_fill_(pad, -1)
    # kept rows are copied unchanged; only destinations that received sources are recomputed as
    # size-weighted means (work proportional to the merges, not to B * N * C)
    base = torch.arange(b, device=dev)[:, None] * n
    flat_x, flat_in_size = x.reshape(b * n, c), size.reshape(b * n, 1)
    take = (base + cat_pos[order]).flatten()
    flat_out, flat_size = flat_x.index_select(0, take), flat_in_size.index_select(0, take)
    mb, mi = merged.nonzero(as_tuple=True)                                     # merged sources (sample, source index)
    if mb.numel():
        src_rows = mb * n + mi * 2
        rows = mb * k + assign.view(-1).index_select(0, src_rows)              # their destinations' output rows
        touched = rows.unique()
        src_x, src_size = flat_x.index_select(0, src_rows), flat_in_size.index_select(0, src_rows)
        if not unit_size:
            src_x = src_x * src_size
            flat_out.index_copy_(0, touched, flat_out.index_select(0, touched) * flat_size.index_select(0, touched))
        flat_out.index_add_(0, rows, src_x)
        flat_size.index_add_(0, rows, src_size)
        flat_out.index_copy_(0, touched, flat_out.index_select(0, touched) / flat_size.index_select(0, touched))
    if int(lengths.min()) < k:                                                 # padding rows: zero token, size 0
        pad_rows = (~real).flatten().nonzero()[:, 0]
        flat_out.index_fill_(0, pad_rows, 0.0)
        flat_size.index_fill_(0, pad_rows, 0.0)
    out, out_size = flat_out.view(b, k, c), flat_size.view(b, k, 1)
    return MergedTokens(tokens=out, indices=_first_source(assign, k), sizes=out_size, assignment=assign,
                        lengths=lengths, threshold=stat)


def _first_source(assign: torch.Tensor, k: int) -> torch.Tensor:
    """``[B, K]`` smallest input position per output row (-1 for padding rows)."""
    b, n = assign.shape
    big = torch.full((b, k + 1), n, dtype=torch.long, device=assign.device)
    pos = torch.arange(n, device=assign.device).expand(b, n)
    big.scatter_reduce_(1, assign.clamp(min=-1) % (k + 1), pos, reduce="amin")  # -1 -> slot k (discarded)
    first = big[:, :k]
    return first.masked_fill(first == n, -1)


def dymu_reduce(tokens: torch.Tensor, *, threshold: float | Sequence[float] | None = None, r: int | None = None,
                metric: torch.Tensor | None = None, num_prefix: int = 0, sizes: torch.Tensor | None = None,
                padding_mask: torch.Tensor | None = None) -> MergedTokens:
    """DToMe on ``[B, N, D]`` tokens: one step per threshold (a float or a per-step sequence), or
    one calibration step with ``r`` merges per image on average. ``metric`` is used for the first
    step only (later steps compare the merged tokens).

    Example:
        >>> import torch
        >>> out = dymu_reduce(torch.randn(2, 64, 8), threshold=[0.5, 0.5])
        >>> out.tokens.shape[0], bool((out.lengths <= 64).all())
        (2, True)
    """
    if r is not None:
        if threshold is not None:
            raise ReducerError("give dymu either threshold= (inference) or keep= / r= (calibration), not both")
        return dtome_merge(tokens, metric, r=r, num_prefix=num_prefix, size=sizes, padding_mask=padding_mask)
    if threshold is None:
        raise ReducerError("dymu needs threshold=<float or per-step list> (calibrate it with calibrate_threshold / "
                           "ThresholdMeter, or take DyMU's published per-layer thresholds), or keep= for a calibration step")
    if isinstance(threshold, (str, bytes)) or not isinstance(threshold, (int, float, Sequence, torch.Tensor)):
        raise ReducerError(f"dymu threshold must be a number or a per-step list of numbers, got {threshold!r}")
    values = [threshold] if isinstance(threshold, (int, float)) or (isinstance(threshold, torch.Tensor) and threshold.dim() == 0) else list(threshold)
    steps = [check_real(f"dymu threshold[{i}]", t) for i, t in enumerate(values)]
    if not steps:
        raise ReducerError("threshold= is an empty sequence; give at least one threshold")
    out = None
    x, size, pad, m = tokens, sizes, padding_mask, metric
    assign = None
    for t in steps:
        out = dtome_merge(x, m, threshold=t, num_prefix=num_prefix, size=size, padding_mask=pad)
        assign = out.assignment if assign is None else torch.where(assign >= 0, out.assignment.gather(1, assign.clamp(min=0)), -1)
        x, size, pad, m = out.tokens, out.sizes, out.padding_mask, None
    out.assignment = assign
    out.indices = _first_source(assign, out.tokens.shape[1])
    return out
