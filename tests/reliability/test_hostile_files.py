"""Hostile files stay data: no ``${...}`` interpolation, ``!!python`` tag, ``_target_`` import path
or ``__reduce__`` pickle payload in a file fed to zoo is executed, resolved or imported.

Every payload would create the same marker file (or import a module that does); the test feeds
them all through the paths zoo reads files with and checks the marker never appears, the
secret never leaks into a config, and the payload module is never imported."""

from __future__ import annotations

import json
import os
import pickle
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

import zoo
from zoo.builders import Checkpoint, ModelBuilder
from zoo.errors import CardError, CheckpointError, ConfigError, ZooError
from zoo.hookspecs import hookimpl
from zoo.testing.plugins import temporary_plugin

pytestmark = pytest.mark.filterwarnings("ignore:Detected pickle protocol")

PAYLOAD_MODULE = "tests.reliability._payload"
SECRET = "s3cr3t-token-h13"


class Touch:
    """Unpickling this touches the marker."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@dataclass
class HostileConfig:
    label: str = "plain"
    width: int = 4


class HostileModel(torch.nn.Module):
    def __init__(self, config: HostileConfig):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(config.width))


class HostileBuilder(ModelBuilder):
    """Reads a safetensors file whose ``config`` metadata is JSON, like many release formats."""

    name = "hostile"
    config_class = HostileConfig

    def read_checkpoint(self, files):
        from zoo.weights import load_weights_file

        state, meta = load_weights_file(files.primary)
        return Checkpoint(state_dict=state, config=json.loads(meta.get("config", "{}")))

    def build(self, config):
        return HostileModel(config)


class HostilePlugin:
    @hookimpl
    def register_cards(self, register):
        register({"name": "hostile.tiny", "kind": "tokenizer", "plugin": "hostile", "modality": "image",
                  "license": {"code": "MIT"}, "files": ["model.safetensors"], "config": {"label": "${oc.env:ZOO_H13_SECRET}"}})

    @hookimpl
    def register_builders(self, register):
        register(HostileBuilder())


@pytest.fixture
def marker(tmp_path, monkeypatch):
    path = tmp_path / "MARKER"
    monkeypatch.setenv("ZOO_H13_MARKER", str(path))
    monkeypatch.setenv("ZOO_H13_SECRET", SECRET)
    sys.modules.pop(PAYLOAD_MODULE, None)
    yield path
    assert not path.exists(), f"a payload ran: {path.read_text() or 'touched'}"
    assert PAYLOAD_MODULE not in sys.modules, "a module named by a file was imported"


def _release(folder: Path, config: dict, state=None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "model.safetensors"
    save_file(state or {"weight": torch.zeros(4)}, str(path), metadata={"config": json.dumps(config)})
    return path


def _resolver_that_touches(marker: Path) -> str:
    """Register an OmegaConf resolver that touches the marker; return its interpolation."""
    from omegaconf import OmegaConf

    name = "zoo_h13_touch"
    if not OmegaConf.has_resolver(name):
        OmegaConf.register_new_resolver(name, lambda: Path(os.environ["ZOO_H13_MARKER"]).write_text("resolved") and "x")
    return "${" + name + ":}"


def test_interpolations_in_card_and_checkpoint_metadata_stay_literal(marker, tmp_path):
    touch = _resolver_that_touches(marker)
    with temporary_plugin(HostilePlugin()):
        path = _release(tmp_path / "r", {"label": touch})
        model = zoo.load("hostile.tiny", weights=path)
        assert model.config.label == touch  # the checkpoint's string, verbatim
        card_only = zoo.load("hostile.tiny", pretrained=False)
        assert card_only.config.label == "${oc.env:ZOO_H13_SECRET}"  # the card's string, verbatim
        for value in ("${oc.env:ZOO_H13_SECRET}", "prefix-${oc.env:ZOO_H13_SECRET}", "${oc.decode:'1'}", "${width}"):
            model = zoo.load("hostile.tiny", weights=_release(tmp_path / "v", {"label": value}))
            assert model.config.label == value
            assert SECRET not in repr(model.config)
        with pytest.raises(ConfigError) as info:  # an interpolation into an int field is refused, not resolved
            zoo.load("hostile.tiny", weights=_release(tmp_path / "w", {"width": "${oc.env:ZOO_H13_SECRET}"}))
        assert SECRET not in str(info.value)


def test_target_import_paths_are_never_imported(marker, tmp_path):
    target = f"{PAYLOAD_MODULE}.Boom"
    with temporary_plugin(HostilePlugin()), pytest.raises(ConfigError, match="_target_"):
        zoo.load("hostile.tiny", weights=_release(tmp_path / "t", {"_target_": target, "label": "x"}))
    from zoo_plugins.flextok.metadata import config_from_metadata, parse_metadata

    with pytest.raises(ConfigError, match="not a FlexTok model"):
        config_from_metadata({"_target_": target, "vae": "{}", "encoder": "{}", "decoder": "{}", "regularizer": "{}",
                              "flow_matching_noise_module": "{}", "pipeline": "{}"})
    with pytest.raises(ConfigError):
        config_from_metadata({"_target_": "flextok.flextok_wrapper.FlexTok", "vae": {"_target_": target},
                              "encoder": {}, "decoder": {}, "regularizer": {}, "flow_matching_noise_module": {}, "pipeline": {}})
    # python expressions in metadata strings are parsed as literals only, never evaluated
    code = f"__import__('os').system('touch {marker}')"
    assert parse_metadata({"vae": code})["vae"] == code


def test_python_yaml_tags_are_never_constructed(marker, tmp_path):
    tag = f"!!python/object/apply:os.system ['touch {marker}']"
    catalogue = tmp_path / "registry.yaml"
    catalogue.write_text(f"models:\n  - {tag}\n")
    from zoo.catalogue import load_catalogue

    with pytest.raises(CardError, match="not valid YAML"):
        load_catalogue(catalogue)
    from zoo_plugins.wavtokenizer.config import config_from_yaml

    wav_yaml = tmp_path / "wavtokenizer.yaml"
    wav_yaml.write_text(f"model:\n  init_args: {tag}\n")
    with pytest.raises(ConfigError, match="!!python"):
        config_from_yaml(wav_yaml)
    module_tag = tmp_path / "m.yaml"
    module_tag.write_text(f"models: !!python/module:{PAYLOAD_MODULE}\n")
    with pytest.raises(CardError):
        load_catalogue(module_tag)


def test_pickle_reduce_payloads_are_never_run(marker, tmp_path):
    from zoo.weights import load_weights_file

    evil = tmp_path / "pytorch_model.bin"
    with open(evil, "wb") as f:
        pickle.dump({"weight": Touch(marker)}, f)
    with pytest.raises(CheckpointError, match="weights-only"):
        load_weights_file(evil)
    torch.save({"weight": torch.zeros(4), "extra": Touch(marker)}, tmp_path / "model.pt")
    with pytest.raises(CheckpointError, match="never unpickles arbitrary objects"):
        load_weights_file(tmp_path / "model.pt")
    # through zoo.load too: a builder that reads pickles (RAR's .bin release format)
    import zoo_plugins.rar

    with temporary_plugin(zoo_plugins.rar, "rar-hostile"), pytest.raises(ZooError, match="weights-only"):
        zoo.load("rar.b", weights=evil)
