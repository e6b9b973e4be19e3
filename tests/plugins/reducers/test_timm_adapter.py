"""The timm adapter: exact at r=0 on a table of ViT variants, prefix protection, remove(),
pickling, forward_intermediates, pooling. Small configs (few blocks, small images) keep it fast."""

import copy
import io

import pytest
import torch
from zoo_plugins.reducers import unpatch
from zoo_plugins.reducers.reducers import MCTF, DiffRate, EViT, ToMe
from zoo_plugins.reducers.types import ReducerError

# (timm name, extra kwargs, prefix tokens): vit, deit, distilled deit, deit3 (LayerScale),
# dinov2 with registers (LayerScale + 4 registers), beit3 (attention-output / MLP norms), siglip
# (no class token, attention-pool head), a qk-norm ViT and a ResPostBlock ViT.
VARIANTS = [
    ("vit_tiny_patch16_224", {}, 1),
    ("deit_tiny_patch16_224", {}, 1),
    ("deit_tiny_distilled_patch16_224", {}, 2),
    ("deit3_small_patch16_224", {}, 1),
    ("vit_small_patch14_reg4_dinov2", {}, 5),
    ("beit3_base_patch16_224", {}, 1),
    ("vit_base_patch16_siglip_224", {}, 0),
    ("vit_base_patch16_gap_224", {}, 0),
    ("vit_tiny_patch16_224", {"qk_norm": True}, 1),
    ("vit_tiny_patch16_224", {"block_fn": "res_post"}, 1),
]


def _model(timm, name, extra, depth=3, size=64):
    kwargs = dict(extra)
    if kwargs.pop("block_fn", None) == "res_post":
        kwargs["block_fn"] = timm.models.vision_transformer.ResPostBlock
    img = size // 16 * 14 if "patch14" in name else size
    model = timm.create_model(name, pretrained=False, depth=depth, img_size=img, **kwargs).eval()
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():  # make every LayerScale / norm / bias matter
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.05)
    return model, torch.randn(2, 3, img, img, generator=g)


@pytest.mark.parametrize("name,extra,prefix", VARIANTS, ids=[f"{v[0]}{'-' + '-'.join(v[1]) if v[1] else ''}" for v in VARIANTS])
def test_r0_matches_unpatched_and_remove_is_bit_exact(timm, name, extra, prefix):
    model, x = _model(timm, name, extra)
    assert model.num_prefix_tokens == prefix
    with torch.no_grad():
        ref, ref_feat = model(x), model.forward_features(x)
        handle = ToMe().apply(model, r=0)
        out, feat = model(x), model.forward_features(x)
        assert torch.allclose(out, ref, atol=1e-5, rtol=1e-5)
        assert torch.allclose(feat, ref_feat, atol=1e-5, rtol=1e-5)
        handle.remove()
        assert torch.equal(model(x), ref)


@pytest.mark.parametrize("name,extra,prefix", VARIANTS[2:7], ids=[v[0] for v in VARIANTS[2:7]])
def test_merging_protects_prefix_and_conserves_size(timm, name, extra, prefix):
    model, x = _model(timm, name, extra, size=112)
    with torch.no_grad():
        ref = model.forward_features(x)
        handle = ToMe().apply(model, r=6, trace_source=True)
        feat = model.forward_features(x)
    n0 = ref.shape[1]
    assert feat.shape[1] == n0 - 18
    src, size = handle.source, handle.sizes[..., 0]
    assert src[:, :prefix].tolist() == [list(range(prefix))] * 2  # prefix tokens stay first, unmerged
    assert torch.equal(size[:, :prefix], torch.ones(2, prefix))
    assert torch.equal(size.sum(1), torch.full((2,), float(n0)))
    counts = torch.zeros_like(size).scatter_add_(1, src, torch.ones_like(src, dtype=size.dtype))
    assert torch.equal(counts, size)  # sizes are exactly the number of sources


def test_merge_at_last_block_only_keeps_earlier_intermediates(timm):
    model, x = _model(timm, "deit3_small_patch16_224", {}, depth=3)
    with torch.no_grad():
        ref = model.forward_intermediates(x, indices=[0, 1], intermediates_only=True)
        ToMe().apply(model, r=[0, 0, 5])
        out = model.forward_intermediates(x, indices=[0, 1], intermediates_only=True)
    for a, b in zip(out, ref):
        assert torch.allclose(a, b, atol=1e-5)


