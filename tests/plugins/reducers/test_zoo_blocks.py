"""The zoo-blocks adapter: the opt-in reducer protocol on TiTok's encoder, on a toy third-party
model (protected tokens at the end) and on timm blocks (agreement with the timm adapter)."""

import copy
import io

import pytest
import torch
from zoo_plugins.reducers import unpatch
from zoo_plugins.reducers.adapters import _attn_maps
from zoo_plugins.reducers.adapters.base import find_adapter
from zoo_plugins.reducers.reducers import MCTF, DiffRate, EViT, ToMe
from zoo_plugins.reducers.types import ReducerError

# --------------------------------------------------------------------------- TiTok's encoder


@pytest.fixture(scope="module")
def titok():
    from zoo_plugins.titok.config import TiTokConfig
    from zoo_plugins.titok.model import TiTok

    torch.manual_seed(0)
    cfg = TiTokConfig(vit_enc_model_size="small", vit_dec_model_size="small", crop_size=64, num_latent_tokens=8,
                      finetune_decoder=False, is_legacy=False)
    return TiTok(cfg).eval(), torch.rand(3, 3, 64, 64, generator=torch.Generator().manual_seed(1))


def test_titok_encoder_is_found_and_exact_at_r0(titok):
    model, x = titok
    assert find_adapter(model.encoder).name == "zoo_blocks"
    keys = list(model.state_dict())
    with torch.no_grad():
        ref = model.encode_latents(x)
        ref_ids = model.quantize_latents(ref)
        handle = ToMe().apply(model.encoder, r=0)
        out = model.encode_latents(x)
        assert torch.equal(out, ref)  # same ops in the same order: bit-exact, not just close
        assert torch.equal(model.quantize_latents(out), ref_ids)
        assert handle.tokens_per_layer == [25] * 8
        handle.remove()
        assert "forward" not in model.encoder.transformer[0].__dict__
        assert torch.equal(model.encode_latents(x), ref)
    assert list(model.state_dict()) == keys


@pytest.mark.parametrize("r,want", [(3, [25, 22, 19, 16, 13, 11, 10, 10]), ([8], [25, 17] + [17] * 6)])
def test_titok_tome_keeps_latent_tokens(titok, r, want):
    model, x = titok
    with torch.no_grad():
        ref = model.encode_latents(x)
        with ToMe().apply(model.encoder, r=r, trace_source=True) as handle:
            out = model.encode_latents(x)
    assert out.shape == ref.shape  # the 8 latent tokens come out, batch of 3
    assert handle.tokens_per_layer == want  # 1 class + 16 patches + 8 latents; the last block is rows-only
    assert torch.nn.functional.cosine_similarity(out.flatten(1), ref.flatten(1)).min() > 0.9
    assert handle.source[:, -8:].tolist() == [list(range(8))] * 3  # latents: never merged, output rows 0..7


def test_titok_protected_tokens_never_merge(titok):
    model, x = titok
    enc = model.encoder
    seen = []
    with torch.no_grad(), ToMe().apply(enc, r=4, trace_source=True) as handle:
        hook = enc.transformer[5].register_forward_pre_hook(
            lambda m, a: seen.append((handle.state.source.clone(), handle.state.size.clone())))
        model.encode_latents(x)
        hook.remove()
    src, size = seen[0]  # where each input token sits when block 5 starts, and the sizes there
    n = handle.tokens_per_layer[5]
    assert n == 10  # 25 -> 21 -> 17 -> 13 -> 11 -> 10: merging stops when one patch token is left
    assert src[:, 0].tolist() == [0] * 3 and src[:, -8:].tolist() == [list(range(n - 8, n))] * 3
    assert src[:, 1:17].min() >= 1 and src[:, 1:17].max() < n - 8  # patches only merge among themselves
    assert torch.equal(size[:, [0, *range(n - 8, n)], 0], torch.ones(3, 9))
    assert torch.equal(size[:, 1:n - 8, 0].sum(1), torch.full((3,), 16.0))


def test_titok_class_attention_policies_and_mctf_limits(titok):
    model, x = titok
    with torch.no_grad():
        with EViT().apply(model.encoder, keep_rate=0.5, locations=(2,)) as handle:
            out = model.encode_latents(x)
        assert out.shape == (3, 12, 1, 8) and handle.tokens_per_layer[3] == 1 + 8 + 8 + 1
        with DiffRate().apply(model.encoder, prune_kept=[25] * 3 + [20] * 5, merge_kept=[25] * 3 + [15] * 5) as handle:
            assert model.encode_latents(x).shape == (3, 12, 1, 8)
        assert handle.tokens_per_layer == [25] * 4 + [15] * 4
        MCTF().apply(model.encoder, r=2)
        with pytest.raises(ReducerError, match="at most one prefix"):
            model.encode_latents(x)
        assert unpatch(model.encoder)


