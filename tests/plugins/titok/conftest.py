"""Shared fixtures for the TiTok / One-D-Piece tests: parity cases rebuilt from committed data.

The fixtures in ``tests/fixtures/titok`` were recorded by ``scripts/parity/record_titok.py``
from the reference implementations on per-key seeded weights; here the same weights are
regenerated from the recorded key/shape manifest and seed.
"""

from __future__ import annotations

import gzip
import json
from functools import cache
from pathlib import Path

import pytest
import torch

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "titok"


@cache
def cases() -> dict:
    return json.loads((FIXTURES / "cases.json").read_text())


@cache
def published_manifests() -> dict:
    raw = json.loads(gzip.decompress((FIXTURES / "manifests.json.gz").read_bytes()))
    return {name: {k: (tuple(s), d) for k, (s, d) in man.items()} for name, man in raw.items()}


@cache
def case_data(name: str) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(FIXTURES / f"{name}.safetensors"))


def case_manifest(name: str) -> dict:
    return {k: (tuple(s), d) for k, (s, d) in cases()[name]["manifest"].items()}


@cache
def case_state_dict(name: str) -> dict[str, torch.Tensor]:
    """The reference's weights for a case: seeded per key, codebook from the fixture."""
    from zoo.testing.weights import seeded_state_dict

    sd = seeded_state_dict(case_manifest(name), seed=cases()[name]["seed"])
    data = case_data(name)
    if "codebook" in data:
        sd["quantize.embedding.weight"] = data["codebook"]
    return sd


def case_config(name: str):
    from zoo_plugins.titok.config import TiTokConfig, from_reference_config

    return TiTokConfig(**from_reference_config(cases()[name]["config"]))


@cache
def case_model(name: str):
    """A zoo TiTok for a parity case with the case's weights loaded strictly (eval mode)."""
    from zoo_plugins.titok.model import TiTok

    model = TiTok(case_config(name)).eval()
    model.load_state_dict(case_state_dict(name), strict=True)
    return model



@pytest.fixture(scope="session")
def tk():
    """The helpers above as one fixture (works in every pytest import mode)."""
    from types import SimpleNamespace

    return SimpleNamespace(
        cases=cases, case_data=case_data, case_manifest=case_manifest, case_config=case_config,
        case_state_dict=case_state_dict, case_model=case_model, published_manifests=published_manifests,
        fixtures=FIXTURES,
    )
