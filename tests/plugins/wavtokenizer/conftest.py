"""Shared fixtures: zoo WavTokenizer models rebuilt from the committed parity manifests.

Each published architecture (frame75: 75 tokens/s, frame40: 40 tokens/s) is built at full size
from seeded weights in the *official* key layout, converted by the plugin's converter and loaded
strictly; the codebook is calibrated with zoo's encoder exactly as the recorder did with the
reference's (see ``zoo_plugins.wavtokenizer.testing``).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "wavtokenizer"
CONFIGS = ("frame75", "frame40")


def load_fixture(name: str) -> tuple[dict[str, torch.Tensor], dict]:
    from safetensors import safe_open

    with safe_open(str(FIXTURES / f"{name}.safetensors"), framework="pt") as f:
        meta = json.loads((f.metadata() or {})["meta"])
        return {k: f.get_tensor(k) for k in f.keys()}, meta


def build_parity_model(name: str):
    """(zoo model, official-layout state dict) for a committed manifest."""
    from zoo.testing.weights import load_manifest
    from zoo_plugins.wavtokenizer.builder import WavTokenizerBuilder
    from zoo_plugins.wavtokenizer.config import WavTokenizerConfig, config_from_state_dict
    from zoo_plugins.wavtokenizer.testing import CODEBOOK_KEY, calibrated_codebook, parity_state_dict

    sd = parity_state_dict(load_manifest(FIXTURES / f"manifest_{name}.json"), seed=0)
    builder = WavTokenizerBuilder()
    config = WavTokenizerConfig(**config_from_state_dict(sd))
    model = builder.build(config).eval()
    model.load_state_dict(builder.convert(sd, config), strict=True)
    sd[CODEBOOK_KEY] = calibrated_codebook(lambda w: model.latents(w), sd[CODEBOOK_KEY].shape[0], seed=0)
    model.load_state_dict(builder.convert(sd, config), strict=True)
    return model, sd


@pytest.fixture(scope="session", params=CONFIGS)
def parity(request):
    model, sd = build_parity_model(request.param)
    tensors, meta = load_fixture(request.param)
    return {"name": request.param, "model": model, "state": sd, "ref": tensors, "meta": meta}