def test_titok_patched_encoder_pickles(titok):
    model, x = titok
    enc = copy.deepcopy(model.encoder)
    ToMe().apply(enc, r=2)
    with torch.no_grad():
        want = enc(x, model.latent_tokens)
        buf = io.BytesIO()
        torch.save(enc, buf)
        buf.seek(0)
        assert torch.equal(torch.load(buf, weights_only=False)(x, model.latent_tokens), want)


# --------------------------------------------------------------------------- a third-party model


class _Block(torch.nn.Module):
    def __init__(self, d=32, h=4):
        super().__init__()
        self.h = h
        self.n1, self.n2 = torch.nn.LayerNorm(d), torch.nn.LayerNorm(d)
        self.qkv, self.proj = torch.nn.Linear(d, 3 * d), torch.nn.Linear(d, d)
        self.mlp = torch.nn.Sequential(torch.nn.Linear(d, 64), torch.nn.GELU(), torch.nn.Linear(64, d))

    def reducer_qkv(self, x, rows=None):
        b, n, d = x.shape
        q, k, v = self.qkv(self.n1(x)).view(b, n, 3, self.h, d // self.h).permute(2, 0, 3, 1, 4)
        return (q if rows is None else q[:, :, rows]), k, v

    def reducer_attn_out(self, o):
        return self.proj(o.transpose(1, 2).flatten(2))

    def reducer_mlp(self, x):
        return self.mlp(self.n2(x))

    def forward(self, x):
        q, k, v = self.reducer_qkv(x)
        x = x + self.reducer_attn_out(torch.nn.functional.scaled_dot_product_attention(q, k, v))
        return x + self.reducer_mlp(x)


class _Toy(torch.nn.Module):
    """A summary token either first (``lead``) or last: a third party's reducible model."""

    def __init__(self, last: bool):
        super().__init__()
        self.last = last
        self.blocks = torch.nn.ModuleList(_Block() for _ in range(4))

    def reducer_blocks(self):
        return list(self.blocks)

    def reducer_protected(self):
        return (0, 1) if self.last else (1, 0)

    def forward(self, x):
        for blk in self.blocks:
            x = blk(x)
        return x


@pytest.mark.parametrize("reducer,schedule", [(ToMe(), {"r": 5}), (MCTF(), {"r": 4}),
                                              (MCTF(), {"r": 6, "bidirection": False, "pooling": "size"})],
                         ids=["tome", "mctf", "mctf_onedir_size"])
def test_trailing_protected_token_equals_leading_one(reducer, schedule):
    first = _Toy(last=False).eval()
    last = copy.deepcopy(first)
    last.last = True
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 1 + 27, 32, generator=g)
    x_last = torch.cat([x[:, 1:], x[:, :1]], dim=1)  # the summary token moved to the end
    with torch.no_grad():
        h1 = reducer.apply(first, trace_source=True, **schedule)
        y1 = first(x)
        h2 = reducer.apply(last, trace_source=True, **schedule)
        y2 = last(x_last)
    assert h1.tokens_per_layer == h2.tokens_per_layer and y1.shape[1] < x.shape[1]
    assert torch.allclose(y2[:, -1], y1[:, 0], atol=1e-5)
    assert torch.allclose(y2[:, :-1], y1[:, 1:], atol=1e-5)
    n = y1.shape[1]
    moved = torch.where(h1.source == 0, n - 1, h1.source - 1)  # output slots after moving the summary last
    assert torch.equal(h2.source, torch.cat([moved[:, 1:], moved[:, :1]], dim=1))
    assert torch.equal(h2.sizes[:, -1], h1.sizes[:, 0]) and torch.equal(h2.sizes[:, :-1], h1.sizes[:, 1:])


def test_protocol_errors_name_the_fix():
    toy = _Toy(last=False)
    toy.blocks[1].reducer_mlp = None
    with pytest.raises(ReducerError, match=r"block 1 .*reducer_mlp"):
        ToMe().apply(toy, r=1)
    toy = _Toy(last=True)
    with pytest.raises(ReducerError, match="no leading"):
        EViT().apply(toy, keep_rate=0.5, locations=(1,))


