"""zoo.load end to end on the example plugin: pretrained, random, local weights, overrides."""

from __future__ import annotations

import json

import pytest
import torch

import zoo
from zoo.errors import CheckpointError, ConfigError
from zoo.interfaces import Tokenizer

from ..conftest import write_patchvq_release


def test_load_from_hub_returns_a_ready_tokenizer(patchvq_hub):
    model = zoo.load("patchvq")  # family alone = default tag
    assert isinstance(model, Tokenizer) and not model.training
    assert model.card.name == "patchvq.tiny" and model.config.dim == 8
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    tokens = model.encode(x)
    assert tokens.ids.shape == (2, 64) and tokens.tokenizer == "patchvq.tiny"
    assert model.decode(tokens.truncate([3, 64])).shape == (2, 3, 32, 32)


def test_pretrained_false_builds_without_download(patchvq_plugin, hub_stand_in):
    model = zoo.load("patchvq.tiny", pretrained=False, dim=4)
    assert model.codebook.shape == (64, 4)
    assert hub_stand_in.requests == []


def test_weights_from_a_local_file_and_dir(patchvq_plugin, tmp_path):
    path = write_patchvq_release(tmp_path / "release", seed=3, dim=6)
    from_file = zoo.load("patchvq.tiny", weights=path)
    from_dir = zoo.load("patchvq.tiny", weights=path.parent)
    assert from_file.config.dim == 6  # config read from the file's metadata
    assert torch.equal(from_file.codebook, from_dir.codebook)


def test_override_contradicting_the_checkpoint_is_refused_and_typos_are_reported(patchvq_plugin, tmp_path):
    path = write_patchvq_release(tmp_path / "r", dim=6)
    with pytest.raises(ConfigError, match="dim=5 contradicts the checkpoint's dim=6"):
        zoo.load("patchvq.tiny", weights=path, dim=5)
    assert zoo.load("patchvq.tiny", weights=path, dim=6).config.dim == 6  # agreeing with it is fine
    with pytest.raises(ConfigError, match="unknown config field 'dimm'.*did you mean 'dim'"):
        zoo.load("patchvq.tiny", weights=path, dimm=5)


def test_missing_local_weights(patchvq_plugin, tmp_path):
    with pytest.raises(CheckpointError, match="no such file"):
        zoo.load("patchvq.tiny", weights=tmp_path / "absent.safetensors")
    with pytest.raises(CheckpointError, match="lacks \\['model.safetensors'\\]"):
        zoo.load("patchvq.tiny", weights=tmp_path)


def test_dtype_and_attn_backend(patchvq_plugin, tmp_path):
    path = write_patchvq_release(tmp_path / "r")
    model = zoo.load("patchvq.tiny", weights=path, dtype="bf16")
    assert model.codebook.dtype == torch.bfloat16
    with pytest.raises(zoo.ZooError, match="unknown dtype 'float7'"):
        zoo.load("patchvq.tiny", weights=path, dtype="float7")


def test_info_is_json_and_states_the_licence(patchvq_plugin):
    record = zoo.info("patchvq")
    json.dumps(record)
    assert record["name"] == "patchvq.tiny" and record["registered_by"] == "patchvq-test"
    assert record["license_summary"] == "code: Apache-2.0; weights: Apache-2.0"


def test_tokens_out_of_range_are_rejected(patchvq_plugin):
    model = zoo.load("patchvq.tiny", pretrained=False)
    with pytest.raises(ValueError, match="lie in \\[0, 64\\] but the codebook has 64 entries"):
        model.decode(torch.tensor([[0, 64]]))


def test_wrong_image_shape_is_a_clear_error(patchvq_plugin):
    model = zoo.load("patchvq.tiny", pretrained=False)
    with pytest.raises(zoo.MediaError, match="patchvq.tiny takes 32x32 images, got 16x16"):
        model.encode(torch.zeros(1, 3, 16, 16))
