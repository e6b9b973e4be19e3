"""zoo.nn.quantize.LFQ: the reference's bit order, round trips, refusals."""

from __future__ import annotations

import pytest
import torch

from zoo.nn.quantize import LFQ


def reference_ids(z: torch.Tensor, bits: int, groups: int) -> torch.Tensor:
    """Open-MAGVIT2 / WeTok LFQ.forward, written out: sum_k (z[g*K+k] > 0) * 2**k."""
    q = (z.reshape(*z.shape[:-1], groups, bits) > 0).long()
    return (q * (2 ** torch.arange(bits))).sum(-1)


@pytest.mark.parametrize(("bits", "groups"), [(1, 1), (3, 2), (8, 4), (8, 8), (18, 1), (9, 2)])
def test_ids_follow_reference_bit_order_and_round_trip(bits, groups):
    z = torch.randn(3, 5, bits * groups, generator=torch.Generator().manual_seed(bits * 10 + groups))
    lfq = LFQ(bits, groups)
    codes, ids = lfq(z)
    assert ids.shape == (3, 5, groups)
    assert torch.equal(ids, reference_ids(z, bits, groups))
    assert torch.equal(codes, torch.where(z > 0, 1.0, -1.0))
    assert torch.equal(lfq.indices_to_codes(ids), codes)
    assert torch.equal(lfq.codes_to_indices(codes), ids)
    every = torch.arange(2**min(bits, 10))[:, None].expand(-1, groups)
    assert torch.equal(lfq.codes_to_indices(lfq.indices_to_codes(every)), every)


@pytest.mark.parametrize(("z", "expected"), [
    ([1.0, -1.0, -1.0], 1),   # first channel = least significant bit
    ([-1.0, -1.0, 1.0], 4),   # last channel = most significant bit
    ([0.0, 0.0, 0.0], 0),     # zero quantises to -1 (strictly positive is +1)
    ([1e-30, 2.0, 3.0], 7),
])
def test_single_group_bit_order(z, expected):
    assert LFQ(3)(torch.tensor(z))[1].item() == expected


@pytest.mark.parametrize(("call", "exc"), [
    (lambda q: q(torch.zeros(2, 5)), ValueError),
    (lambda q: q.indices_to_codes(torch.tensor([[8, 0]])), ValueError),
    (lambda q: q.indices_to_codes(torch.tensor([[1, 0, 0]])), ValueError),
    (lambda q: q.indices_to_codes(torch.tensor([[1.0, 0.0]])), TypeError),
    (lambda q: q.codes_to_indices(torch.zeros(7)), ValueError),
])
def test_refusals(call, exc):
    with pytest.raises(exc):
        call(LFQ(3, 2))
