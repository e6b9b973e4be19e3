"""FlexTok's VAE (zoo_plugins.flextok.vae) against diffusers' AutoencoderKL.

Fixtures (tests/fixtures/flextok/vae_*) were recorded from diffusers by ``scripts/parity/record_flextok_vae.py`` with
weights from ``zoo.testing.seeded_state_dict(manifest, seed=0)``; here the same weights are
regenerated and zoo must reproduce the recorded outputs.

Tolerances (float32, CPU): latents (posterior mean, logvar, sample) ``atol=3e-5``; images
``atol=1e-4`` (observed: <= 8.4e-6 and <= 1.3e-5).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from zoo_plugins.flextok.vae import (
    AutoencoderKL,
    convert_diffusers_state_dict,
    flextok_vae_config,
    load_state_dict_strict,
    load_vae,
    parse_vae_config,
)
from zoo_plugins.flextok.vae_ops import (
    conv1x1,
    fold_upsample_conv_weight,
    group_norm_silu,
    upsample_conv,
    winograd_conv3x3,
    winograd_weight,
)

from zoo.errors import CheckpointError, ConfigError
from zoo.testing.weights import assert_manifest_equal, seeded_state_dict, state_manifest

FIX = Path(__file__).resolve().parents[2] / "fixtures" / "flextok"
CONFIGS = json.loads((FIX / "vae_configs.json").read_text())
LATENT_ATOL = 3e-5
IMAGE_ATOL = 1e-4
NOISE_SEED = 1234  # as in scripts/parity/record_flextok_vae.py



def _seeded(cfg: dict) -> AutoencoderKL:
    vae = AutoencoderKL.from_config(cfg).eval()
    vae.load_state_dict(seeded_state_dict(state_manifest(vae), seed=0), strict=True)
    return vae


@pytest.fixture(scope="module")
def small() -> AutoencoderKL:
    return _seeded(CONFIGS["small"])


def _tiny(**over) -> dict:
    cfg = {"block_out_channels": [8, 16], "norm_num_groups": 4, "latent_channels": 4, "layers_per_block": 1,
           "down_block_types": ["DownEncoderBlock2D"] * 2, "up_block_types": ["UpDecoderBlock2D"] * 2}
    cfg.update(over)
    return cfg


# --------------------------------------------------------------------------- config


def test_config_ignores_diffusers_bookkeeping_keys():
    cfg = parse_vae_config({**flextok_vae_config(16), "_name_or_path": ".", "_use_default_values": ["x"]})
    assert cfg.latent_channels == 16 and cfg.block_out_channels == (128, 256, 512, 512)
    assert cfg.downsample_factor == 8


@pytest.mark.parametrize(
    "override, message",
    [
        ({"latent_chanels": 4}, "latent_chanels"),
        ({"_class_name": "VQModel"}, "VQModel"),
        ({"down_block_types": ["AttnDownEncoderBlock2D"] * 2}, "AttnDownEncoderBlock2D"),
        ({"up_block_types": ["UpDecoderBlock2D"]}, "up_block_types has 1"),
        ({"act_fn": "gelu"}, "gelu"),
        ({"norm_num_groups": 3}, "norm_num_groups"),
        ({"latent_channels": 0}, "latent_channels"),
        ({"block_out_channels": 8}, "block_out_channels"),
    ],
)
def test_config_rejects_what_it_does_not_understand(override, message):
    with pytest.raises(ConfigError, match=message):
        AutoencoderKL.from_config(_tiny(**override))


def test_config_round_trips_through_to_dict():
    cfg = parse_vae_config(CONFIGS["small"])
    assert parse_vae_config(cfg.to_dict()) == cfg
    assert AutoencoderKL.from_config(CONFIGS["small"]).scaling_factor == 0.75


# --------------------------------------------------------------------------- manifests


@pytest.mark.parametrize("name", ["c4", "c8", "c16"])
def test_manifest_equals_diffusers_at_published_configs(name):
    """Every key/shape of diffusers' AutoencoderKL at flextok_vae_c{4,8,16}: strict loads work."""
    expected = {k: (tuple(s), d) for k, (s, d) in json.loads((FIX / "vae_manifests.json").read_text())[name].items()}
    assert CONFIGS[name] == flextok_vae_config(int(name[1:]))
    with torch.device("meta"):
        vae = AutoencoderKL.from_config(CONFIGS[name])
    assert_manifest_equal(state_manifest(vae), expected, what=f"flextok_vae_{name}")


