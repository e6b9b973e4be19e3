"""zoo.nn.magvit2: depth-to-space order, AdaptiveGroupNorm statistics, in-place inference path."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from zoo.nn.magvit2 import AdaptiveGroupNorm, ConvConfig, Decoder, DepthToSpaceUpsample, Encoder, depth_to_space


@pytest.mark.parametrize(("c", "s"), [(4, 2), (8, 2), (18, 3)])
def test_depth_to_space_is_dcr_order(c, s):
    x = torch.randn(2, c, 3, 5)
    out = depth_to_space(x, s)
    cc = c // (s * s)
    for i in range(s):
        for j in range(s):
            torch.testing.assert_close(out[:, :, i::s, j::s], x[:, (i * s + j) * cc:(i * s + j + 1) * cc], rtol=0, atol=0)
    if cc > 1:  # not pixel_shuffle's (CRD) order
        assert not torch.equal(out, F.pixel_shuffle(x, s))


def test_adaptive_group_norm_uses_unbiased_std_and_mean_of_the_style():
    norm = AdaptiveGroupNorm(3, 32)
    x, style = torch.randn(2, 32, 4, 4), torch.randn(2, 3, 5, 5)
    flat = style.flatten(2)
    want = norm.gamma((flat.var(-1, unbiased=True) + 1e-6).sqrt())[..., None, None] * F.group_norm(x, 32, eps=1e-6) \
        + norm.beta(flat.mean(-1))[..., None, None]
    torch.testing.assert_close(norm(x, style), want)
    assert AdaptiveGroupNorm.conditional


@pytest.mark.parametrize("noise_input", [False, True])
def test_inference_path_equals_autograd_path(noise_input):
    torch.manual_seed(0)
    cfg = ConvConfig(ch=32, ch_mult=(1, 2), num_res_blocks=2, z_channels=4)
    enc, dec = Encoder(cfg).eval(), Decoder(cfg, noise_input=noise_input).eval()
    x = torch.randn(1, 3, 8, 8)
    noise = torch.randn(1, 4, 4, 4)
    with torch.enable_grad():
        z1 = enc(x)
        y1 = dec(z1, noise=noise)
    with torch.no_grad():
        z2 = enc(x)
        y2 = dec(z2, noise=noise)
    torch.testing.assert_close(z1.detach(), z2, rtol=0, atol=1e-5)
    torch.testing.assert_close(y1.detach(), y2, rtol=0, atol=1e-5)
    assert tuple(DepthToSpaceUpsample(32)(torch.zeros(1, 32, 3, 3)).shape) == (1, 32, 6, 6)
