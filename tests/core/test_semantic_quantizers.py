"""zoo.nn.kmeans.KMeansCodebook, zoo.nn.multi_codebook.MultiCodebookVQ and zoo.nn.backbones.DINOv2:
the arithmetic against brute force, the reference expressions, and the refusals."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from zoo.errors import ConfigError, TokenError
from zoo.nn.backbones import DINOv2, interpolate_position_embedding, vitamin
from zoo.nn.kmeans import KMeansCodebook
from zoo.nn.multi_codebook import MultiCodebookVQ


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("chunk", [7, 4096])
def test_kmeans_nearest_is_the_brute_force_argmin(dtype, chunk):
    g = torch.Generator().manual_seed(0)
    km = KMeansCodebook(torch.randn(50, 6, generator=g), chunk=chunk)
    x = torch.randn(3, 11, 6, generator=g, dtype=dtype)
    ids = km.nearest(x)
    assert ids.shape == (3, 11) and ids.dtype == torch.long
    assert torch.equal(ids, torch.cdist(x.reshape(-1, 6), km.centroids.to(dtype)).argmin(-1).view(3, 11))
    torch.testing.assert_close(km(ids), km.centroids[ids])



def test_kmeans_cached_centroid_norms_follow_new_centroids():
    """|c|^2 is cached between calls; a checkpoint load, an in-place edit or a dtype change must not
    reuse stale norms, and the distances are squared_distances' bit for bit."""
    from zoo.nn.quantize import squared_distances

    g = torch.Generator().manual_seed(3)
    km, x = KMeansCodebook.empty(40, 5, chunk=16), torch.randn(30, 5, generator=g)
    for change in (lambda: km.load_state_dict({"centroids": torch.randn(40, 5, generator=g)}),
                   lambda: km.centroids.mul_(-2.0), lambda: None):
        change()
        assert torch.equal(km.nearest(x), squared_distances(x, km.centroids).argmin(-1))
    assert torch.equal(km.nearest(x.double()), squared_distances(x.double(), km.centroids.double()).argmin(-1))

def test_kmeans_searches_in_the_features_dtype():
    """Two centroids 1e-12 apart in float64 (equal in float32): float64 features tell them apart."""
    c = torch.tensor([[0.0], [1.0 + 1e-12]], dtype=torch.float64)
    km = KMeansCodebook(c)
    assert km.nearest(torch.tensor([[0.5 + 1e-12]], dtype=torch.float64)).item() == 1


@pytest.mark.parametrize(("make", "err", "match"), [
    (lambda: KMeansCodebook(torch.zeros(4)), ConfigError, r"\[K, D\]"),
    (lambda: KMeansCodebook(torch.zeros(4, 2, dtype=torch.long)), ConfigError, "floating point"),
    (lambda: KMeansCodebook(torch.zeros(4, 2)).nearest(torch.zeros(3, 5)), TokenError, "width 2"),
    (lambda: KMeansCodebook(torch.zeros(4, 2))(torch.tensor([4])), ValueError, r"\[0, 4\)"),
    (lambda: MultiCodebookVQ(3, 16, 8), ConfigError, "multiple of num_codebooks"),
    (lambda: MultiCodebookVQ(2, 16, 8, search="dot"), ConfigError, "search must be"),
    (lambda: MultiCodebookVQ(2, 16, 8, l2_norm=False), ConfigError, "l2_norm=True"),
    (lambda: MultiCodebookVQ(2, 16, 8).nearest(torch.zeros(3, 6)), TokenError, "expects 8 channels"),
    (lambda: MultiCodebookVQ(2, 16, 8)(torch.zeros(3, 3, dtype=torch.long)), TokenError, "group axis of 2"),
    (lambda: MultiCodebookVQ(2, 16, 8)(torch.full((3, 2), 16)), ValueError, r"\[0, 16\)"),
    (lambda: vitamin("vit_base_patch16_224"), ConfigError, "not a timm ViTamin"),
])
def test_refusals_name_the_problem(make, err, match):
    with pytest.raises(err, match=match):
        make()


