"""Every published GigaTok config: the card matches the reference yaml, and the release layout
(reference key/shape manifest) loads strictly into zoo's model after the documented drops."""

from __future__ import annotations

import pytest
import torch

import zoo
from zoo.registry import get_registry
from zoo.testing.weights import assert_manifest_equal, state_manifest
from zoo_plugins.gigatok.builder import GigaTokBuilder
from zoo_plugins.gigatok.checkpoint import DROPPED_PREFIXES

from .conftest import meta, published_manifests, reference_configs


def test_every_release_has_a_card():
    releases = meta()["releases"]
    assert set(reference_configs()) == set(releases)
    assert {c.name for c in get_registry().cards.values() if c.plugin == "gigatok"} == set(releases.values())


@pytest.mark.parametrize("stem", sorted(meta()["releases"]))
def test_card_is_the_reference_yaml(stem):
    ref = reference_configs()[stem]
    card = get_registry().find_card(meta()["releases"][stem])[0]
    assert (card.config["encoder_size"], card.config["decoder_size"]) == (ref["encoder_size"], ref["decoder_size"])
    assert card.config["yaml"] == ref["yaml"]
    assert card.weights_url.startswith("https://drive.google.com/") and card.files[0].endswith(".pt")
    # the values every release shares, which zoo's config fixes as defaults
    shared = {"codebook_size": 16384, "codebook_embed_dim": 8, "codebook_l2_norm": True, "num_latent_tokens": 256,
              "z_channels": 256, "encoder_ch_mult": [1, 1, 2, 2, 4], "decoder_ch_mult": [1, 1, 2, 2, 4],
              "multi_level_query_init": True, "adaptive_gn": True, "d2s_up": True, "use_attn": False,
              "last_level_2d_query_init": False, "multi_level_2d_query_init": False}
    assert {k: ref[k] for k in shared} == shared
    assert not ref.get("use_rope") and not ref.get("use_qk_norm") and not ref.get("res_up_down_sample")


@pytest.mark.parametrize("stem", sorted(meta()["releases"]))
def test_release_layout_loads_strictly(stem):
    manifest = published_manifests()[stem]
    assert any(k.startswith(DROPPED_PREFIXES) for k in manifest)
    release = {k: torch.empty(s, dtype=getattr(torch, d), device="meta") for k, (s, d) in manifest.items()}
    name = meta()["releases"][stem]
    model = zoo.load(name, pretrained=False, device="meta")
    converted = GigaTokBuilder().convert(release, model.config)
    assert_manifest_equal(state_manifest(converted), state_manifest(model), what=name)


def test_loading_without_weights_says_where_to_get_them():
    from zoo.errors import ZooError

    with pytest.raises(ZooError, match="drive.google.com.*weights=PATH"):
        zoo.load("gigatok.s_s")


def test_a_release_through_the_wrong_card_is_a_config_error():
    from zoo.errors import ConfigError

    small = {k: torch.empty(s, device="meta") for k, (s, _) in published_manifests()["VQ_SS256"].items()}
    cfg = zoo.load("gigatok.b_l", pretrained=False, device="meta").config
    with pytest.raises(ConfigError, match="encoder_size: config 'base' vs weights 'small'"):
        GigaTokBuilder().convert(small, cfg)


def test_zoo_download_names_the_url():
    from click.testing import CliRunner

    from zoo.cli import cli

    result = CliRunner().invoke(cli, ["download", "gigatok.s_s"])
    assert result.exit_code != 0 and "VQ_SS256_e100.pt from https://drive.google.com/" in result.output
