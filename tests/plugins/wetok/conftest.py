"""WeTok parity cases rebuilt from committed data (tests/fixtures/wetok, recorded by
scripts/parity/record_wetok.py from zhuangshaobin/WeTok on regenerated random weights)."""

from __future__ import annotations

import gzip
import json
from functools import cache
from pathlib import Path

import torch
from safetensors.torch import load_file

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "wetok"

# reference config file stem -> zoo card
CARD_OF = {
    "ImageNet_downsample16": "wetok.imagenet_f16",
    "ImageNet_downsample8": "wetok.imagenet_f8",
    "GeneralDomain_compratio24": "wetok.general_cr24",
    "GeneralDomain_compratio48": "wetok.general_cr48",
    "GeneralDomain_compratio192": "wetok.general_cr192",
    "GeneralDomain_compratio768": "wetok.general_cr768",
}


@cache
def cases() -> dict:
    return json.loads((FIXTURES / "cases.json").read_text())["cases"]


@cache
def published_manifests() -> dict:
    raw = json.loads(gzip.decompress((FIXTURES / "manifests.json.gz").read_bytes()))
    return {name: {k: (tuple(s), d) for k, (s, d) in man.items()} for name, man in raw.items()}


@cache
def reference_configs() -> dict:
    return json.loads((FIXTURES / "reference_configs.json").read_text())


def case_tensors(name: str) -> dict[str, torch.Tensor]:
    return load_file(str(FIXTURES / f"{name}.safetensors"))


def case_config(name: str) -> dict:
    keys = ("ch", "ch_mult", "num_res_blocks", "z_channels", "n_embed", "num_codebooks", "gan_decoder")
    return {k: cases()[name][k] for k in keys}


def release_file(name: str, directory: Path, **kwargs) -> Path:
    """A WeTok-style ``.ckpt`` (``{"state_dict": ...}``) for parity case ``name``."""
    from zoo.testing.weights import state_manifest
    from zoo_plugins.wetok.config import WeTokConfig
    from zoo_plugins.wetok.model import WeTok
    from zoo_plugins.wetok.testing import release_state_dict

    model = WeTok(WeTokConfig(**case_config(name)))
    sd = release_state_dict(state_manifest(model), **kwargs)
    path = directory / name / "WeTok.ckpt"
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": sd, "epoch": 3, "global_step": 10}, path)
    return path
