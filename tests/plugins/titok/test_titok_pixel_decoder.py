"""The MaskGIT-VQGAN pixel decoder's fast paths: same arithmetic as the plain layers, and the
channels-last layout kept through upsampling (batch 1 included)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn


@pytest.mark.parametrize("batch, channels_last", [(1, True), (1, False), (3, True), (3, False)])
def test_upsample_conv_equals_interpolate_then_conv_and_is_channels_last(batch, channels_last):
    from zoo_plugins.titok.pixel_decoder import upsample_conv

    torch.manual_seed(0)
    conv = nn.Conv2d(8, 6, 3, padding=1)
    x = torch.randn(batch, 8, 5, 7)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        want = conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))
        got = upsample_conv(x, conv)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    assert got.is_contiguous(memory_format=torch.channels_last)


def test_every_norm_in_the_decoder_sees_channels_last():
    """A layout fallback to NCHW (e.g. after upsampling at batch 1) would make every later
    convolution and GroupNorm copy its input."""
    from zoo_plugins.titok.pixel_decoder import PixelDecoder

    torch.manual_seed(0)
    dec = PixelDecoder(hidden_channels=32, channel_mult=(1, 2, 2), num_res_blocks=1, z_channels=8).eval()
    layouts = []
    hooks = [m.register_forward_pre_hook(lambda _m, inp: layouts.append(inp[0].is_contiguous(memory_format=torch.channels_last)))
             for m in dec.modules() if isinstance(m, nn.GroupNorm)]
    with torch.no_grad():
        out = dec(torch.randn(1, 8, 4, 4))
    for h in hooks:
        h.remove()
    assert out.shape == (1, 3, 16, 16) and out.is_contiguous()
    assert layouts and all(layouts), layouts
