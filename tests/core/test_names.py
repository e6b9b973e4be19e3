"""Names: a bare family lists its models, generator cards read like their tokenizers, former
names keep working as aliases (one note per name), misspelled filters are errors."""

from __future__ import annotations

import types
import warnings

import pytest

import zoo
from zoo.errors import CardError, InputError
from zoo.hookspecs import hookimpl
from zoo.registry import Registry, RenamedModelWarning
from zoo.testing.plugins import isolated_registry


def cards_plugin(name: str, module_name: str, **fields):
    mod = types.ModuleType(module_name)

    @hookimpl
    def register_cards(register):
        register({"name": name, "kind": "tokenizer", "plugin": "toy", "modality": "image",
                  "license": {"code": "MIT"}, **fields})

    mod.register_cards = register_cards
    return mod


RENAMED = {
    "maskgit.titok_l32": "maskgit.titok_l_32",
    "maskgit.titok_b64": "maskgit.titok_b_64",
    "maskgit.titok_s128": "maskgit.titok_s_128",
    "maskgit.one_d_piece_l256": "maskgit.one_d_piece_l_256",
    "maskgit.one_d_piece_b256": "maskgit.one_d_piece_b_256",
    "maskgit.one_d_piece_s256": "maskgit.one_d_piece_s_256",
}


@pytest.mark.parametrize("family", ["titok", "one_d_piece", "maskgit", "rar", "wavtokenizer", "tome", "flextok"])
def test_a_bare_family_lists_the_family(family):
    assert zoo.list_models(family) == zoo.list_models(f"{family}.*")
    assert zoo.list_models(family) and all(n.startswith(f"{family}.") for n in zoo.list_models(family))
    assert zoo.list_models(family.upper()) == zoo.list_models(family)


def test_a_bare_family_does_not_match_another_family_by_prefix():
    assert "flextok_vae.c16" not in zoo.list_models("flextok")
    assert zoo.list_models("flextok_vae") == zoo.list_models("flextok_vae.*")
    assert zoo.list_models("no_such_family") == []


@pytest.mark.parametrize("old, new", sorted(RENAMED.items()))
def test_renamed_generators_load_by_old_name_with_a_note(old, new):
    registry = zoo.registry.get_registry()
    registry._warned_aliases.discard(old)
    with pytest.warns(RenamedModelWarning, match=rf"{old!r} is now called {new!r}"):
        assert zoo.get_card(old).name == new
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the note is shown once per name
        assert zoo.get_card(old).name == new
    assert old not in zoo.list_models()
    assert old in zoo.get_card(new).aliases
    assert zoo.list_models(old) == [new]  # a former name as a pattern finds the card it now names
    assert zoo.list_models(old, kind="tokenizer") == []


def test_generator_cards_read_like_their_tokenizers():
    """Each MaskGIT generator's tag is its tokenizer's name with the dot replaced by '_'."""
    for name in zoo.list_models("maskgit"):
        tokenizer = zoo.get_card(name).config["tokenizer"]
        assert name == f"maskgit.{tokenizer.replace('.', '_')}", (name, tokenizer)


def test_alias_clashing_with_a_card_skips_the_plugin_that_claims_it():
    clash = cards_plugin("toy.new", module_name="clash", aliases=["toy.old"])
    other = cards_plugin("toy.old", module_name="other")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with isolated_registry(other, clash) as registry:
            assert isinstance(registry, Registry)
            assert "toy.new" not in registry.cards and "toy.old" in registry.cards
            assert any("another card's name" in (p.error or "") for p in registry.failed)


@pytest.mark.parametrize("alias", ["Bad Name", "toy.a"])
def test_invalid_alias_is_a_card_error(alias):
    from zoo.cards import card_from_dict

    with pytest.raises(CardError, match="alias"):
        card_from_dict({"name": "toy.a", "kind": "tokenizer", "plugin": "p", "modality": "image",
                        "license": {"code": "MIT"}, "aliases": [alias]})


@pytest.mark.parametrize(
    "kwargs, suggestion",
    [
        ({"kind": "tokenzer"}, "Did you mean 'tokenizer'?"),
        ({"kind": "reducer"}, "Valid kinds: tokenizer, generator, token_reducer"),
        ({"modality": "imgae"}, "Did you mean 'image'?"),
        ({"modality": "speech"}, "Valid modalitys: image, video, audio"),
    ],
)
def test_misspelled_filters_are_errors_that_name_the_valid_values(kwargs, suggestion):
    with pytest.raises(InputError, match="unknown") as info:
        zoo.list_models(**kwargs)
    assert suggestion in str(info.value)


@pytest.mark.parametrize("option, value", [("--kind", "tokenzer"), ("--modality", "imgae")])
def test_cli_misspelled_filters_exit_with_the_valid_values(option, value):
    from click.testing import CliRunner

    from zoo.cli import cli

    result = CliRunner().invoke(cli, ["list", option, value])
    assert result.exit_code == 2
    assert f"{value!r} is not one of" in result.output and ("'tokenizer'" in result.output or "'image'" in result.output)


def test_cli_prints_the_rename_note_as_one_line():
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "zoo.cli", "list", "maskgit.titok_l32"], capture_output=True, text=True,
                         check=False)
    assert out.returncode == 0
    assert out.stderr.splitlines()[0] == ("Warning: model 'maskgit.titok_l32' is now called 'maskgit.titok_l_32'; "
                                          "the old name still works but will be removed: use 'maskgit.titok_l_32'")
    assert out.stdout.splitlines()[1].startswith("maskgit.titok_l_32 *")
