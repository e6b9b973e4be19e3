"""The ViT-autoencoder core: RoPE variants (zoo.nn.rope), the pre-norm block family
(zoo.nn.prenorm), NaFlex patch dictionaries (zoo.nn.naflex) and binary tokens (zoo.nn.binary)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from zoo.errors import ConfigError, InputError, TokenError
from zoo.nn.binary import BinaryQuantizer, binarize, bits_to_ids, ids_to_bits
from zoo.nn.masks import KeyPaddingMask
from zoo.nn.naflex import patchify, unpatchify
from zoo.nn.prenorm import BlockConfig, PreNormBlock, block_key_map
from zoo.nn.rope import apply_rotary, grid_positions, rope_tables
from zoo.nn.rope2d import apply_rope, rope_2d_table

# --------------------------------------------------------------------------- RoPE


def _complex_rope(x: torch.Tensor, angles: torch.Tensor, pairs: str) -> torch.Tensor:
    """Rotation as complex multiplication (the definition), pairing channels (2i, 2i+1) or (i, i + D/2)."""
    d = x.shape[-1]
    if pairs == "interleaved":
        c = torch.view_as_complex(x.double().reshape(*x.shape[:-1], d // 2, 2).contiguous())
        return torch.view_as_real(c * torch.polar(torch.ones_like(angles), angles)).flatten(-2)
    c = torch.complex(x[..., : d // 2].double(), x[..., d // 2:].double()) * torch.polar(torch.ones_like(angles), angles)
    return torch.cat([c.real, c.imag], dim=-1)


@pytest.mark.parametrize("axes_dims, pairs", [([16], "interleaved"), ([16], "half"), ([8, 8], "interleaved"),
                                              ([4, 6, 6], "interleaved"), ([4, 6, 6], "half")])
def test_rotation_is_complex_multiplication(axes_dims, pairs):
    g = torch.Generator().manual_seed(0)
    n = 7
    pos = torch.randint(0, 20, (n, len(axes_dims)), generator=g).double()
    x = torch.randn(2, 3, n, sum(axes_dims), generator=g, dtype=torch.float64)
    cos, sin = rope_tables(pos, axes_dims, layout=pairs, dtype=torch.float64, out_dtype=torch.float64)
    freqs = torch.cat([1.0 / 10000 ** (torch.arange(0, d, 2, dtype=torch.float64) / d) for d in axes_dims])
    owner = torch.repeat_interleave(torch.arange(len(axes_dims)), torch.tensor(axes_dims) // 2)
    angles = pos[:, owner] * freqs
    torch.testing.assert_close(apply_rotary(x, cos, sin, pairs), _complex_rope(x, angles, pairs))


@pytest.mark.parametrize("pairs", ["interleaved", "half"])
def test_scores_depend_only_on_the_offset(pairs):
    q, k = torch.randn(1, 1, 1, 16, dtype=torch.float64), torch.randn(1, 1, 1, 16, dtype=torch.float64)

    def score(pq, pk):
        tq = rope_tables(torch.tensor([pq], dtype=torch.float64), [8, 8], layout=pairs, dtype=torch.float64, out_dtype=torch.float64)
        tk = rope_tables(torch.tensor([pk], dtype=torch.float64), [8, 8], layout=pairs, dtype=torch.float64, out_dtype=torch.float64)
        return float((apply_rotary(q, *tq, pairs) * apply_rotary(k, *tk, pairs)).sum())

    assert score([3.0, 5.0], [1.0, 2.0]) == pytest.approx(score([12.0, 9.0], [10.0, 6.0]), abs=1e-9)
    assert score([3.0, 5.0], [1.0, 2.0]) != pytest.approx(score([3.0, 5.0], [2.0, 2.0]), abs=1e-6)


def test_two_axes_reproduce_the_eva02_square_grid_tables():
    side, head = 4, 16
    cos, sin = rope_2d_table(side, head, pt_seq_len=side)  # integer positions
    ours = rope_tables(grid_positions(side, side), [head // 2, head // 2])
    torch.testing.assert_close(ours[0], cos, atol=1e-6, rtol=0)
    x = torch.randn(1, 2, side * side, head)
    torch.testing.assert_close(apply_rotary(x, *ours), apply_rope(x, cos, sin), atol=1e-6, rtol=0)


def test_flux_three_axis_tables_are_per_axis_interleaved_slices():
    """diffusers' FluxPosEmbed layout: per axis, cos/sin of pos * 1/theta^(2i/d) in float64, each
    repeated twice (pairs), axes concatenated; latent tokens on axis 0, patches on axes 1-2."""
    ids = torch.cat([torch.stack([torch.arange(5.0), torch.zeros(5), torch.zeros(5)], -1),
                     torch.cat([torch.zeros(12, 1), grid_positions(3, 4)], -1)])
    cos, sin = rope_tables(ids, [8, 28, 28], dtype=torch.float64)
    start = 0
    for axis, d in enumerate([8, 28, 28]):
        freqs = 1.0 / 10000 ** (torch.arange(0, d, 2, dtype=torch.float64) / d)
        ang = torch.outer(ids[:, axis].double(), freqs)
        assert torch.equal(cos[:, start:start + d], ang.cos().repeat_interleave(2, 1).float())
        assert torch.equal(sin[:, start:start + d], ang.sin().repeat_interleave(2, 1).float())
        start += d


@pytest.mark.parametrize("call, message", [
    (lambda: rope_tables(torch.zeros(3, 2), [8]), "2 axes"),
    (lambda: rope_tables(torch.zeros(3, 1), [7]), "even"),
    (lambda: rope_tables(torch.zeros(3, 1), [8], layout="spiral"), "layout"),
])
def test_rope_bad_arguments(call, message):
    with pytest.raises(InputError, match=message):
        call()


# --------------------------------------------------------------------------- blocks


def _reference_block(block: PreNormBlock, x: torch.Tensor, rope=None, causal: bool = False) -> torch.Tensor:
    """The block written out by hand from its config (unfused math)."""
    cfg = block.cfg

    def norm(mod, t):
        if cfg.norm == "rms":
            return t * torch.rsqrt(t.pow(2).mean(-1, keepdim=True) + mod.eps) * mod.weight
        return F.layer_norm(t, (t.shape[-1],), mod.weight, mod.bias, mod.eps)

    def attn(t):
        b, n, _ = t.shape
        q, k, v = block.attn.qkv(t).view(b, n, 3, cfg.heads, -1).permute(2, 0, 3, 1, 4)
        if block.attn.q_norm is not None:
            q, k = norm(block.attn.q_norm, q), norm(block.attn.k_norm, k)
        if rope is not None:
            q, k = apply_rotary(q, *rope, cfg.rope_rotation), apply_rotary(k, *rope, cfg.rope_rotation)
        s = q @ k.transpose(-1, -2) / cfg.head_dim ** 0.5
        if causal:
            s = s.masked_fill(torch.ones(n, n, dtype=torch.bool).triu(1), float("-inf"))
        return block.attn.proj((s.softmax(-1) @ v).transpose(1, 2).reshape(b, n, -1))

    def mlp(t):
        if cfg.mlp == "swiglu":
            v, g = block.mlp.fc1(t).chunk(2, -1)
            return block.mlp.fc2(F.silu(g) * v)
        return block.mlp.fc2(F.gelu(block.mlp.fc1(t)))

    if cfg.parallel:
        h = norm(block.norm1, x)
        out = attn(h) + mlp(h)
        return x + (out * block.ls.gamma if cfg.layer_scale else out)
    a = attn(norm(block.norm1, x))
    x = x + (a * block.ls1.gamma if cfg.layer_scale else a)
    m = mlp(norm(block.norm2, x))
    return x + (m * block.ls2.gamma if cfg.layer_scale else m)


BLOCKS = {
    "vitok (parallel, rms, swiglu, qk-rms, layerscale)": dict(norm="rms", mlp="swiglu", qk_norm="rms", layer_scale=True,
                                                             parallel=True, mlp_bias=False, proj_bias=False),
    "instella (serial, rms, swiglu, qk-rms, half rotation)": dict(norm="rms", mlp="swiglu", qk_norm="rms", mlp_bias=False,
                                                                 proj_bias=False, rope_rotation="half"),
    "dinov2 (serial, layernorm, gelu, qkv bias, layerscale)": dict(qkv_bias=True, layer_scale=True),
    "qk-layernorm": dict(qk_norm="layer"),
}


@pytest.mark.parametrize("name", sorted(BLOCKS))
@pytest.mark.parametrize("causal", [False, True])
def test_block_equals_its_formula(name, causal):
    torch.manual_seed(0)
    block = PreNormBlock(BlockConfig(dim=32, heads=4, mlp_hidden=40, **BLOCKS[name])).eval()
    with torch.no_grad():
        for p in block.parameters():  # non-trivial norms and layer scales
            p.add_(torch.randn_like(p) * 0.1)
        x = torch.randn(2, 6, 32)
        rope = rope_tables(grid_positions(2, 3), [4, 4])
        torch.testing.assert_close(block(x, rope=rope, causal=causal), _reference_block(block, x, rope, causal),
                                   atol=1e-5, rtol=0)


def test_key_padding_keeps_valid_rows_as_if_alone():
    torch.manual_seed(0)
    block = PreNormBlock(BlockConfig(dim=16, heads=2, mlp_hidden=24, **BLOCKS["vitok (parallel, rms, swiglu, qk-rms, layerscale)"])).eval()
    x = torch.randn(1, 5, 16)
    padded = torch.cat([x, torch.randn(1, 3, 16)], dim=1)
    valid = torch.tensor([[True] * 5 + [False] * 3])
    with torch.no_grad():
        torch.testing.assert_close(block(padded, mask=KeyPaddingMask(valid))[:, :5], block(x), atol=1e-6, rtol=0)


def test_bad_block_configs_and_key_maps():
    with pytest.raises(ConfigError, match="divisible"):
        BlockConfig(dim=30, heads=4, mlp_hidden=8)
    with pytest.raises(ConfigError, match="norm"):
        BlockConfig(dim=32, heads=4, mlp_hidden=8, norm="batch")
    with pytest.raises(ConfigError, match="unknown"):
        block_key_map(feedforward="ffn")
    assert block_key_map(norm1="input_layernorm", mlp_fc2="mlp.down_proj")["mlp.down_proj"] == "mlp.fc2"


# --------------------------------------------------------------------------- NaFlex


@pytest.mark.parametrize("sizes, patch", [([(16, 16)], 8), ([(20, 28), (9, 40)], 8), ([(5, 5), (32, 16), (17, 1)], 4)])
def test_patchify_round_trips_exactly_and_follows_unfold(sizes, patch):
    g = torch.Generator().manual_seed(0)
    images = [torch.rand(3, h, w, generator=g) for h, w in sizes]
    pd = patchify(images, patch)
    grids = [(-(-h // patch), -(-w // patch)) for h, w in sizes]
    assert pd.grids == grids and pd.lengths.tolist() == [r * c for r, c in grids]
    back = unpatchify(pd.patches, pd)
    for im, out in zip(images, back):
        assert torch.equal(im, out)
    first = F.unfold(F.pad(images[0], (0, grids[0][1] * patch - sizes[0][1], 0, grids[0][0] * patch - sizes[0][0]))[None],
                     patch, stride=patch)[0].t()
    assert torch.equal(pd.patches[0, : len(first)], first)
    r, c = grids[0]
    assert pd.rows[0, : r * c].tolist() == [i // c for i in range(r * c)]
    assert pd.cols[0, : r * c].tolist() == [i % c for i in range(r * c)]


def test_patchify_bad_input():
    with pytest.raises(InputError, match="empty"):
        patchify([], 8)
    with pytest.raises(InputError, match="max_tokens"):
        patchify(torch.zeros(1, 3, 32, 32), 8, max_tokens=4)


# --------------------------------------------------------------------------- binary tokens


@pytest.mark.parametrize("bits, group", [(64, 32), (64, 62), (13, 4), (8, 8), (1, 1)])
def test_bits_and_ids_round_trip(bits, group):
    b = torch.randint(0, 2, (3, 5, bits), generator=torch.Generator().manual_seed(bits))
    ids = bits_to_ids(b, group)
    assert ids.shape == (3, 5, -(-bits // group)) and ids.dtype == torch.int64
    assert torch.equal(ids_to_bits(ids, bits, group), b)


def test_bits_pack_most_significant_first():
    assert bits_to_ids(torch.tensor([1, 0, 0, 0, 0, 0, 0, 1.0]), 8).tolist() == [129]
    assert binarize(torch.tensor([-0.1, 0.0, 1e-6])).tolist() == [0.0, 0.0, 1.0]


@pytest.mark.parametrize("call, error, message", [
    (lambda: bits_to_ids(torch.tensor([0, 2]), 2), TokenError, "0 or 1"),
    (lambda: bits_to_ids(torch.zeros(4), 63), InputError, "1..62"),
    (lambda: ids_to_bits(torch.tensor([16]), 4, 4), TokenError, r"\[0, 2\*\*4\)"),
    (lambda: ids_to_bits(torch.tensor([1, 2]), 4, 4), TokenError, "1 integer ids"),
    (lambda: ids_to_bits(torch.tensor([1.0]), 4, 4), TokenError, "integer ids"),
    (lambda: BinaryQuantizer(8, 4).embed_bits(torch.zeros(2, 7)), TokenError, "8 bits"),
])
def test_binary_bad_input(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_binary_quantizer_embeds_its_bits():
    q = BinaryQuantizer(bits=6, dim=4)
    with torch.no_grad():
        q.embed.copy_(torch.randn(6, 4))
    h = torch.randn(2, 3, 4)
    z, bits = q(h)
    assert torch.equal(bits, (q.proj(h) > 0).float())
    torch.testing.assert_close(z, torch.einsum("bln,nd->bld", bits, q.embed))


@pytest.mark.parametrize("name", sorted(BLOCKS))
def test_attention_backends_agree_on_the_block(name):
    from zoo.nn.attention import use_backend

    torch.manual_seed(1)
    block = PreNormBlock(BlockConfig(dim=32, heads=4, mlp_hidden=40, **BLOCKS[name])).eval()
    x = torch.randn(2, 7, 32)
    rope = rope_tables(torch.arange(7.0), [8])
    mask = KeyPaddingMask(torch.tensor([7, 4]))
    with torch.no_grad():
        with use_backend("sdpa"):
            a = block(x, rope=rope, mask=mask)
        with use_backend("math"):
            b = block(x, rope=rope, mask=mask)
    torch.testing.assert_close(a, b, atol=1e-5, rtol=0)
