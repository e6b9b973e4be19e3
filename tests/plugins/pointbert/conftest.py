"""Shared fixtures for the Point-BERT tests: the parity case rebuilt from committed data
(``tests/fixtures/pointbert``, recorded by ``scripts/parity/record_pointbert.py`` from the
reference with its CUDA ops replaced by zoo's pure-torch FPS / kNN)."""

from __future__ import annotations

import gzip
import json
from functools import cache
from pathlib import Path

import pytest
import torch

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "pointbert"


@cache
def case() -> dict:
    return json.loads((FIXTURES / "cases.json").read_text())


@cache
def data() -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(FIXTURES / "case.safetensors"))


@cache
def published() -> dict:
    return json.loads(gzip.decompress((FIXTURES / "manifests.json.gz").read_bytes()))


def case_manifest() -> dict:
    return {k: (tuple(s), d) for k, (s, d) in case()["manifest"].items()}


def case_config():
    from zoo_plugins.pointbert.config import PointBERTConfig

    return PointBERTConfig(**case()["config"])


@cache
def release_state_dict() -> dict[str, torch.Tensor]:
    from zoo_plugins.pointbert.testing import release_state_dict as seeded

    return seeded(case_manifest(), case()["seed"])


@cache
def case_model():
    from zoo_plugins.pointbert.model import PointBERTdVAE

    model = PointBERTdVAE(case_config()).eval()
    model.load_state_dict(release_state_dict(), strict=True)
    return model


@pytest.fixture(scope="session")
def pb():
    from types import SimpleNamespace

    return SimpleNamespace(case=case, data=data, published=published, case_manifest=case_manifest, case_config=case_config,
                           release_state_dict=release_state_dict, case_model=case_model, fixtures=FIXTURES)
