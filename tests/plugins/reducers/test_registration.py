"""Builder, cards and the third-party adapter interface."""

import pytest
import torch
from zoo_plugins.reducers.adapters.base import (
    ModelAdapter,
    ReducerHandle,
    adapters,
    find_adapter,
    register_adapter,
    unregister_adapter,
)
from zoo_plugins.reducers.builder import ReducerConfig, ReducersBuilder
from zoo_plugins.reducers.reducers import DivPrune, ToMe
from zoo_plugins.reducers.types import ReducerError


@pytest.mark.parametrize("policy,cls", [("tome", "ToMe"), ("diffrate", "DiffRate"), ("evit", "EViT"), ("mctf", "MCTF"),
                                        ("divprune", "DivPrune")])
def test_builder_builds_each_policy(policy, cls):
    reducer = ReducersBuilder().build(ReducerConfig(policy=policy))
    assert type(reducer).__name__ == cls


def test_builder_unknown_policy():
    from zoo.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown reducer policy"):
        ReducersBuilder().build(ReducerConfig(policy="nope"))


def test_tome_prop_attn_from_config():
    assert ReducersBuilder().build(ReducerConfig(policy="tome", prop_attn=False)).prop_attn is False


class _Toy(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(4, 4)


class _ToyAdapter(ModelAdapter):
    """A third-party adapter: merges tokens of _Toy with the policy, after its linear layer."""

    name = "toy"

    def supports(self, model):
        return isinstance(model, _Toy)

    def patch(self, model, policy, *, trace_source=False, backend=None):
        from zoo_plugins.reducers.types import Signals

        policy.bind(1)

        def forward(x):
            x = model.lin(x)
            plan = policy.plan(0, Signals(0, x, None, 0, keys=x))
            return plan.merge(x, None)[0] if plan is not None else x

        model.forward = forward
        return ReducerHandle(model, None, [lambda: model.__dict__.pop("forward")])


def test_third_party_adapter_is_found_and_used():
    register_adapter(_ToyAdapter())
    try:
        model = _Toy()
        assert find_adapter(model).name == "toy"
        handle = ToMe().apply(model, r=2)
        assert model(torch.randn(1, 6, 4)).shape == (1, 4, 4)
        handle.remove()
        assert model.__dict__.get("forward") is None
    finally:
        unregister_adapter("toy")
    assert "toy" not in [a.name for a in adapters()]


def test_no_adapter_error_names_the_fix():
    with pytest.raises(ReducerError, match="register_adapter"):
        ToMe().apply(torch.nn.Linear(2, 2), r=1)
    with pytest.raises(ReducerError, match="no reducer adapter called"):
        find_adapter(torch.nn.Linear(2, 2), name="missing")


def test_zoo_load_returns_reducers():
    import zoo_plugins.reducers as plugin

    import zoo
    from zoo.testing.plugins import temporary_plugin

    registry = zoo.registry.get_registry() if hasattr(zoo, "registry") else None
    already = registry is not None and "reducers" in getattr(registry, "builders", {})
    ctx = temporary_plugin(plugin, "reducers-test") if not already else _nullcontext()
    with ctx:
        names = zoo.list_models(kind="token_reducer")
        assert {"tome.default", "diffrate.default", "evit.default", "mctf.default", "divprune.default"} <= set(names)
        reducer = zoo.load("tome")
        assert isinstance(reducer, ToMe) and reducer.prop_attn is True
        assert isinstance(zoo.load("divprune"), DivPrune)
        assert zoo.load("tome", prop_attn=False).prop_attn is False


class _nullcontext:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return None


def test_reduce_viz_draws_groups(tmp_path, timm):
    from PIL import Image
    from zoo_plugins.reducers.viz import merge_viz

    img = Image.fromarray((torch.rand(64, 64, 3) * 255).byte().numpy())
    out = merge_viz(img, vit="vit_tiny_patch16_224", r=1, img_size=64)
    assert out.size == (64, 64)
    import numpy as np

    # 16 patches merged down to a few tokens: a few group colours (plus the white borders)
    colours = np.unique(np.asarray(out).reshape(-1, 3), axis=0)
    assert 2 <= len(colours) < 16


def test_reduce_viz_command(tmp_path, timm):
    click = pytest.importorskip("click")
    import zoo_plugins.reducers as plugin
    from click.testing import CliRunner
    from PIL import Image

    cli = click.Group()
    plugin.register_commands(cli)
    src, dst = tmp_path / "in.png", tmp_path / "viz.png"
    Image.new("RGB", (32, 32), "blue").save(src)
    with pytest.MonkeyPatch.context() as mp:
        from zoo_plugins.reducers import viz

        real = viz.merge_viz
        mp.setattr(viz, "merge_viz", lambda image, **kw: real(image, **{**kw, "vit": "vit_tiny_patch16_224"}, img_size=32))
        result = CliRunner().invoke(cli, ["reduce-viz", str(src), "--r", "2", "--out", str(dst)])
    assert result.exit_code == 0, result.output
    assert Image.open(dst).size == (32, 32)


def test_third_party_adapter_through_the_register_reducer_adapters_hook(monkeypatch):
    import types

    from zoo.hookspecs import hookimpl
    from zoo.testing.plugins import temporary_plugin
    from zoo_plugins.reducers.adapters import base

    plugin = types.ModuleType("toy_adapter_plugin")

    @hookimpl
    def register_reducer_adapters(register):
        register(_ToyAdapter())

    plugin.register_reducer_adapters = register_reducer_adapters
    monkeypatch.setattr(base, "_ADAPTERS", {})
    monkeypatch.setattr(base, "_builtin_done", False)
    with temporary_plugin(plugin):
        assert find_adapter(_Toy()).name == "toy"
        names = [a.name for a in adapters()]
        assert names.index("toy") < min(names.index("timm_vit"), names.index("zoo_blocks"))  # hook adapters precede built-ins
        assert "transformers_vlm" in names  # the reducers plugin's own hook adapter (VLMs)
