"""ToMe for diffusion (tome_sd): a diffusers attention processor that merges image tokens before
self-attention and unmerges after it, on UNet, DiT (PixArt-Σ) and MMDiT (SD3) denoisers."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("diffusers")
pytest.importorskip("sentencepiece")

import zoo  # noqa: E402
from zoo.errors import InputError  # noqa: E402
from zoo_plugins.diffusion.testing import tiny_pixart, tiny_sd3, tiny_unet  # noqa: E402
from zoo_plugins.reducers.diffusion import grid_destinations, partition_plan  # noqa: E402


@pytest.fixture(scope="module")
def tome_sd():
    return zoo.load("tome_sd")


def _unet_call(unet, seed=0, size=8):
    g = torch.Generator().manual_seed(seed)
    x, ctx = torch.randn(2, 4, size, size, generator=g), torch.randn(2, 5, 16, generator=g)
    with torch.no_grad():
        return unet(x, torch.tensor([500, 500]), encoder_hidden_states=ctx).sample


@pytest.fixture(scope="module")
def denoisers():
    pix, sd3 = tiny_pixart(), tiny_sd3()
    return {
        "unet": (tiny_unet(), lambda m: _unet_call(m)),
        "pixart": (pix, lambda m: m.generate("a red fox", steps=2, seed=0, return_latents=True)),
        "sd3": (sd3, lambda m: m.generate("a red fox", steps=2, seed=0, return_latents=True)),
    }


@pytest.mark.parametrize("name", ["unet", "pixart", "sd3"])
def test_exact_at_ratio_zero_and_after_remove(tome_sd, denoisers, name):
    model, run = denoisers[name]
    base = run(model)
    with tome_sd.apply(model, ratio=0.0) as h:
        assert torch.equal(run(model), base) and h.merged_calls == 0
    handle = tome_sd.apply(model, ratio=0.5)
    merged = run(model)
    assert handle.merged_calls > 0 and not torch.equal(merged, base)
    cos = torch.nn.functional.cosine_similarity(merged.flatten(), base.flatten(), dim=0)
    assert cos > 0.5  # an approximation, not noise
    handle.remove()
    assert torch.equal(run(model), base)


def test_unet_merges_only_at_the_top_resolution(tome_sd):
    unet = tiny_unet()
    with tome_sd.apply(unet, ratio=0.5) as h:
        _unet_call(unet)
        top = h.merged_calls
    with tome_sd.apply(unet, ratio=0.5, max_downsample=2) as h:
        _unet_call(unet)
        both = h.merged_calls
    assert top == 3 and both == 4  # attn1 of the top-resolution down (1) and up (2) blocks; + the mid block at /2
    with tome_sd.apply(unet, ratio=0.5) as h:
        _unet_call(unet, size=16)  # another latent size: the grid follows the input
        assert h.merged_calls == 3


def test_partition_plan_merges_means_and_unmerges_by_slots():
    torch.manual_seed(0)
    x = torch.randn(2, 16, 6)
    dst = grid_destinations(4, 4)
    plan = partition_plan(x, 8, dst)
    merged, size = plan.merge(x, None)
    slots = plan.slots()
    assert merged.shape == (2, 8, 6) and torch.equal(size.sum(1).flatten(), torch.tensor([16.0, 16.0]))
    for b in range(2):  # every output row is the mean of the tokens whose slot it is
        for j in range(8):
            members = (slots[b] == j).nonzero()[:, 0]
            assert torch.allclose(merged[b, j], x[b, members].mean(0), atol=1e-6) and len(members) == int(size[b, j])
    # destinations stay in their own slot: one destination per output group among the last rows
    assert set(slots[0, dst].tolist()) == set(range(8 - len(dst), 8))


def test_random_destinations_come_only_from_the_generator():
    a = grid_destinations(8, 8, generator=torch.Generator().manual_seed(3))
    b = grid_destinations(8, 8, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and not torch.equal(a, grid_destinations(8, 8)) and len(a) == 16


@pytest.mark.parametrize("kwargs,words", [(dict(ratio=1.0), "ratio"), (dict(ratio=-0.1), "ratio"), (dict(ratio=0.5, sx=0), "sx"),
                                          (dict(ratio=0.5, generator=3), "generator")])
def test_bad_options(tome_sd, kwargs, words):
    with pytest.raises(InputError, match=words):
        tome_sd.apply(tiny_unet(), **kwargs)


def test_refuses_a_second_patch_and_non_denoisers(tome_sd):
    unet = tiny_unet()
    with tome_sd.apply(unet, ratio=0.3):
        with pytest.raises(InputError, match="already"):
            tome_sd.apply(unet, ratio=0.3)
    with pytest.raises(InputError, match="no diffusers self-attention"):
        tome_sd.apply(torch.nn.Linear(2, 2))
