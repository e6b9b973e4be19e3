"""FlexTok interface, masks, guidance and errors (zoo-only behaviour; parity is in test_parity)."""

from __future__ import annotations

import math

import pytest
import torch
from zoo_plugins.flextok import images_to_tensor
from zoo_plugins.flextok.builder import FlexTokBuilder, FlexTokVAEBuilder
from zoo_plugins.flextok.model import FlexTok, patchify, unpatchify
from zoo_plugins.flextok.testing import sample_images, tiny_variant

from zoo.interfaces import Tokens
from zoo.nn.attention import attention
from zoo.nn.masks import AdditiveBias
from zoo.sampling import APG, apg_combine
from zoo.testing.weights import seeded_state_dict, state_manifest


@pytest.fixture(scope="module")
def model():
    m = FlexTok(tiny_variant("base"))
    m.load_state_dict(seeded_state_dict(state_manifest(m), seed=0))
    return m.eval()


def test_patchify_round_trip_and_order():
    x = torch.arange(2 * 3 * 4 * 6, dtype=torch.float32).view(2, 3, 4, 6)
    p = patchify(x, [2, 2])
    assert p.shape == (2, 2, 3, 12)
    # patch vector order is (p0, p1, c), as einops "b (n0 p0) (n1 p1) d -> b n0 n1 (p0 p1 d)"
    assert p[0, 0, 0, :3].tolist() == x[0, :, 0, 0].tolist()
    assert p[0, 0, 0, 3:6].tolist() == x[0, :, 0, 1].tolist()
    assert torch.equal(unpatchify(p, [2, 2], 3), x)


def _dense_prefix_mask(n_prefix: int, n: int, mode: str) -> torch.Tensor:
    """The reference's encoder mask written out: [n, n] bool (True = attend)."""
    q, k = torch.arange(n)[:, None], torch.arange(n)[None, :]
    return {"full": torch.ones(n, n, dtype=torch.bool), "causal": k <= q,
            "causal_last": (k <= q) | (k < n_prefix)}[mode]


@pytest.mark.parametrize("mode", ["causal_last", "causal", "full"])
@pytest.mark.parametrize("out_from", [0, 2, 5])
def test_encoder_attention_equals_dense_mask(mode, out_from):
    """PrefixLM / CausalMask / no mask, with and without query pruning (``out_from``), equal
    attention under the reference's dense mask, row for row."""
    from zoo_plugins.flextok.config import TransformerConfig
    from zoo_plugins.flextok.layers import Attention
    from zoo_plugins.flextok.model import _encoder_attention

    from zoo.nn.masks import DenseMask

    torch.manual_seed(0)
    att = Attention(TransformerConfig(dim=32, depth=1, head_dim=16)).eval()
    x = torch.randn(2, 8, 32)
    n_prefix = 5
    with torch.no_grad():
        want = att(x, DenseMask(_dense_prefix_mask(n_prefix, 8, mode)))[:, out_from:]
        layout, mask = _encoder_attention(n_prefix, mode)
        got = att(x, mask, layout, out_from)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=0)


def test_collapsed_keys_equal_repeated_keys():
    """The decode trick: n equal keys == one key with +log(n) on its logit."""
    g = torch.Generator().manual_seed(0)
    q = torch.randn(1, 2, 5, 8, generator=g)
    k = torch.randn(1, 2, 4, 8, generator=g)
    v = torch.randn(1, 2, 4, 8, generator=g)
    k_rep = torch.cat([k, k[:, :, -1:].expand(-1, -1, 6, -1)], dim=2)  # last key 7 times
    v_rep = torch.cat([v, v[:, :, -1:].expand(-1, -1, 6, -1)], dim=2)
    bias = torch.zeros(1, 1, 1, 4)
    bias[..., -1] = math.log(7)
    torch.testing.assert_close(attention(q, k, v, mask=AdditiveBias(bias)), attention(q, k_rep, v_rep), atol=1e-6, rtol=0)


