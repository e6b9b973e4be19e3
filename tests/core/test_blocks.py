"""zoo.nn.blocks: the decode-friendly Linear, Mlp, SelfAttention (keys, math, KV-cache decode)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from zoo.nn.blocks import Linear, Mlp, SelfAttention, linear, merge_heads, split_qkv
from zoo.sampling import StaticKVCache


@pytest.mark.parametrize("rows", [1, 2, 3, 4, 5, 8])
@pytest.mark.parametrize("d_in, d_out, bias", [(24, 72, True), (72, 24, True), (32, 32, False), (16, 200, False)])
def test_linear_matches_f_linear(rows, d_in, d_out, bias):
    g = torch.Generator().manual_seed(rows * 1000 + d_in)
    w = torch.randn(d_out, d_in, generator=g)
    b = torch.randn(d_out, generator=g) if bias else None
    x = torch.randn(rows, 1, d_in, generator=g)  # leading dims are flattened into rows
    out = linear(x, w, b)
    assert out.shape == (rows, 1, d_out) and out.is_contiguous()
    assert torch.allclose(out, F.linear(x, w, b), atol=1e-5, rtol=1e-5)


def test_linear_other_dtypes_take_f_linear_exactly():
    w, x = torch.randn(64, 16, dtype=torch.float64), torch.randn(2, 16, dtype=torch.float64)
    assert torch.equal(linear(x, w), F.linear(x, w))


def test_linear_module_is_nn_linear_with_the_same_keys_and_grads():
    ref = torch.nn.Linear(8, 16)
    mine = Linear(8, 16)
    mine.load_state_dict(ref.state_dict(), strict=True)
    assert isinstance(mine, torch.nn.Linear) and list(mine.state_dict()) == ["weight", "bias"]
    x = torch.randn(2, 8)
    mine(x).sum().backward()
    ref(x).sum().backward()
    assert torch.allclose(mine.weight.grad, ref.weight.grad, atol=1e-6)


def test_mlp_is_fc2_gelu_fc1():
    m = Mlp(8, 32)
    x = torch.randn(3, 5, 8)
    assert sorted(m.state_dict()) == ["fc1.bias", "fc1.weight", "fc2.bias", "fc2.weight"]
    assert torch.allclose(m(x), m.fc2(F.gelu(m.fc1(x))), atol=1e-6)


def test_split_and_merge_heads_round_trip():
    qkv = torch.randn(2, 5, 3 * 12)
    q, k, v = split_qkv(qkv, heads=3)
    assert q.shape == (2, 3, 5, 4)
    assert torch.equal(torch.cat([merge_heads(q), merge_heads(k), merge_heads(v)], dim=-1), qkv)


@pytest.mark.parametrize("qkv_bias, qk_norm", [(False, False), (True, True)])
def test_self_attention_keys_and_math(qkv_bias, qk_norm):
    torch.manual_seed(0)
    attn = SelfAttention(16, heads=2, qkv_bias=qkv_bias, qk_norm=qk_norm).eval()
    keys = {"qkv.weight", "proj.weight", "proj.bias"} | ({"qkv.bias"} if qkv_bias else set())
    keys |= {"q_norm.weight", "q_norm.bias", "k_norm.weight", "k_norm.bias"} if qk_norm else set()
    assert set(attn.state_dict()) == keys
    x = torch.randn(2, 6, 16)
    q, k, v = attn.qkv(x).view(2, 6, 3, 2, 8).permute(2, 0, 3, 1, 4)
    if qk_norm:
        q, k = attn.q_norm(q), attn.k_norm(k)
    expected = attn.proj(F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(2, 6, 16))
    assert torch.allclose(attn(x, causal=True), expected, atol=1e-5)


def test_self_attention_cache_decode_equals_full_causal_pass():
    torch.manual_seed(1)
    attn = SelfAttention(16, heads=4, qkv_bias=True, qk_norm=True).eval()
    x = torch.randn(2, 7, 16)
    full = attn(x, causal=True)
    cache = StaticKVCache(1, 2, 4, 7, 4)
    outs = [attn(x[:, :3], causal=True, cache=cache)]
    cache.advance(3)
    for i in range(3, 7):  # one decode query at a time (2 rows: the small-row Linear path)
        outs.append(attn(x[:, i : i + 1], causal=True, cache=cache))
        cache.advance(1)
    assert torch.allclose(torch.cat(outs, dim=1), full, atol=1e-5)


def test_self_attention_rejects_indivisible_heads():
    with pytest.raises(ValueError, match="divisible"):
        SelfAttention(10, heads=3)
