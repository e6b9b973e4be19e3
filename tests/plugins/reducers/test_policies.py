"""Policies and primitives on plain tensors: schedules, bipartite matching, DivPrune, reduce()."""

import pytest
import torch
from zoo_plugins.reducers.merge import (
    bipartite_plan,
    compose_slots,
    max_bipartite_r,
    weighted_mean,
)
from zoo_plugins.reducers.policies.diffrate import published_models, published_schedule
from zoo_plugins.reducers.policies.divprune import divprune_select, resolve_keep
from zoo_plugins.reducers.policies.tome import parse_r
from zoo_plugins.reducers.reducers import REDUCERS, DiffRate, DivPrune, EViT, ToMe
from zoo_plugins.reducers.types import ReducerError


@pytest.mark.parametrize("layers,r,want", [
    (4, 8, [8, 8, 8, 8]),
    (3, (8, -1.0), [16, 8, 0]),
    (3, (8, 1.0), [0, 8, 16]),
    (3, (8, 0.0), [8, 8, 8]),
    (4, [3, 2], [3, 2, 0, 0]),
    (1, 5, [5]),
])
def test_parse_r(layers, r, want):
    assert parse_r(layers, r) == want


@pytest.mark.parametrize("r,match", [(-1, ">= 0"), ([1, 2, 3], "3 values"), ((4, 2.0), "inflection"), (True, "bool")])
def test_parse_r_errors(r, match):
    with pytest.raises(ReducerError, match=match):
        parse_r(2, r)


@pytest.mark.parametrize("n,prefix,want", [(197, 1, 98), (198, 2, 98), (261, 5, 128), (10, 0, 5), (3, 3, 0), (2, 1, 0)])
def test_max_bipartite_r(n, prefix, want):
    assert max_bipartite_r(n, prefix) == want


def _brute_force_tome(metric, r, prefix):
    """ToMe's matching written plainly, one sample at a time (independent of merge.py)."""
    out = []
    for m in metric:
        m = m / m.norm(dim=-1, keepdim=True)
        a, b = list(range(0, len(m), 2)), list(range(1, len(m), 2))
        best = {}
        for i in a:
            if i < prefix:
                continue
            cands = [j for j in b if j >= prefix]
            sims = torch.stack([m[i] @ m[j] for j in cands])
            best[i] = (sims.max().item(), cands[int(sims.argmax())])
        src = sorted(best, key=lambda i: -best[i][0])[:r]
        out.append({i: best[i][1] for i in src})
    return out


@pytest.mark.parametrize("n,prefix,r", [(11, 0, 3), (12, 1, 4), (13, 2, 5), (17, 5, 6)])
def test_bipartite_matches_brute_force_and_sizes(n, prefix, r):
    g = torch.Generator().manual_seed(n)
    metric = torch.randn(2, n, 6, generator=g)
    x = torch.randn(2, n, 3, generator=g)
    plan = bipartite_plan(metric, r, prefix)
    slots = plan.slots()
    y, size = plan.merge(x, None)
    assert y.shape == (2, n - r, 3) and plan.num_out == n - r
    for bi, merges in enumerate(_brute_force_tome(metric, r, prefix)):
        for src, dst in merges.items():
            assert slots[bi, src] == slots[bi, dst]  # merged into its best match
        groups = {}
        for tok, slot in enumerate(slots[bi].tolist()):
            groups.setdefault(slot, []).append(tok)
        for slot, toks in groups.items():  # size-weighted mean of the members
            assert size[bi, slot, 0] == len(toks)
            assert torch.allclose(y[bi, slot], x[bi, toks].mean(0), atol=1e-6)
        assert slots[bi, :prefix].tolist() == list(range(prefix))


def test_bipartite_nothing_to_merge():
    assert bipartite_plan(torch.randn(1, 4, 2), 0) is None
    assert bipartite_plan(torch.randn(1, 2, 2), 3, num_prefix=2) is None
    with pytest.raises(ValueError, match=r"\[B, N, D\]"):
        bipartite_plan(torch.randn(4, 2), 1)


def test_weighted_mean_and_compose_slots():
    x = torch.tensor([[[1.0], [4.0]]])
    assert weighted_mean(x, None).item() == 2.5
    assert weighted_mean(x, torch.tensor([[[3.0], [1.0]]])).item() == 1.75
    src = torch.tensor([[0, 1, -1, 2]])
    assert compose_slots(src, torch.tensor([[0, 0, 1]])).tolist() == [[0, 0, -1, 1]]
    assert compose_slots(None, torch.tensor([[1, 0]])).tolist() == [[1, 0]]


