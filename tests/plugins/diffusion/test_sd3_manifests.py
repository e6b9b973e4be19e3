"""SD3 / 3.5 at the published sizes: zoo's builders at each card's config expect exactly the keys and
shapes of Stability's own modules (tests/fixtures/sd3/manifests.json: Stability-AI/sd3.5's MMDiTX,
SDVAE, CLIP-L/G and T5-XXL built on the meta device at each release's architecture, the MMDiT and VAE
keys converted to the diffusers layout by diffusers' single-file converters), so the official
checkpoints load with strict=True. Nothing is downloaded; every module is built on the meta device."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

pytest.importorskip("diffusers")

import zoo  # noqa: E402
from zoo_plugins.diffusion.builders import DiffusersVAEBuilder, SD3Builder, SD3TextBuilder  # noqa: E402
from zoo_plugins.diffusion.config import SD3Config  # noqa: E402

MANIFESTS = json.loads((Path(__file__).parents[2] / "fixtures" / "sd3" / "manifests.json").read_text())
CARDS = [  # card, the architecture of its release (3.5 Large Turbo is 3.5 Large's architecture), transformer parameters
    ("sd3.medium", "sd3_medium", 2_028_328_000),  # "2B" (2.08B with the 192 x 192 x 1536 position table, a buffer here)
    ("sd3.sd3_5_medium", "sd3_5_medium", 2_243_171_520),  # "2.5B" with the 384 x 384 x 1536 position table (a buffer) counted
    ("sd3.sd3_5_large", "sd3_5_large", 8_056_627_520),  # "8.1B" with the position table
    ("sd3.sd3_5_large_turbo", "sd3_5_large", 8_056_627_520),
]


def _shapes(module: torch.nn.Module, strip: str = "") -> dict[str, list[int]]:
    return {k.removeprefix(strip): list(v.shape) for k, v in module.state_dict().items()}


@pytest.mark.parametrize("card,arch,params", CARDS)
def test_transformer_expects_the_release_keys_and_shapes(card, arch, params):
    with torch.device("meta"):
        model = SD3Builder().build(SD3Config(**zoo.get_card(card).config))
    assert _shapes(model, "transformer.") == MANIFESTS["transformer"][arch]
    assert sum(p.numel() for p in model.transformer.parameters()) == params
    # ... which is the reference's count less its position table (a buffer in diffusers, a parameter in MMDiTX)
    ref = MANIFESTS["transformer"][arch]
    assert sum(torch.Size(s).numel() for k, s in ref.items() if k != "pos_embed.pos_embed") == params


@pytest.mark.parametrize("card", [c for c, _, _ in CARDS])
def test_text_encoders_and_vae_expect_the_release_keys_and_shapes(card):
    cfg = zoo.get_card(card).config
    with torch.device("meta"):
        te = SD3TextBuilder().build(zoo.get_card(cfg["text_encoders"]).config)
        vae = DiffusersVAEBuilder().build(zoo.get_card(cfg["vae"]).config)
    for name in ("clip_l", "clip_g"):
        assert _shapes(getattr(te, name)) == MANIFESTS["text_encoders"][name], name
    t5 = _shapes(te.t5)
    # transformers' T5EncoderModel also lists `shared.weight`, the same tensor as encoder.embed_tokens (tied; a file holds either)
    assert te.t5.shared.weight is te.t5.encoder.embed_tokens.weight
    assert {k: v for k, v in t5.items() if k != "shared.weight"} == MANIFESTS["text_encoders"]["t5"]
    assert _shapes(vae, "vae.") == MANIFESTS["vae"]


def test_a_wrong_architecture_is_caught():
    """The manifests tell the releases apart: the 3.5 Medium layout is not the SD3 Medium one (dual attention, QK norm, 384 positions)."""
    with torch.device("meta"):
        model = SD3Builder().build(SD3Config(**zoo.get_card("sd3.medium").config))
    assert _shapes(model, "transformer.") != MANIFESTS["transformer"]["sd3_5_medium"]
