"""Plugin discovery, broken plugins, clashes, misspelled hooks, names, listing."""

from __future__ import annotations

import subprocess
import sys
import types

import pytest

import zoo
from zoo.errors import PluginError, UnknownModelError
from zoo.hookspecs import hookimpl
from zoo.registry import ModelName, PluginLoadWarning, Registry, parse_model_name
from zoo.testing.plugins import isolated_registry, temporary_plugin

BASE = {"kind": "tokenizer", "plugin": "toy", "modality": "image", "license": {"code": "MIT"}}


def cards_plugin(*names, default=None, module_name="cards_plugin"):
    mod = types.ModuleType(module_name)

    @hookimpl
    def register_cards(register):
        for n in names:
            register({**BASE, "name": n, "default": n == default})

    mod.register_cards = register_cards
    return mod


@pytest.mark.parametrize(
    "name, expected",
    [
        ("flextok", ModelName("flextok", None, None, None)),
        ("flextok.d18_d28_dfn", ModelName("flextok", "d18_d28_dfn", None, None)),
        ("FlexTok.D12_D12_IN1K", ModelName("flextok", "d12_d12_in1k", None, None)),
        ("flextok.d12_d12_in1k@abc", ModelName("flextok", "d12_d12_in1k", "abc", None)),
        ("flextok@v1", ModelName("flextok", None, "v1", None)),
        ("one_d_piece.l_256", ModelName("one_d_piece", "l_256", None, None)),
        ("hf-hub:EPFL-VILAB/flextok_d12_d12_in1k", ModelName(None, None, None, "EPFL-VILAB/flextok_d12_d12_in1k")),
        ("hf-hub:EPFL-VILAB/flextok_d12_d12_in1k@0123abcd", ModelName(None, None, "0123abcd", "EPFL-VILAB/flextok_d12_d12_in1k")),
    ],
)
def test_parse_model_name(name, expected):
    assert parse_model_name(name) == expected


@pytest.mark.parametrize("bad", ["", "   ", "hf-hub:noslash", "hf-hub:a/b/c"])
def test_parse_model_name_rejects(bad):
    with pytest.raises(UnknownModelError):
        parse_model_name(bad)


def test_broken_plugin_warns_and_the_rest_load(monkeypatch):
    bad = types.ModuleType("bad_plugin")

    @hookimpl
    def register_cards(register):
        raise RuntimeError("boom in plugin")

    bad.register_cards = register_cards
    with isolated_registry(cards_plugin("toy.a", "toy.b"), bad) as registry:
        with pytest.warns(PluginLoadWarning, match="boom in plugin.*ZOO_STRICT_PLUGINS"):
            names = zoo.list_models()
        assert names == ["toy.a", "toy.b"]
        assert [p.name for p in registry.failed] == ["bad_plugin"]


def test_strict_mode_makes_a_broken_plugin_fatal(monkeypatch):
    monkeypatch.setenv("ZOO_STRICT_PLUGINS", "1")
    bad = types.ModuleType("bad_plugin")

    @hookimpl
    def register_cards(register):
        raise RuntimeError("boom")

    bad.register_cards = register_cards
    with isolated_registry(bad):
        with pytest.raises(PluginError, match="boom"):
            zoo.list_models()


def test_broken_entry_point_is_reported(monkeypatch):
    from importlib import metadata

    good = metadata.EntryPoint("catalogue", "zoo.catalogue", "zoo.plugins")
    broken = metadata.EntryPoint("broken", "no_such_module_zoo_test", "zoo.plugins")
    monkeypatch.setattr(metadata, "entry_points", lambda group=None: [broken, good] if group == "zoo.plugins" else [])
    with pytest.warns(PluginLoadWarning, match="'broken' .*ModuleNotFoundError"):
        registry = Registry()
    assert [p.name for p in registry.plugins()] == ["broken", "catalogue"]
    assert registry.plugins()[0].error.startswith("ModuleNotFoundError")
    monkeypatch.setenv("ZOO_STRICT_PLUGINS", "1")
    with pytest.raises(PluginError, match="no_such_module_zoo_test"):
        Registry()


def test_two_plugins_registering_one_name_is_reported_naming_both_and_the_second_skipped(monkeypatch):
    plugins = (cards_plugin("toy.same", module_name="first_plugin"), cards_plugin("toy.same", module_name="second_plugin"))
    with isolated_registry(*plugins):
        with pytest.warns(PluginLoadWarning, match="'toy.same' is registered twice: by first_plugin .* and by second_plugin"):
            assert zoo.list_models() == ["toy.same"]
        assert zoo.info("toy.same")["registered_by"] == "first_plugin"
    monkeypatch.setenv("ZOO_STRICT_PLUGINS", "1")
    with isolated_registry(*plugins):
        with pytest.raises(PluginError, match="'toy.same' is registered twice"):
            zoo.list_models()


def test_misspelled_hook_implementation_is_caught(monkeypatch):
    typo = types.ModuleType("typo_plugin")

    @hookimpl
    def register_card(register):  # missing "s"
        pass

    typo.register_card = register_card
    with isolated_registry() as registry:
        with pytest.warns(PluginLoadWarning, match="unknown hook implementation.*register_card"):
            assert registry.register_plugin(typo, "typo_plugin") is False
        assert not registry.pm.has_plugin("typo_plugin")
        monkeypatch.setenv("ZOO_STRICT_PLUGINS", "1")
        with pytest.raises(PluginError, match="register_card"):
            registry.register_plugin(typo, "typo_plugin")


def test_hook_with_wrong_argument_name_is_caught():
    wrong = types.ModuleType("wrong_args")

    @hookimpl
    def register_cards(add):  # the spec's argument is "register"
        pass

    wrong.register_cards = register_cards
    with isolated_registry() as registry:
        with pytest.warns(PluginLoadWarning, match="wrong_args"):
            assert registry.register_plugin(wrong, "wrong_args") is False