def test_apg_reduces_to_projection():
    c = torch.randn(2, 4, 3, 3)
    u = torch.randn(2, 4, 3, 3)
    out, running = apg_combine(c, u, 5.0, None, APG(momentum=-0.5, norm_threshold=0.0))
    # the guided update is orthogonal to cond, per image
    upd = (out - c).flatten(1)
    assert torch.allclose((upd * c.flatten(1)).sum(1), torch.zeros(2), atol=1e-4)
    assert torch.equal(running, c - u)
    _, running2 = apg_combine(c, u, 5.0, running, APG())
    torch.testing.assert_close(running2, (c - u) * 0.5)


def test_encode_decode_interface(model):
    x = sample_images(2, 64, seed=5)
    tokens = model.encode(x)
    assert isinstance(tokens, Tokens) and tokens.ids.shape == (2, 16) and tokens.codebook_size == 64000
    assert tokens.lengths.tolist() == [16, 16]
    assert model.encode(x, keep=[3, 7]).lengths.tolist() == [3, 7]
    out = model.decode(tokens.truncate([3, 7]), steps=1, guidance_scale=2.0, latent_size=8,
                       generator=torch.Generator().manual_seed(0))
    assert out.shape == (2, 3, 64, 64)
    # same seed, same image; the reference-style list API agrees
    again = model.detokenize([t for t in tokens.truncate([3, 7]).to_list()], timesteps=1, guidance_scale=2.0,
                             perform_norm_guidance=True, generator=torch.Generator().manual_seed(0), vae_image_sizes=8)
    assert torch.equal(out, again)
    assert [t.shape for t in model.tokenize(x)] == [torch.Size([1, 16])] * 2


def test_reconstruct_grid(model):
    x = sample_images(2, 64, seed=6)
    seen = []
    grid = model.reconstruct_grid(x, keeps=[1, 4, 16], steps=2, guidance_scale=1.0, progress=lambda d, n: seen.append((d, n)))
    assert grid.shape == (3, 2, 3, 64, 64)
    assert seen[-1] == (6, 6)
    assert not torch.equal(grid[0], grid[2])


@pytest.mark.parametrize(
    "bad,exc,words",
    [
        (torch.zeros(2, 3, 64, 64, dtype=torch.uint8), TypeError, "uint8"),
        (torch.zeros(2, 64, 64), ValueError, "[B, 3, H, W]"),
        (torch.full((1, 3, 64, 64), 200.0), ValueError, "[-1, 1]"),
    ],
)
def test_image_errors(model, bad, exc, words):
    with pytest.raises(exc, match=words.replace("[", r"\[").replace("]", r"\]")):
        model.encode(bad)


def test_token_errors(model):
    with pytest.raises(ValueError, match="codebook"):
        model.decode([torch.tensor([[64000]])], steps=1, latent_size=8)
    with pytest.raises(ValueError, match="1..16 tokens"):
        model.decode(torch.zeros(1, 17, dtype=torch.long), steps=1, latent_size=8)
    with pytest.raises(ValueError, match="steps"):
        model.decode([torch.tensor([[1]])], steps=0, latent_size=8)


def test_images_to_tensor():
    import numpy as np
    from PIL import Image

    x = images_to_tensor([Image.new("RGB", (300, 200), (255, 0, 0)), np.zeros((64, 80, 3), np.uint8)], size=64)
    assert x.shape == (2, 3, 64, 64)
    assert float(x[0, 0].mean()) == pytest.approx(1.0) and float(x[1].max()) == -1.0


def test_builders_registered_by_the_plugin():
    import zoo_plugins.flextok as plugin

    got = []
    plugin.register_builders(got.append)
    assert [type(b) for b in got] == [FlexTokBuilder, FlexTokVAEBuilder]
    assert {b.name for b in got} == {"flextok", "flextok_vae"}
