"""Shared helpers: zoo SNAC models rebuilt from the committed reference manifests with the
recorder's seeded weights (release key layout, converted and loaded strictly)."""

from __future__ import annotations

import json
from pathlib import Path

import torch

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "snac"


def load_fixture(name: str) -> tuple[dict[str, torch.Tensor], dict]:
    from safetensors import safe_open

    with safe_open(str(FIXTURES / f"{name}.safetensors"), framework="pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}, dict(f.metadata() or {})


def config_of(name: str) -> dict:
    from zoo_plugins.snac.testing import PUBLISHED, SMALL

    return {**SMALL, **PUBLISHED}[name]


def build_parity_model(name: str, **overrides):
    """The zoo model for config ``name`` with the recorder's weights, loaded with strict=True."""
    from zoo_plugins.snac.builder import SNACBuilder
    from zoo_plugins.snac.config import SNACConfig
    from zoo_plugins.snac.testing import parity_state_dict

    from zoo.testing.weights import load_manifest

    sd = parity_state_dict(load_manifest(FIXTURES / f"manifest_{name}.json"), seed=0)
    builder = SNACBuilder()
    config = SNACConfig.from_mapping({**config_of(name), **overrides})
    model = builder.build(config).eval()
    model.load_state_dict(builder.convert(sd, config), strict=True)
    return model


def meta_config(meta: dict) -> dict:
    return json.loads(meta["config"])
