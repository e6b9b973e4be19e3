"""HiPrune on plain tensors: anchors, buffers, registers on hand-built grids, batching, errors."""

import pytest
import torch
from zoo_plugins.reducers.policies.hiprune import (
    attention_scores,
    hiprune_select,
    resolve_grid,
)
from zoo_plugins.reducers.reducers import HiPrune
from zoo_plugins.reducers.types import ReducerError


def _scores(n, hot):
    s = torch.zeros(1, n)
    for rank, i in enumerate(hot):
        s[0, i] = 1.0 - 0.01 * rank
    return s


# 4x4 grid, keep 7, alpha 1 -> one anchor (round(7 / 5) = 1), its neighbours, then registers
@pytest.mark.parametrize("anchor,buffer,want_ab", [
    (5, "flat", [1, 4, 5, 6, 9]),      # interior: up, left, right, down
    (4, "flat", [0, 3, 4, 5, 8]),      # row start: the official rule wraps to the previous row's end (3)
    (4, "grid", [0, 4, 5, 8]),         # in-grid rule: no left neighbour
    (0, "flat", [0, 1, 4]),            # corner: clamped (0 - 1, 0 - 4 -> 0)
    (15, "grid", [11, 14, 15]),
])
def test_anchor_and_buffer_tokens(anchor, buffer, want_ab):
    deep = torch.arange(16.0)[None]                          # registers: the highest deep scores left
    got = hiprune_select(_scores(16, [anchor]), deep, keep=7, width=4, alpha=1.0, buffer=buffer)[0].tolist()
    registers = [i for i in range(15, -1, -1) if i not in want_ab][: 7 - len(want_ab)]
    assert got == sorted(want_ab + registers)


def test_alpha_zero_is_deep_top_k_and_batches_are_independent():
    g = torch.Generator().manual_seed(0)
    obj, deep = torch.rand(3, 64, generator=g), torch.rand(3, 64, generator=g)
    got = hiprune_select(obj, deep, keep=10, width=8, alpha=0.0)
    assert got.tolist() == deep.topk(10, dim=1).indices.sort(dim=1).values.tolist()
    batched = hiprune_select(obj, deep, keep=20, width=8, alpha=0.5)
    for b in range(3):
        assert batched[b].tolist() == hiprune_select(obj[b : b + 1], deep[b : b + 1], keep=20, width=8, alpha=0.5)[0].tolist()
        assert len(set(batched[b].tolist())) == 20          # exactly keep distinct tokens per sample


def test_reduce_outputs_and_attention_scores():
    attn = torch.softmax(torch.randn(2, 3, 17, 17), dim=-1)
    scores = attention_scores(attn)
    assert torch.allclose(scores, attn.mean(dim=1).mean(dim=1)[:, 1:]) and scores.shape == (2, 16)
    tokens = torch.randn(2, 16, 5)
    out = HiPrune(alpha=0.5).reduce(tokens, keep=0.5, object_attn=scores, deep_attn=scores)
    assert out.tokens.shape == (2, 8, 5) and out.sizes.shape == (2, 8, 1)
    assert torch.equal(out.tokens, tokens.gather(1, out.indices[..., None].expand(-1, -1, 5)))
    assert (out.indices.diff(dim=1) > 0).all()
    assert out.assignment.gather(1, out.indices).tolist() == [list(range(8))] * 2


def test_grid():
    assert resolve_grid(576, None) == (24, 24)
    assert resolve_grid(12, (3, 4)) == (3, 4) and resolve_grid(12, 3) == (3, 4)
    with pytest.raises(ReducerError, match=r"hiprune needs grid=\(H, W\)"):
        resolve_grid(12, None)
    with pytest.raises(ReducerError, match="does not match"):
        resolve_grid(12, (5, 5))


@pytest.mark.parametrize("kwargs,match", [
    ({}, r"hiprune needs object_attn=\[B, N\] = \[2, 16\]"),
    ({"object_attn": torch.rand(2, 16)}, r"hiprune needs deep_attn=\[B, N\]"),
    ({"object_attn": torch.rand(2, 17), "deep_attn": torch.rand(2, 16)}, "object_attn"),
    ({"object_attn": torch.rand(2, 16), "deep_attn": torch.rand(2, 16), "alpha": 1.5}, r"alpha .* must be in \[0, 1\]"),
    ({"object_attn": torch.rand(2, 16), "deep_attn": torch.rand(2, 16), "buffer": "ring"}, "buffer must be one of"),
])
def test_hiprune_errors_name_the_fix(kwargs, match):
    with pytest.raises(ReducerError, match=match):
        HiPrune().reduce(torch.randn(2, 16, 4), keep=8, **kwargs)


def test_anchor_budget_overflow_is_an_error():
    with pytest.raises(ReducerError, match="lower alpha"):
        hiprune_select(_scores(16, [5]), torch.rand(1, 16), keep=3, width=4, alpha=1.0)  # 1 anchor + 4 buffers > 3