# --------------------------------------------------------------------------- timm blocks via the protocol


def _protocol_timm(timm, model):
    """A copy of a timm ViT whose blocks also implement the protocol (a third party's wrapper)."""
    vt = timm.models.vision_transformer

    class Block(vt.Block):
        def reducer_qkv(self, x, rows=None):
            b, n, _ = x.shape
            a = self.attn
            q, k, v = a.qkv(self.norm1(x)).reshape(b, n, 3, a.num_heads, a.head_dim).permute(2, 0, 3, 1, 4).unbind(0)
            return a.q_norm(q), a.k_norm(k), v

        def reducer_attn_out(self, o):
            b, h, n, d = o.shape
            return self.ls1(self.attn.proj(o.transpose(1, 2).reshape(b, n, h * d)))

        def reducer_mlp(self, x):
            return self.ls2(self.mlp(self.norm2(x)))

    model = copy.deepcopy(model)
    for blk in model.blocks:
        blk.__class__ = Block
    model.reducer_blocks = lambda: list(model.blocks)
    model.reducer_protected = lambda: (model.num_prefix_tokens, 0)
    return model


@pytest.mark.parametrize("reducer,schedule", [(ToMe(), {"r": 6}), (MCTF(), {"r": 8}),
                                              (EViT(), {"keep_rate": 0.6, "locations": (1, 2)})],
                         ids=["tome", "mctf", "evit"])
def test_zoo_blocks_equals_timm_adapter_on_timm_blocks(timm, reducer, schedule):
    model = timm.create_model("deit3_small_patch16_224", pretrained=False, depth=4, img_size=96).eval()
    x = torch.randn(2, 3, 96, 96, generator=torch.Generator().manual_seed(3))
    twin = _protocol_timm(timm, model)
    with torch.no_grad():
        a = reducer.apply(model, adapter="timm_vit", trace_source=True, **schedule)
        want = model.forward_features(x)
        b = reducer.apply(twin, adapter="zoo_blocks", trace_source=True, **schedule)
        got = twin.forward_features(x)
    assert a.tokens_per_layer == b.tokens_per_layer and torch.equal(a.source, b.source)
    assert torch.allclose(got, want, atol=1e-5)


def test_mctf_chunked_maps_give_the_same_merges(monkeypatch, timm):
    base = timm.create_model("deit_tiny_patch16_224", pretrained=False, depth=4, img_size=96).eval()
    x = torch.randn(2, 3, 96, 96, generator=torch.Generator().manual_seed(4))
    outs = []
    for max_bytes in (None, 2 * 3 * 37 * 4 * 5):  # whole map; 5 query rows per chunk
        if max_bytes is not None:
            monkeypatch.setattr(_attn_maps, "MAX_MAP_BYTES", max_bytes)
        for adapter in ("timm_vit", "zoo_blocks"):
            m = copy.deepcopy(base) if adapter == "timm_vit" else _protocol_timm(timm, base)
            with torch.no_grad():
                h = MCTF().apply(m, r=6, adapter=adapter, trace_source=True)
                outs.append((m.forward_features(x), h.source))
    for feats, source in outs[1:]:
        assert torch.equal(source, outs[0][1])
        assert torch.allclose(feats, outs[0][0], atol=1e-5)


def test_chunked_column_means_and_merged_attention_match_full_maps():
    from zoo_plugins.reducers.policies.mctf import mctf_plan

    g = torch.Generator().manual_seed(5)
    q, k = torch.randn(2, 3, 21, 8, generator=g), torch.randn(2, 3, 21, 8, generator=g)
    x, v = torch.randn(2, 21, 16, generator=g), torch.randn(2, 3, 16, 8, generator=g)
    bias = torch.randn(2, 1, 1, 21, generator=g)
    full, probs = _attn_maps.column_means(q, k, 0.3, bias)
    part, none = _attn_maps.column_means(q, k, 0.3, bias, max_bytes=2 * 3 * 21 * 4 * 4)
    assert none is None and torch.allclose(part, full, atol=1e-6)
    plan = mctf_plan(x, full, None, 5, 1, 1.0, 20.0, 40.0)
    want = plan.merge_attention(probs, None) @ v
    for got in (_attn_maps.merged_attention(q, k, 0.3, bias, probs, plan, None, v),
                _attn_maps.merged_attention(q, k, 0.3, bias, None, plan, None, v, max_bytes=2 * 3 * 21 * 4 * 4)):
        assert torch.allclose(got, want, atol=1e-6)
