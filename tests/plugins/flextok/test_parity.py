"""Parity with apple/ml-flextok on random weights (fixtures: scripts/parity/record_flextok.py).

Weights are regenerated per key (zoo.testing.weights.seeded_state_dict), written with the
recorded metadata header as an official-format ``model.safetensors``, read back through the
builder (metadata -> typed config -> strict load), then compared stage by stage with the
reference's recorded outputs: VAE latents, pre-quantisation latents, token ids, decoded latents
of the *reference* ids (ragged prefixes 1/5/16; no CFG, CFG, CFG + norm guidance) and images.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from zoo_plugins.flextok.builder import FlexTokBuilder
from zoo_plugins.flextok.model import FlexTok
from zoo_plugins.flextok.testing import (
    PUBLISHED,
    TINY_VAE,
    published_config,
    sample_images,
)

from zoo.builders import CheckpointFiles
from zoo.config import merge_config
from zoo.testing.weights import (
    assert_manifest_equal,
    load_manifest,
    seeded_state_dict,
    state_manifest,
)
from zoo.weights import load_state_dict_strict, no_init

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "flextok"
VARIANTS = ["base", "single_null"]
ATOL_LATENTS = 1e-5  # VAE latents, pre-quantisation latents (observed <= 4e-6)
ATOL_DECODE = 1e-4  # decoded latents after 3 Euler steps, and images (observed <= 4e-6)


@pytest.fixture(scope="module", params=VARIANTS)
def case(request, tmp_path_factory):
    variant = request.param
    info = json.loads((FIXTURES / f"tiny_{variant}.json").read_text())
    fx = load_file(str(FIXTURES / f"tiny_{variant}.safetensors"))
    builder = FlexTokBuilder()
    header = info["metadata"]
    # Build once to learn the state-dict layout, then write an official-format file.
    path = tmp_path_factory.mktemp(variant) / "model.safetensors"
    save_file({"placeholder": torch.zeros(1)}, str(path), metadata=header)
    ckpt = builder.read_checkpoint(CheckpointFiles({"model.safetensors": path}))
    card_layer = {"vae": dict(TINY_VAE)}  # the VAE architecture comes from the VAE card's config.json
    config = merge_config(builder.config_class, [("card", card_layer), ("checkpoint", ckpt.config)])
    with no_init():
        skeleton = builder.build(config)
    state = seeded_state_dict(state_manifest(skeleton), seed=info["seed"])
    save_file(state, str(path), metadata=header)
    ckpt = builder.read_checkpoint(CheckpointFiles({"model.safetensors": path}))
    with no_init():
        model = builder.build(config)
    load_state_dict_strict(model, builder.convert(ckpt.state_dict, config))
    torch.manual_seed(0)
    return variant, info, fx, model.eval()


def test_inputs_are_the_recorded_ones(case):
    _, info, _, _ = case
    assert float(sample_images(3, 64, seed=1).double().sum()) == pytest.approx(info["images_sum"], abs=1e-9)


def test_encode_stages(case):
    _, info, fx, model = case
    x = sample_images(3, 64, seed=1)
    lat = model.encode_latents(x)
    torch.testing.assert_close(lat, fx["vae_latents"], atol=ATOL_LATENTS, rtol=0)
    z, ids = model.tokenize_latents(fx["vae_latents"])
    torch.testing.assert_close(z, fx["prequant"], atol=ATOL_LATENTS, rtol=0)
    assert info["fsq_min_margin_to_rounding_boundary"] > 1e-5  # no near-ties: ids must be equal
    assert torch.equal(ids, fx["ids"])
    assert info["unique_ids"] > 16  # ids depend on the input
    tokens = model.encode(x)
    assert torch.equal(tokens.ids, fx["ids"]) and tokens.codebook_size == 64000


@pytest.mark.parametrize("name", ["nocfg", "cfg", "apg"])
def test_decode_reference_ids(case, name):
    _, info, fx, model = case
    c = info["cases"][name]
    tokens = [fx["ids"][i : i + 1, :k] for i, k in enumerate(info["keeps"])]  # ragged, reference format
    g = torch.Generator().manual_seed(info["seed"])
    out = model.decode_latents(tokens, steps=info["steps"], guidance_scale=c["guidance_scale"],
                               norm_guidance=c["norm_guidance"], generator=g, latent_size=info["latent_size"])
    torch.testing.assert_close(out, fx[f"latents_{name}"], atol=ATOL_DECODE, rtol=0)
    if f"images_{name}" in fx:
        torch.testing.assert_close(model.vae.decode(out), fx[f"images_{name}"], atol=ATOL_DECODE, rtol=0)


def test_decode_formats_agree(case):
    """Tokens (truncated per image), a list of [1, k] tensors, and the reference alias agree."""
    _, info, fx, model = case
    keeps = info["keeps"]
    from zoo.interfaces import Tokens

    tokens = Tokens(ids=fx["ids"], codebook_size=64000).truncate(keeps)
    kw = {"steps": 2, "guidance_scale": 3.0, "norm_guidance": True, "latent_size": 8}
    a = model.decode_latents(tokens, generator=torch.Generator().manual_seed(3), **kw)
    b = model.decode_latents([fx["ids"][i : i + 1, :k] for i, k in enumerate(keeps)], generator=torch.Generator().manual_seed(3), **kw)
    assert torch.equal(a, b)
    # batching does not change an image: image 1 alone, with the noise it gets in the batch
    g = torch.Generator().manual_seed(3)
    noise = torch.cat([torch.randn((1, 16, 8, 8), generator=g) for _ in range(3)])
    single = model.decode_latents([fx["ids"][1:2, : keeps[1]]], noise=noise[1:2], **kw)
    torch.testing.assert_close(single, a[1:2], atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_manifest_equals_reference_at_published_size(name):
    """Key/shape equality with the reference model at each published size => strict loads."""
    with torch.device("meta"):
        model = FlexTok(published_config(name))
    assert_manifest_equal(state_manifest(model), load_manifest(FIXTURES / f"manifest_{name}.json"), what=f"flextok {name}")


def test_zoo_load_reads_an_official_format_file(case, tmp_path):
    """``zoo.load(name, weights=PATH)``: metadata -> config -> strict load, through the registry."""
    import types

    import zoo_plugins.flextok as plugin

    import zoo
    from zoo.hookspecs import hookimpl
    from zoo.testing.plugins import isolated_registry

    variant, info, fx, model = case

    @hookimpl
    def register_cards(register):
        register({"name": "flextoktest.tiny", "kind": "tokenizer", "plugin": "flextok", "modality": "image",
                  "license": {"code": "test"}, "files": ["model.safetensors"], "config": {"vae": dict(TINY_VAE)}})

    path = tmp_path / "model.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path), metadata=info["metadata"])
    with isolated_registry(plugin, types.SimpleNamespace(register_cards=register_cards)):
        loaded = zoo.load("flextoktest.tiny", weights=path)
    assert loaded.config.decoder.nullcond_single_token == (variant == "single_null")
    assert torch.equal(loaded.encode(sample_images(3, 64, seed=1)).ids, fx["ids"])
