"""OmniTokenizer parity cases rebuilt from ``tests/fixtures/omnitokenizer`` (recorded by
``scripts/parity/record_omnitokenizer.py``)."""

from __future__ import annotations

import gzip
import json
from functools import cache
from pathlib import Path

import pytest
import torch

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "omnitokenizer"


@cache
def cases() -> dict:
    return json.loads((FIXTURES / "cases.json").read_text())["cases"]


@cache
def published() -> dict:
    return json.loads(gzip.decompress((FIXTURES / "manifests.json.gz").read_bytes()))


@cache
def data(kind: str) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(FIXTURES / f"case_{kind}.safetensors"))


def manifest(kind: str) -> dict:
    return {k: (tuple(s), d) for k, (s, d) in cases()[kind]["manifest"].items()}


def config(kind: str):
    from zoo_plugins.omnitokenizer.config import OmniTokenizerConfig, from_hparams

    return OmniTokenizerConfig(**from_hparams(cases()[kind]["config"]))


@cache
def state_dict(kind: str) -> dict[str, torch.Tensor]:
    from zoo.testing.weights import seeded_state_dict
    from zoo_plugins.omnitokenizer.model import OmniTokenizer

    seed = json.loads((FIXTURES / "cases.json").read_text())["seed"]
    own = OmniTokenizer(config(kind)).state_dict()
    sd = {k: (own[k] if k.endswith("relative_position_index") else v) for k, v in seeded_state_dict(manifest(kind), seed=seed).items()}
    if kind == "vq":
        sd["codebook.embeddings"] = data(kind)["codebook"]
    return sd


@cache
def model(kind: str):
    from zoo_plugins.omnitokenizer.model import OmniTokenizer

    m = OmniTokenizer(config(kind)).eval()
    m.load_state_dict(state_dict(kind), strict=True)
    return m


@pytest.fixture(scope="session")
def ot():
    from types import SimpleNamespace

    return SimpleNamespace(cases=cases, published=published, data=data, manifest=manifest, config=config,
                           state_dict=state_dict, model=model, fixtures=FIXTURES)