# --------------------------------------------------------------------------- parity


@pytest.mark.parametrize("mode", ["default", "literal-upsample", "winograd"])
@pytest.mark.parametrize("case", ["small", "variant"])
def test_parity_small_configs(small, case, mode):
    """``small``: the real structure at small widths, batch 2, non-square input. ``variant``:
    no mid attention, no quant convs, 1 resnet/level, 4 in / 2 out channels, odd-sized input.
    Modes: the default fast path, the literal interpolate+conv upsampling, and every resnet
    3x3 conv through Winograd (odd-sized maps fall back to direct convs)."""
    fx = load_file(str(FIX / f"vae_{case}.safetensors"))
    vae = small if case == "small" else _seeded(CONFIGS[case])
    vae.set_fold_upsample(mode != "literal-upsample")
    vae.set_winograd(mode == "winograd", min_channels=1)
    try:
        with torch.inference_mode():
            mean, logvar = vae.encode_moments(fx["x"])
            torch.testing.assert_close(mean, fx["mean"], atol=LATENT_ATOL, rtol=0)
            torch.testing.assert_close(logvar, fx["logvar"], atol=LATENT_ATOL, rtol=0)
            torch.testing.assert_close(vae.encode(fx["x"]), fx["mean"], atol=LATENT_ATOL, rtol=0)
            got = vae.encode(fx["x"], sample=True, generator=torch.Generator().manual_seed(NOISE_SEED))
            torch.testing.assert_close(got, fx["sample"], atol=LATENT_ATOL, rtol=0)
            # decode the *reference* latents, so an encoder difference cannot spread
            torch.testing.assert_close(vae.decode(fx["mean"]), fx["decode_mean"], atol=IMAGE_ATOL, rtol=0)
            if "decode_z" in fx:
                torch.testing.assert_close(vae.decode(fx["z"]), fx["decode_z"], atol=IMAGE_ATOL, rtol=0)
    finally:
        vae.set_fold_upsample(True).set_winograd(False)


def test_parity_real_c16_width_64px():
    fx = load_file(str(FIX / "vae_c16_64px.safetensors"))
    vae = _seeded(CONFIGS["c16_64px"])
    with torch.inference_mode():
        mean, logvar = vae.encode_moments(fx["x"])
        torch.testing.assert_close(mean, fx["mean"], atol=LATENT_ATOL, rtol=0)
        torch.testing.assert_close(logvar, fx["logvar"], atol=LATENT_ATOL, rtol=0)
        got = vae.encode(fx["x"], sample=True, generator=torch.Generator().manual_seed(NOISE_SEED))
        torch.testing.assert_close(got, fx["sample"], atol=LATENT_ATOL, rtol=0)
        torch.testing.assert_close(vae.decode(fx["mean"]), fx["decode_mean"], atol=IMAGE_ATOL, rtol=0)


def test_autograd_path_matches_inference_path(small):
    """With autograd on, the literal reference ops run (no in-place, no folding): same numbers."""
    x = load_file(str(FIX / "vae_small.safetensors"))["x"][:1].clone().requires_grad_(True)
    with torch.inference_mode():
        want = small(x.detach())
    got = small(x)
    got.square().mean().backward()
    torch.testing.assert_close(got.detach(), want, atol=IMAGE_ATOL, rtol=0)
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_layout_and_attention_backend_do_not_change_outputs(small):
    from zoo.nn.attention import use_backend

    x = load_file(str(FIX / "vae_small.safetensors"))["x"]
    with torch.inference_mode():
        want = small.encode(x)
        small.channels_last = False
        try:
            torch.testing.assert_close(small.encode(x), want, atol=1e-5, rtol=0)
        finally:
            small.channels_last = True
        with use_backend("math"):
            torch.testing.assert_close(small.encode(x), want, atol=1e-5, rtol=0)


