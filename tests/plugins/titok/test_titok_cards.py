"""Cards, configs and key/shape manifests at every published TiTok / One-D-Piece config.

The manifests and configs were recorded from the reference repos (their yaml files and their
models built on the meta device); a zoo model built from each *card* must have exactly the
official key names and shapes, i.e. the released checkpoints load with ``strict=True``.
"""

from __future__ import annotations

import json

import pytest
import torch

from zoo.testing.weights import assert_manifest_equal, state_manifest

PUBLISHED = [
    "titok.l_32", "titok.b_64", "titok.s_128",
    "titok.bl_64_vq8k", "titok.bl_128_vq8k", "titok.sl_256_vq8k",
    "titok.ll_32_vae", "titok.bl_64_vae", "titok.bl_128_vae",
    "one_d_piece.s_256", "one_d_piece.b_256", "one_d_piece.l_256",
]


def _cards():
    from zoo.catalogue import load_catalogue

    return {c.name: c for c in load_catalogue() if c.plugin == "titok"}


def _card_config(card):
    from zoo_plugins.titok.config import TiTokConfig

    from zoo.config import merge_config

    return merge_config(TiTokConfig, [("card", card.config)])


def _reference_configs(tk) -> dict:
    return json.loads((tk.fixtures / "reference_configs.json").read_text())


def test_every_published_model_has_a_card(tk):
    cards = _cards()
    assert sorted(cards) == sorted(PUBLISHED)
    assert sorted(tk.published_manifests()) == sorted(PUBLISHED)
    for card in cards.values():
        assert card.hub_repo and card.files and card.metrics.get("imagenet_256_rfid")
    assert [c.name for c in cards.values() if c.default] == ["titok.l_32", "one_d_piece.l_256"]


@pytest.mark.parametrize("name", PUBLISHED)
def test_card_config_equals_official_yaml(tk, name):
    """The card's config is the repo's yaml (One-D-Piece's hub repos have no config.json)."""
    from zoo_plugins.titok.config import TiTokConfig, from_reference_config

    from zoo.config import merge_config

    official = merge_config(TiTokConfig, [("yaml", from_reference_config(_reference_configs(tk)[name]))])
    assert _card_config(_cards()[name]) == official


@pytest.mark.parametrize("name", PUBLISHED)
def test_card_builds_the_official_key_layout(tk, name):
    from zoo_plugins.titok.model import TiTok

    with torch.device("meta"):
        model = TiTok(_card_config(_cards()[name]))
    assert_manifest_equal(state_manifest(model), tk.published_manifests()[name], what=name)


@pytest.mark.parametrize(
    "name, tokens, codebook, legacy, pixel_decoder",
    [
        ("titok.l_32", 32, 4096, True, True),
        ("titok.s_128", 128, 4096, True, True),
        ("titok.sl_256_vq8k", 256, 8192, False, False),
        ("titok.bl_64_vae", 64, None, False, False),
        ("one_d_piece.b_256", 256, 4096, True, True),
    ],
)
def test_card_semantics(name, tokens, codebook, legacy, pixel_decoder):
    from zoo_plugins.titok.model import TiTok

    with torch.device("meta"):
        model = TiTok(_card_config(_cards()[name]))
    assert model.num_latent_tokens == tokens and model.codebook_size == codebook
    assert model.encoder.is_legacy is legacy and hasattr(model, "pixel_decoder") is pixel_decoder
    assert model.variable_length is name.startswith("one_d_piece")