def test_forward_intermediates_unmerges_onto_grid(timm):
    model, x = _model(timm, "vit_small_patch14_reg4_dinov2", {})
    with torch.no_grad():
        ToMe().apply(model, r=5)
        final, inter = model.forward_intermediates(x, return_prefix_tokens=True)
        as_dict = model.forward_intermediates(x, output_dict=True, output_fmt="NLC")
        layers = model.get_intermediate_layers(x, n=2, reshape=True)
    assert final.shape == (2, 8, 384)  # 21 tokens, 5 protected: merges of 5, 5, then 3 (half the rest)
    assert [tuple(t.shape) for t, _ in inter] == [(2, 384, 4, 4)] * 3
    assert [tuple(p.shape) for _, p in inter] == [(2, 5, 384)] * 3
    assert tuple(as_dict["image_intermediates"][-1].shape) == (2, 16, 384)
    assert len(layers) == 2 and tuple(layers[0].shape) == (2, 384, 4, 4)
    # patches merged together share one value
    grid = inter[-1][0].flatten(2).transpose(1, 2)
    assert grid.unique(dim=1).shape[1] < 16


def test_torch_save_and_deepcopy_keep_the_patch(timm):
    model, x = _model(timm, "deit3_small_patch16_224", {})
    ToMe().apply(model, r=4)
    with torch.no_grad():
        want = model(x)
        buf = io.BytesIO()
        torch.save(model, buf)
        buf.seek(0)
        loaded = torch.load(buf, weights_only=False)
        assert torch.equal(loaded(x), want)
        assert torch.equal(copy.deepcopy(model)(x), want)
        assert unpatch(loaded) and not unpatch(loaded)
        model.__dict__.pop("_zoo_reducer")  # the loaded copy is independent of the original
        assert loaded(x).shape == want.shape


def test_weighted_avg_pool_and_attention_pool(timm):
    for name in ("vit_base_patch16_gap_224", "vit_base_patch16_siglip_224"):
        model, x = _model(timm, name, {}, depth=2)
        with torch.no_grad():
            ref = model(x)
            handle = ToMe().apply(model, r=3)
            out = model(x)
        assert handle.sizes is not None and out.shape == ref.shape
        assert torch.nn.functional.cosine_similarity(out, ref).min() > 0.5


def test_apply_twice_is_an_error_and_remove_is_idempotent(timm):
    model, _ = _model(timm, "vit_tiny_patch16_224", {})
    handle = ToMe().apply(model, r=2)
    with pytest.raises(ReducerError, match="already has a reducer"):
        ToMe().apply(model, r=2)
    handle.remove()
    handle.remove()
    with ToMe().apply(model, r=2):
        pass
    assert "forward" not in model.blocks[0].__dict__


@pytest.mark.parametrize("reducer,schedule", [(EViT(), {"keep_rate": 0.5, "locations": (1,)}),
                                              (DiffRate(), {"prune_kept": [17, 12, 8], "merge_kept": [17, 10, 4]})])
def test_class_attention_policies_need_a_class_token(timm, reducer, schedule):
    model, x = _model(timm, "vit_base_patch16_siglip_224", {}, depth=3)
    with pytest.raises(ReducerError, match="no class token"):
        reducer.apply(model, **schedule)
    model, x = _model(timm, "deit_tiny_patch16_224", {}, depth=3)
    with torch.no_grad():
        handle = reducer.apply(model, **schedule)
        out = model(x)
    assert out.shape == (2, 1000) and handle.tokens_per_layer[-1] < 17


def test_unsupported_blocks_are_named(timm):
    model = timm.create_model("vit_tiny_patch16_224", pretrained=False, depth=1, img_size=32,
                              block_fn=timm.models.vision_transformer.ParallelScalingBlock)
    with pytest.raises(ReducerError, match="ParallelScalingBlock"):
        ToMe().apply(model, r=1)


@pytest.mark.parametrize("name,extra,prefix", [VARIANTS[0], VARIANTS[3], VARIANTS[6]], ids=["vit", "deit3", "siglip"])
def test_mctf_on_variants_conserves_size_and_removes_exactly(timm, name, extra, prefix):
    model, x = _model(timm, name, extra, size=112)
    with torch.no_grad():
        ref = model(x)
        handle = MCTF().apply(model, r=4, trace_source=True)
        out = model(x)
        n0 = handle.source.shape[1]
        assert handle.tokens_per_layer == [n0, n0, n0 - 4]
        assert torch.equal(handle.sizes.sum(1).flatten(), torch.full((2,), float(n0)))
        assert handle.source[:, :prefix].tolist() == [list(range(prefix))] * 2
        assert out.shape == ref.shape
        handle.remove()
        assert torch.equal(model(x), ref)


def test_mctf_refuses_several_prefix_tokens(timm):
    model, x = _model(timm, "vit_small_patch14_reg4_dinov2", {}, size=112)
    MCTF().apply(model, r=2)
    with pytest.raises(ReducerError, match="at most one prefix"), torch.no_grad():
        model(x)
