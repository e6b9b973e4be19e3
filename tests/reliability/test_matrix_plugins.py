"""Matrix group: plugins and cards. A plugin with a bad or duplicate card is reported and all of its
registrations are skipped; the other plugins keep working; strict mode fails with one clean error."""

from __future__ import annotations

import json
import types
import warnings

from click.testing import CliRunner

import zoo
from zoo.errors import CardError, PluginError
from zoo.hookspecs import hookimpl
from zoo.registry import PluginLoadWarning
from zoo.testing.plugins import isolated_registry

from .matrix import Row, check_row, params

BASE = {"kind": "tokenizer", "plugin": "toy", "modality": "image", "license": {"code": "MIT"}}


def plugin(name, *cards, builders=(), raise_in_cards=None):
    """A plugin module registering raw ``cards`` (dicts or anything) and ``builders``."""
    mod = types.ModuleType(name)

    @hookimpl
    def register_cards(register):
        for card in cards:
            register(card)
        if raise_in_cards is not None:
            raise raise_in_cards

    @hookimpl
    def register_builders(register):
        for b in builders:
            register(b)

    mod.register_cards, mod.register_builders = register_cards, register_builders
    return mod


def card(name, **extra):
    return {**BASE, "name": name, **extra}


GOOD = plugin("good_plugin", card("good.a"), card("good.b"))


def survey(*plugins, builders=False):
    """Load ``plugins`` in a fresh registry: the models listed, the warnings, the failed plugins."""
    with isolated_registry(*plugins) as registry, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        models = zoo.list_models()
        names = sorted(registry.builders) if builders else None
        as_json = json.dumps([zoo.info(n) for n in models])
        failed = {p.name: p.error for p in registry.plugins() if p.error}
        listed = [p.name for p in registry.plugins()]
    assert len(listed) == len(set(listed)), f"`zoo plugins` lists a plugin twice: {listed}"
    messages = [str(w.message) for w in caught if issubclass(w.category, PluginLoadWarning)]
    return types.SimpleNamespace(models=models, warnings=messages, failed=failed, builders=names, json=as_json)


def skipped(plugin_name, *words, models=("good.a", "good.b"), builders=None):
    """The bad plugin is reported (warning + `zoo plugins` error naming ``words``), none of its
    cards are listed, and the good plugin's are."""

    def check(s):
        assert s.models == list(models), s.models
        assert plugin_name in s.failed, s.failed
        text = " ".join(s.warnings).lower()
        assert all(w.lower() in text for w in words), s.warnings
        assert builders is None or s.builders == builders, s.builders
        return True

    return check


def strict(*plugins):
    def call(env):
        env.monkeypatch.setenv("ZOO_STRICT_PLUGINS", "1")
        with isolated_registry(*plugins):
            return zoo.list_models()

    return call


def strict_cli(*plugins):
    def call(env):
        from zoo.cli import cli

        env.monkeypatch.setenv("ZOO_STRICT_PLUGINS", "1")
        with isolated_registry(*plugins):
            return CliRunner().invoke(cli, ["list"])

    return call


class _Builder:
    def __init__(self, name):
        self.name = name