def test_sampling_follows_diffusers_rng_semantics(small):
    x = load_file(str(FIX / "vae_small.safetensors"))["x"]
    with torch.inference_mode():
        mean, logvar = small.encode_moments(x)
        # generator=None draws from the global RNG, like ml-flextok's latent_dist.sample()
        torch.manual_seed(5)
        got = small.encode(x, sample=True)
        torch.manual_seed(5)
        want = mean + torch.exp(0.5 * logvar) * torch.randn(mean.shape)
        torch.testing.assert_close(got, want, atol=1e-6, rtol=0)
        # a list of generators draws one [1, ...] noise tensor per image
        gens = [torch.Generator().manual_seed(s) for s in (1, 2)]
        got = small.encode(x, sample=True, generator=gens)
        noise = torch.cat([torch.randn((1, *mean.shape[1:]), generator=torch.Generator().manual_seed(s)) for s in (1, 2)])
        torch.testing.assert_close(got, mean + torch.exp(0.5 * logvar) * noise, atol=1e-6, rtol=0)
        # a list of one generator acts as that generator (diffusers' randn_tensor)
        got = small.encode(x, sample=True, generator=[torch.Generator().manual_seed(3)])
        noise = torch.randn(mean.shape, generator=torch.Generator().manual_seed(3))
        torch.testing.assert_close(got, mean + torch.exp(0.5 * logvar) * noise, atol=1e-6, rtol=0)
        with pytest.raises(ValueError, match="2 generators for a batch of 3"):
            small.encode(torch.cat([x, x[:1]]), sample=True, generator=gens)


def test_model_survives_zoo_load_replacing_config():
    """zoo.load sets ``model.config`` to the merged (dict) config; the module must not depend on it."""
    vae = AutoencoderKL.from_config(_tiny()).eval()
    vae.config = dict(_tiny())
    with torch.inference_mode():
        assert vae.decode(vae.encode(torch.zeros(1, 3, 8, 8))).shape == (1, 3, 8, 8)
    assert vae.latent_channels == 4 and vae.downsample_factor == 2


def test_scaled_latents_match_flextok_wrapper(small):
    x = load_file(str(FIX / "vae_small.safetensors"))["x"]
    with torch.inference_mode():
        z = small.encode(x)
        zs = small.encode(x, scaled=True)
        torch.testing.assert_close(zs, z * 0.75)
        torch.testing.assert_close(small.decode(zs, scaled=True), small.decode(zs / 0.75), atol=1e-6, rtol=0)


# --------------------------------------------------------------------------- fast ops


@pytest.mark.parametrize("shape", [(1, 4, 5, 6), (2, 8, 1, 1), (3, 16, 7, 4)])
@pytest.mark.parametrize("channels_last", [False, True])
def test_folded_upsample_conv_equals_interpolate_then_conv(shape, channels_last):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(shape, generator=g)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    w = torch.randn(5, shape[1], 3, 3, generator=g)
    b = torch.randn(5, generator=g)
    want = F.conv2d(F.interpolate(x, scale_factor=2.0, mode="nearest"), w, b, padding=1)
    torch.testing.assert_close(upsample_conv(x, fold_upsample_conv_weight(w), b), want, atol=2e-5, rtol=1e-5)


@pytest.mark.parametrize("shape", [(1, 4, 6, 8), (2, 8, 10, 4), (1, 16, 2, 2)])
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("band_bytes", [8e6, 1.0], ids=["one-band", "band-per-tile-row"])
def test_winograd_conv_equals_direct_conv(shape, bias, band_bytes):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(shape, generator=g).contiguous(memory_format=torch.channels_last)
    w = torch.randn(6, shape[1], 3, 3, generator=g) * shape[1] ** -0.5
    b = torch.randn(6, generator=g) if bias else None
    got = winograd_conv3x3(x, winograd_weight(w), b, band_bytes=band_bytes)
    torch.testing.assert_close(got, F.conv2d(x, w, b, padding=1), atol=1e-5, rtol=1e-5)
    assert got.shape == (shape[0], 6, *shape[2:])


def test_winograd_conv_partial_last_band():
    """5 tile rows in bands of 2: the last band is a partial one."""
    x = torch.randn(1, 4, 10, 6).contiguous(memory_format=torch.channels_last)
    w, b = torch.randn(3, 4, 3, 3), torch.randn(3)
    band = 2 * 16 * 3 * 4 * 4  # two tile rows of [16, tw=3, C=4] float32
    got = winograd_conv3x3(x, winograd_weight(w), b, band_bytes=band)
    torch.testing.assert_close(got, F.conv2d(x, w, b, padding=1), atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="even"):
        winograd_conv3x3(torch.randn(1, 4, 5, 6), winograd_weight(w), b)