def test_builder_hook_and_builder_clash():
    def builders_plugin(name):
        mod = types.ModuleType(name)

        @hookimpl
        def register_builders(register):
            register(types.SimpleNamespace(name="toy"))

        mod.register_builders = register_builders
        return mod

    with isolated_registry(builders_plugin("one")) as registry:
        assert list(registry.builders) == ["toy"]
    with isolated_registry(builders_plugin("one"), builders_plugin("two")) as registry:
        with pytest.warns(PluginLoadWarning, match="builder 'toy' is registered twice: by one and by two"):
            assert list(registry.builders) == ["toy"]


def test_missing_builder_is_a_clear_error():
    with isolated_registry(cards_plugin("toy.a")):
        with pytest.raises(PluginError, match="needs the builder 'toy'.*Install the plugin"):
            zoo.load("toy.a")


def test_register_commands_hook_adds_a_cli_command():
    import click
    from click.testing import CliRunner

    from zoo import cli as cli_mod

    mod = types.ModuleType("cmd_plugin")

    @hookimpl
    def register_commands(cli):
        @cli.command("hello-zoo")
        def hello():
            click.echo("hello from a plugin")

    mod.register_commands = register_commands
    with isolated_registry(mod):
        cli_mod._add_plugin_commands()
        try:
            result = CliRunner().invoke(cli_mod.cli, ["hello-zoo"])
        finally:
            cli_mod.cli.commands.pop("hello-zoo", None)
    assert result.exit_code == 0 and "hello from a plugin" in result.output


def test_family_default_and_unknown_names():
    with isolated_registry(cards_plugin("toy.small", "toy.base", "toy.large", default="toy.base"), cards_plugin("other.x", module_name="p2")):
        assert zoo.get_card("toy").name == "toy.base"
        assert zoo.get_card("other").name == "other.x"  # a lone card is its family's default
        with pytest.raises(UnknownModelError, match="Did you mean: toy.small"):
            zoo.load("toy.smal")
        with pytest.raises(UnknownModelError, match="Did you mean: toy"):
            zoo.load("tyo")
    with isolated_registry(cards_plugin("toy.a", "toy.b")):
        with pytest.raises(UnknownModelError, match="no default model; pick one of: toy.a, toy.b"):
            zoo.load("toy")


def test_two_defaults_in_a_family_is_reported_and_the_second_plugin_skipped():
    with isolated_registry(cards_plugin("toy.a", default="toy.a", module_name="p1"), cards_plugin("toy.b", default="toy.b", module_name="p2")):
        with pytest.warns(PluginLoadWarning, match="several default cards"):
            assert zoo.list_models() == ["toy.a"]


def test_list_models_wildcards_natural_sort_and_filters():
    names = ["toy.b16", "toy.b2", "toy.b128", "toy.l32", "other.x"]
    gen = types.ModuleType("gen")

    @hookimpl
    def register_cards(register):
        register({**BASE, "name": "gen.ar", "kind": "generator"})

    gen.register_cards = register_cards
    with isolated_registry(cards_plugin(*names), gen):
        assert zoo.list_models() == ["gen.ar", "other.x", "toy.b2", "toy.b16", "toy.b128", "toy.l32"]
        assert zoo.list_models("toy.b*") == ["toy.b2", "toy.b16", "toy.b128"]
        assert zoo.list_models("*.?32") == ["toy.l32"]
        assert zoo.list_models(kind="generator") == ["gen.ar"]
        assert zoo.list_models("TOY.B2") == ["toy.b2"]


def test_plugins_lists_hooks_and_distribution():
    records = {p["name"]: p for p in zoo.plugins()}
    assert records["catalogue"]["hooks"] == ["register_cards"]
    assert records["catalogue"]["distribution"] == "zoo"


def test_import_zoo_and_list_models_do_not_import_torch():
    code = "import sys, zoo; zoo.list_models(); zoo.info; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", out.stderr


def test_temporary_plugin_is_removed_afterwards():
    plugin = cards_plugin("temp.only")
    with temporary_plugin(plugin):
        assert "temp.only" in zoo.list_models()
    assert "temp.only" not in zoo.list_models()


def test_temporary_plugin_leaves_an_installed_plugin_alone():
    plugin = cards_plugin("installed.only")
    with isolated_registry(plugin) as registry:
        with temporary_plugin(plugin):
            assert "installed.only" in zoo.list_models()
        assert registry.pm.is_registered(plugin)  # still there after the block
        assert "installed.only" in zoo.list_models()


@pytest.mark.parametrize("card, summary", [
    ({"kind": "token_reducer"}, "code: MIT; weights: none (this model has no weights)"),
    ({"weights_available": False}, "code: MIT; weights: none published"),
    ({"hub_repo": "org/toy", "files": ["model.safetensors"]}, "code: MIT; weights: MIT"),  # weights with no licence of their own: the code's
    ({"hub_repo": "org/toy", "files": ["model.safetensors"], "license": {"code": "MIT", "weights": "CC-BY-NC-4.0"}}, "code: MIT; weights: CC-BY-NC-4.0"),
    ({"kind": "token_reducer", "license": {"code": "MIT", "weights": "Apache-2.0"}}, "code: MIT; weights: Apache-2.0"),
])
def test_info_licence_summary_says_when_there_are_no_weights(card, summary):
    mod = types.ModuleType("licence_plugin")

    @hookimpl
    def register_cards(register):
        register({**BASE, "name": "toy.one", "default": True, **card})

    mod.register_cards = register_cards
    with isolated_registry(mod):
        assert zoo.info("toy.one")["license_summary"] == summary