ROWS = [
    Row("duplicate-across-plugins", lambda env: survey(GOOD, plugin("dup_plugin", card("good.a"), card("dup.x"))),
        check=skipped("dup_plugin", "'good.a' is registered twice", "good_plugin", "dup_plugin")),
    Row("duplicate-within-plugin", lambda env: survey(GOOD, plugin("twice_plugin", card("tw.a"), card("tw.a"))),
        check=skipped("twice_plugin", "registered twice", "twice_plugin itself")),
    Row("half-valid-plugin-skipped-whole", lambda env: survey(GOOD, plugin("half_plugin", card("half.ok"), card("half.bad", kind="tokeniser"))),
        check=skipped("half_plugin", "half.bad", "kind")),
    Row("card-missing-required-key", lambda env: survey(GOOD, plugin("nokind", {k: v for k, v in card("nk.a").items() if k != "kind"})),
        check=skipped("nokind", "missing required key 'kind'")),
    Row("card-unknown-key", lambda env: survey(GOOD, plugin("typo_key", card("tk.a", lisence="MIT"))),
        check=skipped("typo_key", "lisence")),
    Row("card-bad-name", lambda env: survey(GOOD, plugin("badname", card("Bad Name"))),
        check=skipped("badname", "family.tag")),
    Row("card-name-without-tag", lambda env: survey(GOOD, plugin("notag", card("notag"))),
        check=skipped("notag", "family.tag")),
    Row("card-wrong-type", lambda env: survey(GOOD, plugin("wrongtype", card("wt.a", files="model.safetensors"))),
        check=skipped("wrongtype", "expected a list")),
    Row("card-not-a-mapping", lambda env: survey(GOOD, plugin("strcard", "just a string")),
        check=skipped("strcard", "expected a mapping")),
    Row("card-non-json-metrics", lambda env: survey(GOOD, plugin("objmetrics", card("om.a", metrics={"psnr": object()}))),
        check=skipped("objmetrics", "metrics", "json")),
    Row("card-nan-metric", lambda env: survey(GOOD, plugin("nanmetric", card("nm.a", metrics={"psnr": float("nan")}))),
        check=skipped("nanmetric", "metrics")),
    Row("card-inf-in-config", lambda env: survey(GOOD, plugin("infconfig", card("ic.a", config={"width": float("inf")}))),
        check=skipped("infconfig", "config", "json")),
    Row("card-revision-without-repo", lambda env: survey(GOOD, plugin("revnorepo", card("rn.a", revision="main"))),
        check=skipped("revnorepo", "'revision' given without 'hub_repo'")),
    Row("card-bad-sha256", lambda env: survey(GOOD, plugin("badsha", card("bs.a", hub_repo="o/r", revision="a" * 40, files=["w.bin"],
                                                                       file_info={"w.bin": {"sha256": "xyz"}}))),
        check=skipped("badsha", "sha256")),
    Row("hook-raises", lambda env: survey(GOOD, plugin("boom", card("boom.a"), raise_in_cards=RuntimeError("plugin bug"))),
        check=skipped("boom", "plugin bug", "register_cards")),
    Row("two-defaults-across-plugins", lambda env: survey(GOOD, plugin("d1", card("fam.a", default=True)), plugin("d2", card("fam.b", default=True))),
        check=skipped("d2", "several default cards", models=("fam.a", "good.a", "good.b"))),
    Row("builder-without-name", lambda env: survey(GOOD, plugin("nameless", builders=[_Builder("")]), builders=True),
        check=skipped("nameless", "builder without a name", builders=[])),
    Row("duplicate-builder", lambda env: survey(plugin("b1", card("good.a"), card("good.b"), builders=[_Builder("toy")]),
                                                plugin("b2", builders=[_Builder("toy"), _Builder("other")]), builders=True),
        check=skipped("b2", "builder 'toy' is registered twice", builders=["toy"])),
    Row("strict-duplicate-raises", strict(GOOD, plugin("dup2", card("good.a"))), PluginError, ("registered twice", "dup2")),
    Row("strict-invalid-card-raises", strict(GOOD, plugin("inv", card("inv.a", kind="x"))), PluginError, ("inv", "kind")),
    Row("strict-cli-one-clean-line", strict_cli(GOOD, plugin("dup3", card("good.b"))),
        check=lambda r: r.exit_code == 1 and r.output.startswith("Error: ") and r.output.count("\n") == 1
        and "Traceback" not in r.output and "registered twice" in r.output),
    Row("missing-builder-named", lambda env: _load_in(GOOD, "good.a"), PluginError, ("needs the builder 'toy'", "install")),
    Row("invalid-card-direct", lambda env: __import__("zoo.cards").cards.card_from_dict(card("x.y", kind="nope")), CardError, ("kind",)),
]


def _load_in(plugin_module, name):
    with isolated_registry(plugin_module):
        return zoo.load(name)


@params(ROWS)
def test_plugins(row, env):
    check_row(row, env)


def test_misspelled_hook_is_rejected_not_fatal():
    typo = types.ModuleType("typo_hooks")

    @hookimpl
    def register_card(register):  # missing "s"
        pass

    typo.register_card = register_card
    with isolated_registry(GOOD) as registry, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert registry.register_plugin(typo, "typo_hooks") is False
        assert zoo.list_models() == ["good.a", "good.b"]
    assert any("unknown hook implementation" in str(w.message) for w in caught)


def test_strict_mode_console_script_prints_one_clean_line(monkeypatch, capsys):
    """`ZOO_STRICT_PLUGINS=1 zoo list` with a plugin whose entry point fails to import: one
    `Error:` line on stderr, exit status 1, no traceback (the registry fails before click runs)."""
    from importlib import metadata

    import pytest

    from zoo import cli as cli_module
    from zoo import registry as registry_module

    broken = metadata.EntryPoint(name="broken", value="zoo_h13_no_such_module", group="zoo.plugins")
    monkeypatch.setattr(registry_module.metadata, "entry_points", lambda group: [broken])
    monkeypatch.setenv("ZOO_STRICT_PLUGINS", "1")
    previous = registry_module.set_registry(None)
    try:
        with pytest.raises(SystemExit) as info:
            cli_module.main(["list"])
    finally:
        registry_module.set_registry(previous)
    err = capsys.readouterr().err
    assert info.value.code == 1
    assert err.startswith("Error: zoo plugin 'broken'") and err.count("\n") == 1 and "Traceback" not in err
    assert "zoo_h13_no_such_module" in err
