"""Every published WeTok config: the card matches the reference yaml, and the release state
dict (reference key/shape manifest, EMA shadows included) loads strictly into zoo's model."""

from __future__ import annotations

import pytest
import torch

import zoo
from zoo.registry import get_registry
from zoo.testing.weights import assert_manifest_equal, state_manifest
from zoo_plugins.wetok.builder import WeTokBuilder

from .conftest import CARD_OF, published_manifests, reference_configs


def test_every_reference_config_has_a_card():
    assert set(reference_configs()) == set(CARD_OF)
    assert {c.name for c in get_registry().cards.values() if c.plugin == "wetok"} == set(CARD_OF.values())


@pytest.mark.parametrize("ref_name", sorted(CARD_OF))
def test_card_config_is_the_reference_yaml(ref_name):
    ref = reference_configs()[ref_name]
    card = get_registry().find_card(CARD_OF[ref_name])[0]
    for key in ("ch", "ch_mult", "num_res_blocks", "z_channels", "n_embed", "num_codebooks", "gan_decoder"):
        assert card.config[key] == ref[key], key
    assert card.config["yaml"] == ref["yaml"]
    assert ref["embed_dim"] == ref["z_channels"] and not ref["use_GFQ"]  # LFQ class, groups = num_codebooks
    domain, variant = ref_name.split("_", 1)
    assert card.files == [f"{domain}/{variant}/WeTok.ckpt"]


@pytest.mark.parametrize("ref_name", sorted(CARD_OF))
def test_release_layout_loads_strictly(ref_name):
    manifest = published_manifests()[ref_name]
    assert any(k.startswith("model_ema.") for k in manifest)
    release = {k: torch.empty(s, dtype=getattr(torch, d), device="meta") for k, (s, d) in manifest.items()}
    release["loss.discriminator.main.0.weight"] = torch.empty(1, device="meta")  # dropped on purpose
    model = zoo.load(CARD_OF[ref_name], pretrained=False, device="meta")
    converted = WeTokBuilder().convert(release, model.config)
    assert_manifest_equal(state_manifest(converted), state_manifest(model), what=CARD_OF[ref_name])
