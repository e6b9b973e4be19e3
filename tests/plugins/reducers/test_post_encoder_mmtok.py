"""MMTok on plain tensors: the coverage greedy against its definition, batching, signals, errors."""

import pytest
import torch
from zoo_plugins.reducers.policies.mmtok import coverage_table, mmtok_select
from zoo_plugins.reducers.reducers import MMTok
from zoo_plugins.reducers.types import ReducerError


def _plain(tokens, text, vision, keep, alpha=0.5, tt=0.02, vt=0.2, exclude=()):
    """One sample, straight from the definition: f(S) = sum over text rows and vision rows of the
    best coverage by S; add the candidate with the largest marginal gain, keep times."""
    unit = lambda a: a / a.norm(dim=-1, keepdim=True)
    p = torch.softmax(unit(text) @ unit(tokens).T / tt, dim=1) / text.shape[0]
    q = torch.softmax(unit(vision) @ unit(vision).T / vt, dim=1) / tokens.shape[0] * alpha
    rows = torch.cat([p, q]).tolist()
    chosen = []

    def value(s):
        return sum(max([r[j] for j in s], default=0.0) for r in rows)

    for _ in range(keep):
        base = value(chosen)
        gains = [(value(chosen + [j]) - base, -j) for j in range(tokens.shape[0]) if j not in chosen and j not in exclude]
        chosen.append(-max(gains)[1])
    return sorted(chosen)


@pytest.mark.parametrize("n,d,t,keep,alpha", [(12, 6, 3, 4, 0.5), (20, 8, 5, 6, 0.0), (16, 4, 1, 5, 2.0)])
def test_mmtok_matches_coverage_definition(n, d, t, keep, alpha):
    g = torch.Generator().manual_seed(n + keep)
    tokens, text, vision = torch.randn(3, n, d, generator=g), torch.randn(3, t, d, generator=g), torch.randn(3, n, 5, generator=g)
    got = mmtok_select(tokens, text, keep, vision=vision, alpha=alpha, text_temperature=0.3, vision_temperature=0.4)
    want = [_plain(tokens[b], text[b], vision[b], keep, alpha, 0.3, 0.4) for b in range(3)]
    assert got.tolist() == want


def test_text_decides_first_pick_and_shared_text_broadcasts():
    tokens = torch.tensor([[[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [-1.0, 0.2]]]).repeat(2, 1, 1)
    assert mmtok_select(tokens, torch.tensor([[[0.0, 1.0]]]), 1, alpha=0.0).tolist() == [[2], [2]]
    assert mmtok_select(tokens, torch.tensor([[[-1.0, 0.1]]]), 1, alpha=0.0).tolist() == [[3], [3]]


def test_padded_text_equals_each_sample_alone():
    g = torch.Generator().manual_seed(0)
    tokens, text = torch.randn(2, 30, 8, generator=g), torch.randn(2, 6, 8, generator=g)
    mask = torch.tensor([[True] * 6, [True] * 2 + [False] * 4])
    batched = MMTok().reduce(tokens, keep=7, text=text, text_mask=mask)
    alone = [MMTok().reduce(tokens[b : b + 1], keep=7, text=text[b : b + 1, : int(mask[b].sum())]).indices[0] for b in range(2)]
    assert batched.indices.tolist() == [a.tolist() for a in alone]
    assert torch.equal(batched.tokens, tokens.gather(1, batched.indices[..., None].expand(-1, -1, 8)))
    assert batched.sizes.shape == (2, 7, 1) and batched.assignment.shape == (2, 30)
    assert (batched.assignment >= 0).sum(dim=1).tolist() == [7, 7]


def test_coverage_table_rows_sum_to_their_weights():
    table = coverage_table(torch.randn(2, 10, 4), torch.randn(2, 3, 4), alpha=0.5)
    assert torch.allclose(table[:, :3].sum(dim=(1, 2)), torch.ones(2))       # text part: sum 1
    assert torch.allclose(table[:, 3:].sum(dim=(1, 2)), torch.full((2,), 0.5))  # vision part: alpha


def test_exclude_and_keep_all():
    tokens, text = torch.randn(2, 10, 4), torch.randn(2, 2, 4)
    exclude = torch.zeros(2, 10, dtype=torch.bool)
    exclude[:, :5] = True
    out = MMTok().reduce(tokens, keep=5, text=text, exclude=exclude)
    assert out.indices.tolist() == [[5, 6, 7, 8, 9]] * 2
    assert MMTok().reduce(tokens, keep=10, text=text).indices.tolist() == [list(range(10))] * 2
    with pytest.raises(ReducerError, match="fewer than keep"):
        MMTok().reduce(tokens, keep=6, text=text, exclude=exclude)


def test_options_from_constructor_and_call():
    g = torch.Generator().manual_seed(3)
    tokens, text = torch.randn(2, 40, 8, generator=g), torch.randn(2, 4, 8, generator=g)
    a = MMTok(alpha=3.0).reduce(tokens, keep=8, text=text).indices
    assert torch.equal(a, MMTok().reduce(tokens, keep=8, text=text, alpha=3.0).indices)
    assert not torch.equal(a, MMTok(alpha=0.0).reduce(tokens, keep=8, text=text).indices)


@pytest.mark.parametrize("kwargs,match", [
    ({}, r"mmtok needs text=\[B, T, 8\]"),
    ({"text": torch.randn(2, 3, 5)}, r"text=\[B, T, D\] = \[2, T, 8\]"),
    ({"text": torch.randn(3, 3, 8)}, r"text=\[B, T, D\]"),
    ({"text": torch.randn(2, 0, 8)}, "at least one text token"),
    ({"text": torch.randn(2, 3, 8), "text_mask": torch.ones(2, 4, dtype=torch.bool)}, r"text_mask must be \[B, T\]"),
    ({"text": torch.randn(2, 3, 8), "vision": torch.randn(2, 9, 8)}, r"vision must be \[B, N, Dv\]"),
    ({"text": torch.randn(2, 3, 8), "cls_attn": torch.rand(2, 10)}, "unexpected signals"),
])
def test_mmtok_errors_name_the_fix(kwargs, match):
    with pytest.raises(ReducerError, match=match):
        MMTok().reduce(torch.randn(2, 10, 8), keep=3, **kwargs)
