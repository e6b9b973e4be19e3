"""zoo.nn.conv_ae / conv_layouts / posterior / quantize.VectorQuantizer: the shared conv autoencoder core.

Family parity (LlamaGen VQ, MAR KL-16, VA-VAE, FlexTok's VAE) lives in tests/plugins/<family>;
here: the config, the key-layout tables both ways, the math of each block against the plain
reference op sequence, the hooks, the posterior's RNG discipline and the l2 VQ.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from zoo.errors import ConfigError, InputError
from zoo.nn.autoencoder_kl import AutoencoderKL, KLConfig
from zoo.nn.conv_ae import AttnBlock, ConvAEConfig, Decoder, Encoder, ResnetBlock, set_fold_upsample
from zoo.nn.conv_layouts import LAYOUTS, convert_state_dict, layout_table
from zoo.nn.posterior import DiagonalGaussian
from zoo.nn.quantize import VectorQuantizer
from zoo.testing.weights import seeded_state_dict, state_manifest

SMALL = ConvAEConfig(ch=16, ch_mult=(1, 2, 2), num_res_blocks=1, z_channels=4, norm_groups=4, resolution=16,
                     attn_resolutions=(4,), decoder_attn_resolutions=(4, 8))


# --------------------------------------------------------------------------- config


@pytest.mark.parametrize("over, message", [
    ({"ch": 0}, "'ch' must be a positive int"),
    ({"ch_mult": ()}, "ch_mult must be a non-empty"),
    ({"ch_mult": (1, 0)}, "ch_mult must be a non-empty"),
    ({"ch": 24, "norm_groups": 16}, "not divisible by norm_groups=16"),
    ({"decoder_res_blocks": 0}, "decoder_res_blocks"),
    ({"attn_resolutions": 16}, "attn_resolutions"),
])
def test_config_rejects_bad_fields(over, message):
    with pytest.raises(ConfigError, match=message):
        ConvAEConfig(**{"ch": 32, "norm_groups": 8, **over})


@pytest.mark.parametrize("res, mult, enc, dec, want_enc, want_dec", [
    (256, (1, 1, 2, 2, 4), (16,), None, (4,), (4,)),        # LDM / VA-VAE
    (256, (1, 1, 2, 2, 4), (16,), (), (4,), ()),            # MAR: no decoder attention
    (256, (1, 2, 2, 4), (32,), None, (3,), (3,)),           # LlamaGen ds8: the lowest level
    (256, (1, 2), (), None, (), ()),
])
def test_attention_levels_follow_ldm_resolutions(res, mult, enc, dec, want_enc, want_dec):
    c = ConvAEConfig(ch=32, ch_mult=mult, resolution=res, attn_resolutions=enc, decoder_attn_resolutions=dec, norm_groups=8)
    assert (c.encoder_attn_levels, c.decoder_attn_levels) == (want_enc, want_dec)
    with torch.device("meta"):
        e, d = Encoder(c), Decoder(c)
    assert [i for i, b in enumerate(e.down_blocks) if b.attentions is not None] == list(want_enc)
    # decoder blocks run lowest resolution first: level L is up_blocks[n-1-L]
    n = len(mult)
    assert sorted(n - 1 - i for i, b in enumerate(d.up_blocks) if b.attentions is not None) == sorted(want_dec)


# --------------------------------------------------------------------------- layouts


def _canonical_state() -> dict[str, torch.Tensor]:
    enc, dec = Encoder(SMALL), Decoder(SMALL)
    sd = {f"encoder.{k}": v for k, v in enc.state_dict().items()}
    sd.update({f"decoder.{k}": v for k, v in dec.state_dict().items()})
    sd["quant_conv.weight"] = torch.zeros(8, 4, 1, 1)
    return seeded_state_dict(state_manifest(sd), seed=3)


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_layouts_round_trip_tensors_and_manifests(layout):
    sd = _canonical_state()
    official = convert_state_dict(sd, "diffusers", layout, num_levels=3)
    assert len(official) == len(sd)
    back = convert_state_dict(official, layout, "diffusers", num_levels=3)
    assert back.keys() == sd.keys() and all(torch.equal(back[k], sd[k]) for k in sd)
    man = state_manifest(sd)
    assert convert_state_dict(convert_state_dict(man, "diffusers", layout, num_levels=3), layout, "diffusers",
                              num_levels=3) == man
    assert convert_state_dict(man, "diffusers", layout, num_levels=3) == state_manifest(official)


@pytest.mark.parametrize("layout, canonical, official", [
    ("ldm", "encoder.down_blocks.1.resnets.0.conv_shortcut.weight", "encoder.down.1.block.0.nin_shortcut.weight"),
    ("ldm", "encoder.down_blocks.2.attentions.0.group_norm.bias", "encoder.down.2.attn.0.norm.bias"),
    ("ldm", "encoder.down_blocks.0.downsamplers.0.conv.weight", "encoder.down.0.downsample.conv.weight"),
    ("ldm", "encoder.mid_block.attentions.0.to_out.0.weight", "encoder.mid.attn_1.proj_out.weight"),
    ("ldm", "decoder.mid_block.resnets.1.norm2.weight", "decoder.mid.block_2.norm2.weight"),
    ("ldm", "decoder.up_blocks.0.resnets.1.conv1.bias", "decoder.up.2.block.1.conv1.bias"),
    ("ldm", "decoder.up_blocks.1.upsamplers.0.conv.weight", "decoder.up.1.upsample.conv.weight"),
    ("ldm", "decoder.up_blocks.0.attentions.1.to_k.weight", "decoder.up.2.attn.1.k.weight"),
    ("ldm", "encoder.conv_norm_out.weight", "encoder.norm_out.weight"),
    ("llamagen", "encoder.down_blocks.1.resnets.0.conv_shortcut.weight", "encoder.conv_blocks.1.res.0.nin_shortcut.weight"),
    ("llamagen", "encoder.mid_block.attentions.0.to_v.bias", "encoder.mid.1.v.bias"),
    ("llamagen", "encoder.mid_block.resnets.1.conv2.weight", "encoder.mid.2.conv2.weight"),
    ("llamagen", "decoder.up_blocks.0.resnets.1.conv1.bias", "decoder.conv_blocks.0.res.1.conv1.bias"),
    ("llamagen", "decoder.up_blocks.1.upsamplers.0.conv.weight", "decoder.conv_blocks.1.upsample.conv.weight"),
    ("llamagen", "decoder.conv_norm_out.bias", "decoder.norm_out.bias"),
])
def test_layout_rules_name_the_official_keys(layout, canonical, official):
    sd = _canonical_state()
    assert canonical in sd
    got = convert_state_dict(sd, "diffusers", layout, num_levels=3)
    assert official in got
    value = got[official]
    if official.split(".")[-2] in ("q", "k", "v", "proj_out") and official.endswith("weight"):
        assert value.dim() == 4 and torch.equal(value[:, :, 0, 0], sd[canonical])
    else:
        assert torch.equal(value, sd[canonical])


def test_layout_keys_under_a_prefix_and_unknown_layouts():
    got = convert_state_dict({"vae.encoder.mid.0.norm1.weight": 1, "encoder.mid.0.x": 2}, "llamagen", "diffusers",
                             num_levels=2, prefix="vae.")
    assert got == {"vae.encoder.mid_block.resnets.0.norm1.weight": 1, "encoder.mid.0.x": 2}
    with pytest.raises(ConfigError, match="unknown conv autoencoder layout 'taming'"):
        convert_state_dict({}, "taming", "diffusers", num_levels=2)
    assert layout_table("ldm")[-1] == ("decoder", "up.{~i}.upsample.", "up_blocks.{i}.upsamplers.0.")


# --------------------------------------------------------------------------- block math vs the plain ops


def _ldm_attention(x, gn, q, k, v, proj):
    """The taming/LDM AttnBlock op sequence (1x1 convs, bmm, softmax over keys)."""
    h = F.group_norm(x, gn.num_groups, gn.weight, gn.bias, gn.eps)
    conv = lambda lin, t: F.conv2d(t, lin.weight[:, :, None, None], lin.bias)  # noqa: E731
    qq, kk, vv = conv(q, h), conv(k, h), conv(v, h)
    b, c, hh, ww = qq.shape
    w_ = torch.bmm(qq.reshape(b, c, -1).permute(0, 2, 1), kk.reshape(b, c, -1)) * c ** -0.5
    w_ = w_.softmax(dim=2)
    out = torch.bmm(vv.reshape(b, c, -1), w_.permute(0, 2, 1)).reshape(b, c, hh, ww)
    return x + conv(proj, out)


@pytest.mark.parametrize("grad", [False, True])
def test_attention_equals_the_ldm_op_sequence(grad):
    torch.manual_seed(0)
    blk = AttnBlock(8, lambda c: nn.GroupNorm(4, c, eps=1e-6))
    for p in blk.parameters():
        nn.init.normal_(p, std=0.3)
    x = torch.randn(2, 8, 5, 3)
    want = _ldm_attention(x, blk.group_norm, blk.to_q, blk.to_k, blk.to_v, blk.to_out[0])
    with torch.set_grad_enabled(grad):
        got = blk(x.clone())
    torch.testing.assert_close(got, want, atol=2e-6, rtol=1e-5)


def test_resnet_block_equals_the_reference_op_sequence():
    torch.manual_seed(0)
    blk = ResnetBlock(4, 8, lambda c: nn.GroupNorm(2, c, eps=1e-6))
    x = torch.randn(1, 4, 6, 6)
    h = blk.conv1(F.silu(blk.norm1(x)))
    want = blk.conv_shortcut(x) + blk.conv2(F.silu(blk.norm2(h)))
    with torch.no_grad():
        torch.testing.assert_close(blk(x.clone()), want, atol=1e-6, rtol=1e-5)


def test_fast_paths_equal_the_literal_ops():
    torch.manual_seed(0)
    enc, dec = Encoder(SMALL).eval(), Decoder(SMALL).eval()
    x = torch.randn(2, 3, 16, 12)
    with torch.no_grad():
        fast = dec(enc(x))
        set_fold_upsample(dec, False)
    with torch.enable_grad():
        slow = dec(enc(x))
    torch.testing.assert_close(fast, slow.detach(), atol=1e-5, rtol=1e-4)
    assert fast.shape == (2, 3, 16, 12)


# --------------------------------------------------------------------------- hooks


class _CondNorm(nn.Module):
    """GroupNorm whose output is shifted by the mean of ``cond`` (records the calls)."""

    conditional = True

    def __init__(self, c: int):
        super().__init__()
        self.gn = nn.GroupNorm(2, c)
        self.calls = 0

    def forward(self, x, cond):
        self.calls += 1
        return self.gn(x) + cond.mean()


class _PixelShuffleUp(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.conv = nn.Conv2d(c, 4 * c, 3, padding=1)

    def forward(self, x):
        return F.pixel_shuffle(self.conv(x), 2)


def test_norm_and_upsample_hooks_reach_every_layer():
    cfg = ConvAEConfig(ch=8, ch_mult=(1, 2), num_res_blocks=1, z_channels=4, norm_groups=2, resolution=8,
                       attn_resolutions=(4,))
    dec = Decoder(cfg, norm=_CondNorm, upsample=_PixelShuffleUp).eval()
    assert "up_blocks.0.upsamplers.0.conv.weight" in dec.state_dict()
    assert dec.state_dict()["up_blocks.0.upsamplers.0.conv.weight"].shape == (64, 16, 3, 3)
    z = torch.randn(1, 4, 4, 4)
    with torch.no_grad():
        a = dec(z, torch.zeros(1))
        b = dec(z, torch.ones(1))
    norms = [m for m in dec.modules() if isinstance(m, _CondNorm)]
    assert norms and all(m.calls == 2 for m in norms)
    assert a.shape == (1, 3, 8, 8) and not torch.allclose(a, b)


# --------------------------------------------------------------------------- posterior and KL autoencoder


def test_posterior_sample_draws_from_the_callers_generator_like_the_reference():
    moments = torch.randn(2, 6, 3, 3)
    post = DiagonalGaussian(moments)
    torch.manual_seed(7)  # the LDM reference: torch.randn(mean.shape) on the global RNG
    want = post.mean + post.std * torch.randn(post.mean.shape)
    torch.manual_seed(0)
    got = post.sample(generator=torch.Generator().manual_seed(7))
    torch.testing.assert_close(got, want)
    per_item = post.sample(generator=[torch.Generator().manual_seed(1), torch.Generator().manual_seed(2)])
    one = DiagonalGaussian(moments[1:]).sample(generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(per_item[1:], one)
    assert torch.equal(post.mode(), moments[:, :3])
    with pytest.raises(InputError, match=r"2C"):
        DiagonalGaussian(torch.zeros(1, 3, 2, 2))
    with pytest.raises(InputError, match="one per image"):
        DiagonalGaussian(torch.zeros(3, 2, 1, 1)).sample(generator=[torch.Generator(), torch.Generator()])


def test_kl_autoencoder_from_an_ldm_config_encodes_mode_and_sample():
    conv = ConvAEConfig(ch=16, ch_mult=(1, 2), num_res_blocks=1, z_channels=4, double_z=True, norm_groups=4,
                        resolution=8, attn_resolutions=(4,), decoder_attn_resolutions=())
    vae = AutoencoderKL(KLConfig(conv=conv, embed_dim=4)).eval()
    x = torch.rand(2, 3, 8, 8) * 2 - 1
    with torch.no_grad():
        mean, logvar = vae.encode_moments(x)
        z = vae.encode(x, sample=True, generator=torch.Generator().manual_seed(3))
        want = mean + torch.exp(0.5 * logvar) * torch.randn(mean.shape, generator=torch.Generator().manual_seed(3))
        torch.testing.assert_close(z, want)
        assert torch.equal(vae.encode(x), mean) and vae.decode(mean).shape == x.shape
    with pytest.raises(ConfigError, match="double_z=True"):
        KLConfig(conv=ConvAEConfig(ch=16, norm_groups=4), embed_dim=4)


# --------------------------------------------------------------------------- l2 VQ


@pytest.mark.parametrize("l2", [False, True])
def test_vector_quantizer_equals_brute_force_search(l2):
    torch.manual_seed(0)
    vq = VectorQuantizer(64, 8, l2_norm=l2)
    z = torch.randn(2, 8, 3, 5)
    codes, ids = vq(z)
    flat = z.permute(0, 2, 3, 1).reshape(-1, 8)
    book = vq.embedding.weight
    if l2:
        flat, book = F.normalize(flat, dim=-1), F.normalize(book, dim=-1)
    want = torch.cdist(flat.double(), book.double()).argmin(1).view(2, 3, 5)
    assert torch.equal(ids, want)
    torch.testing.assert_close(codes.permute(0, 2, 3, 1), book[want])
    assert vq.get_codebook_entry(ids.flatten(), (2, 3, 5, 8), channel_first=False).shape == (2, 3, 5, 8)
    with pytest.raises(ValueError, match=r"\[0, 64\)"):
        vq.get_codebook_entry(torch.tensor([64]))
    with pytest.raises(InputError, match=r"\[B, 8, H, W\]"):
        vq(torch.zeros(1, 4, 2, 2))
