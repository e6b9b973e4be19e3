"""Shared fixtures for the LARP tests: the parity case rebuilt from committed data.

``tests/fixtures/larp`` was recorded by ``scripts/parity/record_larp.py`` from hywang66/LARP on
per-key seeded weights; the same weights are regenerated here from the recorded manifest and seed
(the calibrated codebook is stored).
"""

from __future__ import annotations

import gzip
import json
from functools import cache
from pathlib import Path

import pytest
import torch

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "larp"


@cache
def case() -> dict:
    return json.loads((FIXTURES / "cases.json").read_text())


@cache
def data() -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(FIXTURES / "case.safetensors"))


@cache
def published_manifest() -> dict:
    raw = json.loads(gzip.decompress((FIXTURES / "manifests.json.gz").read_bytes()))
    return {k: (tuple(s), d) for k, (s, d) in raw["larp.l_long"].items()}


def case_manifest() -> dict:
    return {k: (tuple(s), d) for k, (s, d) in case()["manifest"].items()}


@cache
def reference_state_dict() -> dict[str, torch.Tensor]:
    """The reference's weights for the case, in the release layout (prior included)."""
    from zoo.testing.weights import seeded_state_dict

    sd = seeded_state_dict(case_manifest(), seed=case()["seed"])
    sd["bottleneck.regularizer.embedding.weight"] = data()["codebook"]
    return sd


def case_config():
    from zoo_plugins.larp.config import LARPConfig

    return LARPConfig(**case()["config"])


@cache
def case_model():
    from zoo_plugins.larp.builder import LARPBuilder
    from zoo_plugins.larp.model import LARP

    model = LARP(case_config()).eval()
    model.load_state_dict(LARPBuilder().convert(reference_state_dict(), case_config()), strict=True)
    return model


@pytest.fixture(scope="session")
def lp():
    """The helpers above as one fixture (works in every pytest import mode)."""
    from types import SimpleNamespace

    return SimpleNamespace(case=case, data=data, published_manifest=published_manifest, case_manifest=case_manifest,
                           reference_state_dict=reference_state_dict, case_config=case_config, case_model=case_model,
                           fixtures=FIXTURES)
