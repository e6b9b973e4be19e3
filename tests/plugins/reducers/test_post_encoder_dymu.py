"""DyMU's DToMe on plain tensors: threshold merging, sizes and sources, padding, calibration."""

import pytest
import torch
from zoo_plugins.reducers.policies.dymu import (
    ThresholdMeter,
    batch_threshold,
    dtome_merge,
    dymu_schedule,
)
from zoo_plugins.reducers.reducers import DyMU
from zoo_plugins.reducers.types import ReducerError


def _check_weighted_means(x, sizes, out):
    """Every output row is the size-weighted mean of the input tokens assigned to it."""
    b = x.shape[0]
    sizes = torch.ones(b, x.shape[1], 1) if sizes is None else sizes
    for i in range(b):
        for slot in range(int(out.lengths[i])):
            members = (out.assignment[i] == slot).nonzero()[:, 0]
            w = sizes[i, members]
            assert torch.allclose(out.sizes[i, slot], w.sum(0))
            assert torch.allclose(out.tokens[i, slot], (x[i, members] * w).sum(0) / w.sum(), atol=1e-5)
            assert int(out.indices[i, slot]) == int(members.min())


def test_hand_built_threshold_merge():
    x = torch.tensor([[[1.0, 0.0], [1.0, 0.01], [0.0, 1.0], [-1.0, 0.0], [0.0, 1.0], [0.1, 1.0]]])
    out = dtome_merge(x, threshold=0.9)
    # sources 0, 2, 4 -> destinations 1, 3, 5: 0 -> 1 (cos ~1), 2 -> 5 and 4 -> 5 (cos ~0.995); 3 stays
    assert out.lengths.tolist() == [3]
    assert out.indices.tolist() == [[0, 3, 2]]                # order: unmerged sources, then destinations
    assert out.sizes[..., 0].tolist() == [[2.0, 1.0, 3.0]]
    assert out.assignment.tolist() == [[0, 0, 2, 1, 2, 2]]
    assert dtome_merge(x, threshold=0.999).lengths.tolist() == [5]
    assert dtome_merge(x, threshold=0.9, num_prefix=1).assignment.tolist() == [[0, 1, 3, 2, 3, 3]]  # CLS kept alone


def test_batch_padding_sizes_and_sources():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 41, 6, generator=g)
    x[0] = x[0, :1] + 0.01 * x[0]                            # sample 0: all alike -> merges the most
    out = DyMU().reduce(x, threshold=0.3, num_prefix=1)
    assert out.lengths[0] == out.lengths.min() and out.tokens.shape[1] == int(out.lengths.max())
    pad = out.padding_mask
    assert (out.tokens[pad] == 0).all() and (out.sizes[pad] == 0).all() and (out.indices[pad] == -1).all()
    assert out.sizes.sum(dim=(1, 2)).tolist() == [41.0] * 3
    assert (out.indices[:, 0] == 0).all()                     # the prefix token stays first
    _check_weighted_means(x, None, out)
    for i in range(3):                                        # each sample as if alone
        alone = DyMU().reduce(x[i : i + 1], threshold=0.3, num_prefix=1)
        n = int(out.lengths[i])
        assert torch.allclose(alone.tokens[0], out.tokens[i, :n]) and alone.indices[0].tolist() == out.indices[i, :n].tolist()


def test_several_steps_compose_sources_and_sizes():
    g = torch.Generator().manual_seed(1)
    x, sizes = torch.randn(2, 64, 4, generator=g), torch.randint(1, 4, (2, 64, 1), generator=g).float()
    out = DyMU().reduce(x, threshold=[0.5, 0.6, 0.7], sizes=sizes)
    assert out.sizes.sum(dim=(1, 2)).tolist() == sizes.sum(dim=(1, 2)).tolist()
    _check_weighted_means(x, sizes, out)
    one = DyMU().reduce(x, threshold=0.5, sizes=sizes)
    assert (out.lengths < one.lengths).all()


def test_metric_drives_matching():
    x = torch.randn(1, 8, 3)
    metric = torch.tensor([[[1.0, 0], [1.0, 0], [0, 1.0], [0, -1.0], [0, 1.0], [0, -1.0], [-1.0, 0], [1.0, 0]]])
    out = DyMU().reduce(x, threshold=0.99, metric=metric)
    # only source 0 has a destination (1) above 0.99; sources 2, 4, 6 stay, then destinations 1, 3, 5, 7
    assert out.assignment.tolist() == [[3, 3, 0, 4, 1, 5, 2, 6]]
    assert torch.allclose(out.tokens[0, 3], x[0, :2].mean(0))


def test_calibration_step_and_its_threshold():
    g = torch.Generator().manual_seed(2)
    x = torch.randn(4, 65, 8, generator=g)
    out = DyMU().reduce(x, keep=65 - 6, num_prefix=1)          # r = 6 per image on average: 24 merges in the batch
    assert int((65 - out.lengths).sum()) == 24
    assert out.threshold == batch_threshold(x, 6, num_prefix=1)
    # the calibrated threshold reproduces the calibration merges on the same batch
    again = DyMU().reduce(x, threshold=float(out.threshold), num_prefix=1)
    assert again.lengths.tolist() == out.lengths.tolist()
    _check_weighted_means(x, None, out)


def test_schedule_and_meter():
    assert dymu_schedule(24, 504) == [21] * 24
    assert dymu_schedule(3, 4) == [2, 1, 1] and dymu_schedule(3, 0) == [0, 0, 0]
    for kind in ("linear", "reverse_linear"):
        s = dymu_schedule(12, 96, kind)
        assert sum(s) == 96 and len(s) == 12
    assert dymu_schedule(12, 96, "linear") == dymu_schedule(12, 96, "reverse_linear")[::-1]
    meter = ThresholdMeter(3)
    meter.update(1, torch.tensor(0.25))
    meter.update(1, 0.75)
    assert meter.thresholds == [1.0, 0.5, 1.0]


@pytest.mark.parametrize("kwargs,match", [
    ({}, "dymu needs threshold="),
    ({"threshold": 0.5, "keep": 30}, "not both"),
    ({"keep": 10}, "at most half"),
    ({"threshold": []}, "empty sequence"),
    ({"threshold": 0.5, "metric": torch.randn(2, 5, 3)}, r"metric must be \[B, N, C'\]"),
    ({"threshold": 0.5, "padding_mask": torch.zeros(2, 5, dtype=torch.bool)}, r"padding_mask must be \[B, N\]"),
])
def test_dymu_errors_name_the_fix(kwargs, match):
    with pytest.raises(ReducerError, match=match):
        DyMU().reduce(torch.randn(2, 40, 4), **kwargs)
    with pytest.raises(ReducerError, match="schedule must be"):
        dymu_schedule(4, 8, "cosine")
