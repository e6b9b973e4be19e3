"""GigaTok parity data (tests/fixtures/gigatok, recorded by scripts/parity/record_gigatok.py from
SilentView/GigaTok on regenerated random weights with a calibrated codebook)."""

from __future__ import annotations

import argparse
import gzip
import json
from functools import cache
from pathlib import Path

import torch
from safetensors.torch import load_file

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "gigatok"


@cache
def meta() -> dict:
    return json.loads((FIXTURES / "cases.json").read_text())


@cache
def published_manifests() -> dict:
    raw = json.loads(gzip.decompress((FIXTURES / "manifests.json.gz").read_bytes()))
    return {name: {k: (tuple(s), d) for k, (s, d) in man.items()} for name, man in raw.items()}


@cache
def reference_configs() -> dict:
    return json.loads((FIXTURES / "reference_configs.json").read_text())


def case_tensors() -> dict[str, torch.Tensor]:
    return load_file(str(FIXTURES / "case.safetensors"))


def release_state() -> dict[str, torch.Tensor]:
    """The parity model's weights in the release layout, codebook calibrated as recorded."""
    from zoo_plugins.gigatok.testing import CODEBOOK_KEY, calibrated_codebook, release_state_dict

    from zoo.testing.weights import state_manifest

    manifest = reference_manifest()
    sd = release_state_dict(manifest)
    model = zoo_model(sd)
    with torch.no_grad():
        sd[CODEBOOK_KEY] = calibrated_codebook(model.encode_latents, sd[CODEBOOK_KEY].shape[0], meta()["config"]["image_size"])
    assert state_manifest(sd).keys() == manifest.keys()
    return sd


def reference_manifest() -> dict:
    """The reference's key/shape manifest of the parity model (release names, with what zoo
    drops: distillation MLP, codebook-usage buffer); renamed, it is exactly zoo's key set."""
    from zoo_plugins.gigatok.checkpoint import convert_state_dict
    from zoo_plugins.gigatok.config import GigaTokConfig
    from zoo_plugins.gigatok.model import GigaTok

    from zoo.testing.weights import state_manifest

    raw = json.loads((FIXTURES / "parity_manifest.json").read_text())
    manifest = {k: (tuple(s), d) for k, (s, d) in raw.items()}
    with torch.device("meta"):
        zoo_keys = set(state_manifest(GigaTok(GigaTokConfig(**meta()["config"]))))
    assert set(convert_state_dict(dict.fromkeys(manifest))) == zoo_keys
    return manifest


def zoo_model(release: dict):
    from zoo_plugins.gigatok.builder import GigaTokBuilder
    from zoo_plugins.gigatok.config import GigaTokConfig
    from zoo_plugins.gigatok.model import GigaTok

    from zoo.weights import load_state_dict_strict

    cfg = GigaTokConfig(**meta()["config"])
    model = GigaTok(cfg).eval()
    load_state_dict_strict(model, GigaTokBuilder().convert(release, cfg))
    return model


def release_file(directory: Path, *, with_args: bool = True) -> Path:
    """The parity weights saved like a GigaTok release (``model`` + ``ema`` + ``args`` Namespace)."""
    sd = release_state()
    ckpt = {"model": {k: torch.zeros_like(v) for k, v in sd.items()}, "ema": sd, "steps": 10}
    if with_args:
        ckpt["args"] = argparse.Namespace(image_size=256, vq_model="VQ-16", ema=True)
    path = directory / "VQ_test.pt"
    torch.save(ckpt, path)
    return path