@pytest.mark.parametrize(("l2_norm", "search"), [(True, "cosine"), (True, "l2"), (False, "l2")])
def test_multi_codebook_groups_search_their_own_codebook(l2_norm, search):
    torch.manual_seed(0)
    vq = MultiCodebookVQ(4, 32, 16, l2_norm=l2_norm, search=search)
    z = torch.randn(5, 7, 16)
    ids = vq.nearest(z)
    assert ids.shape == (5, 7, 4)
    for g in range(4):  # each group alone, by brute force
        part = z[..., 4 * g:4 * g + 4].reshape(-1, 4)
        book = vq.codebooks[g].weight
        if l2_norm:
            part, book = F.normalize(part, dim=-1), F.normalize(book, dim=-1)
        want = (part @ book.t()).argmax(-1) if search == "cosine" else torch.cdist(part, book).argmin(-1)
        assert torch.equal(ids[..., g].reshape(-1), want)
    codes = vq(ids)
    assert codes.shape == (5, 7, 16)
    assert torch.equal(vq.nearest(codes), ids)  # a code is its own nearest entry


def test_multi_codebook_matches_meditok_expressions():
    """MedITok's VectorQuantizerM.f_to_idx / idx_to_f, written out: normalise, argmax of the dot product,
    ids stacked per group, codes = concatenated normalised codewords."""
    torch.manual_seed(1)
    vq = MultiCodebookVQ(8, 64, 64)
    feats = torch.randn(2, 10, 64)
    ref_ids = torch.stack([(F.normalize(f.reshape(-1, 8), dim=-1) @ F.normalize(cb.weight, dim=1).t()).argmax(1).view(2, 10)
                           for f, cb in zip(feats.split(8, dim=-1), vq.codebooks)], dim=1)  # [B, G, L]
    assert torch.equal(vq.nearest(feats).permute(0, 2, 1), ref_ids)
    ref_codes = torch.cat([F.embedding(ref_ids[:, g], F.normalize(cb.weight, dim=1)) for g, cb in enumerate(vq.codebooks)], -1)
    assert torch.equal(vq(ref_ids.permute(0, 2, 1)), ref_codes)


# --------------------------------------------------------------------------- DINOv2


@pytest.fixture(scope="module")
def dino():
    torch.manual_seed(0)
    m = DINOv2(embed_dim=32, depth=3, heads=2, num_register_tokens=4, pos_grid=5).eval()
    with torch.no_grad():
        m.pos_embed.normal_()
    return m


def test_dinov2_token_layout_and_blocks_taken(dino):
    x = torch.randn(2, 3, 42, 42)
    t = dino.prepare_tokens(x)
    assert t.shape == (2, 1 + 4 + 9, 32)
    assert torch.equal(t[:, 1:5], dino.register_tokens.expand(2, -1, -1))  # registers carry no position embedding
    h = t
    outs = []
    for blk in dino.blocks:
        h = blk(h)
        outs.append(dino.norm(h)[:, 5:])
    got = dino.get_intermediate_layers(x, 2)
    assert len(got) == 2 and torch.equal(got[0], outs[1]) and torch.equal(got[1], outs[2])
    assert torch.equal(dino.get_intermediate_layers(x, [0])[0], outs[0])
    assert torch.equal(dino(x), outs[2])
    pair = dino.get_intermediate_layers(x, [2], return_class_token=True)[0]
    assert torch.equal(pair[1], dino.norm(h)[:, 0])


def test_dinov2_position_grid_resize_is_the_dino_recipe(dino):
    """At the native grid the table is used as is; elsewhere the CLIP/DINO +0.1 bicubic recipe."""
    assert dino.position_embedding(70, 70) is dino.pos_embed
    want = interpolate_position_embedding(dino.pos_embed[0], 42, 56, 14)
    torch.testing.assert_close(dino.position_embedding(42, 56)[0], want)
    assert want.shape == (1 + 3 * 4, 32)


@pytest.mark.parametrize(("kw", "match"), [
    (dict(embed_dim=30, heads=4), "divide by heads"),
    (dict(depth=0), "depth"),
    (dict(num_register_tokens=-1), "num_register_tokens"),
])
def test_dinov2_bad_configs(kw, match):
    with pytest.raises(ConfigError, match=match):
        DINOv2(**{"embed_dim": 32, "depth": 2, "heads": 2, **kw})


def test_dinov2_refuses_sizes_off_the_patch_grid_and_unknown_blocks(dino):
    with pytest.raises(ConfigError, match="divisible by the patch size 14"):
        dino(torch.randn(1, 3, 40, 42))
    with pytest.raises(ConfigError, match="blocks 0..2"):
        dino.get_intermediate_layers(torch.randn(1, 3, 28, 28), [3])