def _divprune_plain(x, k):
    """The max-min selection written as in the paper, one sample, no batching tricks."""
    xn = x / x.norm(dim=-1, keepdim=True)
    d = 1 - xn @ xn.T
    first = int(torch.argmax(torch.sort(d, dim=0).values[1]))
    picked = [first]
    while len(picked) < k:
        picked.append(int(torch.argmax(d[picked].min(dim=0).values)))
    return sorted(picked)


@pytest.mark.parametrize("n,d,k", [(20, 4, 5), (50, 8, 10), (7, 3, 7)])
def test_divprune_against_plain_definition(n, d, k):
    x = torch.randn(3, n, d, generator=torch.Generator().manual_seed(n))
    got = divprune_select(x, k)
    assert got.tolist() == [_divprune_plain(x[b], k) for b in range(3)]


def test_divprune_reduce_outputs():
    x = torch.randn(2, 30, 8)
    out = DivPrune().reduce(x, keep=6)
    assert out.tokens.shape == (2, 6, 8) and torch.equal(out.sizes, torch.ones(2, 6, 1))
    assert torch.equal(out.tokens, x.gather(1, out.indices[..., None].expand(-1, -1, 8)))
    assert (out.assignment >= 0).sum().item() == 12
    assert torch.all(out.indices[:, 1:] > out.indices[:, :-1])


@pytest.mark.parametrize("keep,n,want", [(0.1, 576, 58), (0.25, 10, 2), (3, 10, 3), (1.0, 4, 4)])
def test_resolve_keep(keep, n, want):
    assert resolve_keep(keep, n) == want


@pytest.mark.parametrize("keep,match", [(0, "between 1"), (11, "between 1"), (1.5, "ratio"), (True, "bool")])
def test_resolve_keep_errors(keep, match):
    with pytest.raises(ReducerError, match=match):
        resolve_keep(keep, 10)


def test_tome_reduce_merges_to_keep_with_sizes():
    x = torch.randn(2, 25, 8)
    out = ToMe().reduce(x, keep=7, num_prefix=1)
    assert out.tokens.shape == (2, 7, 8)
    assert torch.equal(out.sizes.sum(1).flatten(), torch.tensor([25.0, 25.0]))
    assert out.indices[:, 0].tolist() == [0, 0] and out.assignment[:, 0].tolist() == [0, 0]
    # each output is the mean of its members
    for b in range(2):
        for slot in range(7):
            members = (out.assignment[b] == slot).nonzero().flatten()
            assert torch.allclose(out.tokens[b, slot], x[b, members].mean(0), atol=1e-5)
            assert out.indices[b, slot] == members.min()


def test_evit_reduce_keeps_top_attended_and_fuses_rest():
    x = torch.randn(1, 6, 4)
    attn = torch.tensor([[0.05, 0.4, 0.1, 0.3, 0.1, 0.05]])
    out = EViT().reduce(x, keep=2, cls_attn=attn)
    assert out.tokens.shape == (1, 3, 4)
    assert torch.equal(out.tokens[0, 0], x[0, 1]) and torch.equal(out.tokens[0, 1], x[0, 3])
    rest = [0, 2, 4, 5]
    assert torch.allclose(out.tokens[0, 2], (x[0, rest] * attn[0, rest, None]).sum(0))
    with pytest.raises(ReducerError, match="cls_attn"):
        EViT().reduce(x, keep=2)


def test_published_diffrate_schedules():
    models = published_models()
    assert set(models) >= {"ViT-T-DeiT", "ViT-S-DeiT", "ViT-B-DeiT", "ViT-B-MAE"}
    prune, merge = published_schedule("ViT-B-DeiT", 8.7)
    assert prune[:3] == [197, 192, 172] and merge[:3] == [197, 178, 162]
    with pytest.raises(ReducerError, match="published DiffRate schedules at"):
        published_schedule("ViT-B-DeiT", 1.0)
    with pytest.raises(ReducerError, match="ViT-S-DeiT"):
        published_schedule("nope", 1.0)
    with pytest.raises(ReducerError, match="flops="):
        DiffRate().policy()


@pytest.mark.parametrize("name", sorted(REDUCERS))
def test_reducers_state_needs_and_misuse(name):
    reducer = REDUCERS[name]()
    assert reducer.needs and reducer.training
    assert reducer.to("cpu") is reducer and reducer.eval() is reducer
    with pytest.raises(ReducerError):
        reducer.reduce(torch.zeros(3, 4))  # not [B, N, D]


def test_post_encoder_only_reducer_refuses_apply():
    with pytest.raises(ReducerError, match="reduce"):
        DivPrune().apply(torch.nn.Linear(2, 2))
