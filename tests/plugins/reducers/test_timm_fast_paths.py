"""The speed paths of the timm adapter and merge.py give the same results as the plain ones:
the class-row-only last block of ``forward()``, and the row-index merge of ToMe."""

import copy

import pytest
import torch
from zoo_plugins.reducers.merge import bipartite_plan
from zoo_plugins.reducers.reducers import DiffRate, ToMe


def _plain_merge(x, size, slots, n_out):
    """``sum(x * size) / sum(size)`` per output slot, written with scatter_add (reference formula)."""
    b, _, c = x.shape
    size = torch.ones_like(x[..., :1]) if size is None else size
    num = torch.zeros(b, n_out, c).scatter_add_(1, slots[..., None].expand(-1, -1, c), x * size)
    den = torch.zeros(b, n_out, 1).scatter_add_(1, slots[..., None], size)
    return num / den, den


@pytest.mark.parametrize("n,prefix,r,sized", [(197, 1, 8, False), (197, 1, 8, True), (21, 5, 6, True), (30, 2, 9, True),
                                              (11, 0, 5, True)])
def test_row_index_merge_equals_the_formula(n, prefix, r, sized):
    g = torch.Generator().manual_seed(n + r)
    metric, x = torch.randn(3, n, 16, generator=g), torch.randn(3, n, 24, generator=g)
    size = torch.randint(1, 5, (3, n, 1), generator=g).float() if sized else None
    plan = bipartite_plan(metric, r, prefix)
    got, got_size = plan.merge(x, size)
    want, want_size = _plain_merge(x, size, plan.slots(), plan.num_out)
    assert torch.equal(got_size, want_size)
    assert torch.allclose(got, want, atol=1e-6)


def _vit(timm, name="vit_tiny_patch16_224", **kw):
    model = timm.create_model(name, pretrained=False, depth=3, img_size=64, **kw).eval()
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.05)
    return model, torch.randn(2, 3, 64, 64, generator=g)


@pytest.mark.parametrize("reducer,schedule", [(ToMe(), {"r": 0}), (ToMe(), {"r": 3}),
                                              (DiffRate(), {"prune_kept": [17, 14, 12], "merge_kept": [17, 12, 9]})],
                         ids=["tome_r0", "tome_r3", "diffrate"])
def test_class_row_only_last_block_gives_the_same_logits(timm, reducer, schedule):
    model, x = _vit(timm)
    twin = copy.deepcopy(model)
    with torch.no_grad():
        ref = model(x)
        fast = reducer.apply(model, **schedule)
        full = reducer.apply(twin, **schedule)
        full.state.head_rows_only = False
        got, want = model(x), twin(x)
    assert fast.tokens_per_layer == full.tokens_per_layer
    assert fast.sizes is None or fast.sizes.shape[1] == 1  # only the class row left the last block
    assert torch.allclose(got, want, atol=1e-5)
    if schedule.get("r") == 0:
        assert torch.allclose(got, ref, atol=1e-5)
    with torch.no_grad():  # forward_features still returns every token
        assert model.forward_features(x).shape == twin.forward_features(x).shape


def test_class_row_shortcut_only_for_class_token_heads(timm):
    model, x = _vit(timm, "vit_base_patch16_gap_224")  # average pooling reads every token
    with torch.no_grad():
        handle = ToMe().apply(model, r=2)
        model(x)
    assert handle.sizes.shape[1] == handle.tokens_per_layer[-1] - 2
    model, x = _vit(timm)
    with torch.no_grad():
        handle = ToMe().apply(model, r=2, trace_source=True)  # sources need every row
        model(x)
    assert handle.source.max() == handle.tokens_per_layer[-1] - 3