@pytest.mark.parametrize("fast", ["fold", "winograd"])
def test_cached_weights_follow_weight_updates(fast):
    vae = AutoencoderKL.from_config(_tiny()).eval().set_winograd(fast == "winograd", min_channels=1)
    z = torch.randn(1, 4, 4, 4)
    with torch.inference_mode():
        vae.decode(z)
    with torch.no_grad():
        for p in vae.parameters():
            p.mul_(1.5)  # in place: same storage, new version
    with torch.inference_mode():
        got = vae.decode(z)
        want = vae.set_fold_upsample(False).set_winograd(False).decode(z)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=0)


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("bias", [False, True])
def test_conv1x1_as_gemm_equals_conv(channels_last, bias):
    conv = torch.nn.Conv2d(6, 10, 1, bias=bias)
    x = torch.randn(2, 6, 4, 7)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        got = conv1x1(x, conv)
        torch.testing.assert_close(got, conv(x), atol=1e-6, rtol=1e-6)
    assert got.shape == (2, 10, 4, 7)


def test_group_norm_silu():
    gn = torch.nn.GroupNorm(2, 6, eps=1e-6)
    torch.nn.init.normal_(gn.weight)
    x = torch.randn(2, 6, 3, 5)
    with torch.no_grad():
        torch.testing.assert_close(group_norm_silu(x, gn), F.silu(gn(x)))


# --------------------------------------------------------------------------- loading


def test_load_vae_from_diffusers_layout_folder(tmp_path, small):
    (tmp_path / "config.json").write_text(json.dumps(CONFIGS["small"]))
    save_file({k: v.contiguous() for k, v in small.state_dict().items()},
              str(tmp_path / "diffusion_pytorch_model.safetensors"))
    vae = load_vae(tmp_path)
    x = torch.rand(1, 3, 16, 24) * 2 - 1
    with torch.inference_mode():
        torch.testing.assert_close(vae.encode(x), small.encode(x), atol=0, rtol=0)
    with pytest.raises(FileNotFoundError, match="diffusion_pytorch_model.safetensors"):
        load_vae(tmp_path / "config.json", weights=tmp_path / "missing.safetensors")


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda sd: sd.pop("decoder.conv_out.bias"), "missing keys.*decoder.conv_out.bias"),
        (lambda sd: sd.__setitem__("encoder.extra.weight", torch.zeros(1)), "unexpected keys.*encoder.extra.weight"),
        (lambda sd: sd.__setitem__("quant_conv.bias", torch.zeros(3)), "shape mismatches.*quant_conv.bias"),
    ],
)
def test_strict_load_names_the_bad_keys(edit, message):
    vae = AutoencoderKL.from_config(_tiny())
    sd = dict(vae.state_dict())
    edit(sd)
    with pytest.raises(CheckpointError, match=message):
        load_state_dict_strict(vae, sd)


def test_legacy_attention_names_are_converted():
    vae = AutoencoderKL.from_config(_tiny())
    sd = vae.state_dict()
    legacy = {}
    for k, v in sd.items():
        for new, old in (("to_q", "query"), ("to_k", "key"), ("to_v", "value"), ("to_out.0", "proj_attn")):
            if f".{new}." in k:
                k = k.replace(f".{new}.", f".{old}.")
                v = v[:, :, None, None] if v.dim() == 2 else v
        legacy[k] = v
    assert any(".proj_attn." in k for k in legacy)
    load_state_dict_strict(vae, convert_diffusers_state_dict(legacy))


@pytest.mark.parametrize(
    "call, exc, message",
    [
        (lambda v: v.encode(torch.zeros(1, 4, 16, 16)), ValueError, r"\[B, 3, H, W\]"),
        (lambda v: v.encode(torch.zeros(1, 3, 16, 16, dtype=torch.uint8)), TypeError, "float"),
        (lambda v: v.decode(torch.zeros(1, 3, 4, 4)), ValueError, r"\[B, 4, H, W\]"),
    ],
)
def test_input_errors_name_the_problem(call, exc, message):
    vae = AutoencoderKL.from_config(_tiny()).eval()
    with pytest.raises(exc, match=message):
        call(vae)
