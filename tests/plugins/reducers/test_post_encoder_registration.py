"""MMTok, HiPrune and DyMU: builder, cards (needs, training, licences) and the docs examples."""

from pathlib import Path

import pytest
import torch
from zoo_plugins.reducers.builder import ReducerConfig, ReducersBuilder
from zoo_plugins.reducers.reducers import DyMU, HiPrune, MMTok
from zoo_plugins.reducers.types import ReducerError

import zoo

EXAMPLES = Path(__file__).resolve().parents[3] / "docs" / "examples"
METHODS = [("mmtok", MMTok), ("hiprune", HiPrune), ("dymu", DyMU)]
REFERENCE_LICENCE = {"mmtok": "Ironieser/MMTok, Zoom Communications) is Apache-2.0", "hiprune": "(Danielement321/HiPrune) is MIT",
                     "dymu": "(MikeWangWZHL/dymu, an open_clip fork) is MIT"}


@pytest.mark.parametrize("policy,cls", METHODS)
def test_builder_and_card(policy, cls):
    assert type(ReducersBuilder().build(ReducerConfig(policy=policy))) is cls
    if f"{policy}.default" not in zoo.list_models(kind="token_reducer"):
        pytest.skip("the reducers plugin's cards are not registered in this environment")
    reducer = zoo.load(policy)
    assert type(reducer) is cls and reducer.post_encoder and not reducer.in_model
    card = zoo.info(f"{policy}.default")
    assert card["config"]["policy"] == policy and card["config"]["needs"] and card["config"]["training"]
    assert card["license"]["code"] == "Apache-2.0" and REFERENCE_LICENCE[policy] in card["license"]["notes"]
    assert card["parity"] and card["paper"]["url"].startswith("https://arxiv.org/abs/")


@pytest.mark.parametrize("policy,cls", METHODS)
def test_post_encoder_only(policy, cls):
    with pytest.raises(ReducerError, match="reduce"):
        cls().apply(torch.nn.Linear(2, 2))


@pytest.mark.parametrize("name,shape", [("mmtok", (2, 64)), ("hiprune", (2, 192))])
def test_docs_examples_run(name, shape):
    ns: dict = {}
    exec(compile((EXAMPLES / f"{name}.py").read_text(), f"{name}.py", "exec"), ns)  # noqa: S102 - the docs example
    assert tuple(ns["out"].indices.shape) == shape


def test_dymu_docs_example_runs():
    ns: dict = {}
    exec(compile((EXAMPLES / "dymu.py").read_text(), "dymu.py", "exec"), ns)  # noqa: S102 - the docs example
    out = ns["out"]
    assert out.tokens.shape[1] == int(out.lengths.max()) and 0.0 < ns["threshold"] < 1.0
    assert out.sizes.sum(dim=(1, 2)).tolist() == [577.0, 577.0]
