"""Config merge order and errors; strict weight loading and unsafe/corrupt files."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from zoo.config import merge_config
from zoo.errors import CheckpointError, ConfigError
from zoo.weights import load_pickle, load_safetensors, load_state_dict_strict, no_init


@dataclasses.dataclass
class Cfg:
    width: int = 8
    depth: int = 2
    levels: list = dataclasses.field(default_factory=lambda: [8, 8])
    name: str = "default"


def test_merge_order_defaults_card_checkpoint_overrides():
    cfg = merge_config(Cfg, [("card", {"width": 16, "depth": 3, "name": "card"}), ("checkpoint", {"depth": 4, "name": "ckpt"}), ("overrides", {"name": "user"})])
    assert cfg == Cfg(width=16, depth=4, levels=[8, 8], name="user")


@pytest.mark.parametrize(
    "layer, message",
    [
        ({"widht": 3}, r"unknown config field 'widht' in overrides for Cfg; did you mean 'width'\?"),
        ({"width": "wide"}, r"bad value for config field 'width' in overrides"),
    ],
)
def test_config_errors_name_field_and_source(layer, message):
    with pytest.raises(ConfigError, match=message):
        merge_config(Cfg, [("card", {}), ("overrides", layer)])


def test_checkpoint_layer_is_named_in_errors():
    with pytest.raises(ConfigError, match="in checkpoint model.safetensors"):
        merge_config(Cfg, [("checkpoint model.safetensors", {"mystery": 1})])


def test_strict_load_lists_missing_unexpected_and_shapes():
    model = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Linear(3, 1))
    sd = dict(model.state_dict())
    sd.pop("1.bias")
    sd["0.weight"] = torch.zeros(4, 2)
    sd["extra.weight"] = torch.zeros(1)
    with pytest.raises(CheckpointError) as err:
        load_state_dict_strict(model, sd, what="toy")
    text = str(err.value)
    assert "missing keys (1): 1.bias" in text
    assert "unexpected keys (1): extra.weight" in text
    assert "0.weight: checkpoint (4, 2) vs model (3, 2)" in text


def test_corrupt_safetensors_is_a_clear_error(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "m.safetensors"
    save_file({"w": torch.zeros(100)}, str(path))
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(CheckpointError, match="not a readable safetensors file.*zoo download NAME --force"):
        load_safetensors(path)


class Evil:
    def __reduce__(self):
        return (print, ("code ran",))


def test_pickles_load_weights_only(tmp_path):
    good = tmp_path / "good.bin"
    torch.save({"w": torch.ones(2)}, good)
    assert torch.equal(load_pickle(good)["w"], torch.ones(2))
    evil = tmp_path / "evil.bin"
    torch.save({"w": Evil()}, evil)
    with pytest.raises(CheckpointError, match="weights-only pickle"):
        load_pickle(evil)


def test_no_init_skips_random_init_and_restores():
    torch.manual_seed(0)
    with no_init():
        torch.nn.Linear(4, 4)
        state = torch.random.get_rng_state()
    torch.manual_seed(0)
    assert torch.equal(torch.random.get_rng_state(), state)  # no draws happened
    a = torch.nn.Linear(4, 4)
    assert not torch.equal(a.weight, torch.nn.Linear(4, 4).weight)  # init works again
