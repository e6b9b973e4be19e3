"""The whole site builds with ``mkdocs build --strict`` and holds what the issue asks for."""

from __future__ import annotations

import re

import zoo
from zoo.cli import cli

API_OBJECTS = {
    # reference page -> objects whose documentation must be on it (mkdocstrings anchors)
    "reference/api": ["zoo.api.load", "zoo.api.list_models", "zoo.api.info", "zoo.api.get_card", "zoo.registry.parse_model_name"],
    "reference/cards": ["zoo.cards.ModelCard", "zoo.cards.License", "zoo.cards.card_from_dict"],
    "reference/interfaces": ["zoo.interfaces.Tokens", "zoo.interfaces.Tokenizer", "zoo.interfaces.Generator", "zoo.interfaces.TokenReducer", "zoo.interfaces.as_tokens"],
    "reference/nn": ["zoo.nn.attention.attention", "zoo.nn.attention.use_backend", "zoo.nn.masks.CausalMask", "zoo.nn.masks.BlockDiagonalMask"],
    "reference/hub": ["zoo.hub.resolve_files", "zoo.hub.download_file"],
    "reference/config": ["zoo.config.merge_config"],
    "reference/weights": ["zoo.weights.load_state_dict_strict", "zoo.weights.load_safetensors"],
    "reference/builders": ["zoo.builders.ModelBuilder", "zoo.builders.CheckpointFiles", "zoo.builders.Checkpoint"],
    "reference/media": ["zoo.media.image.load_images", "zoo.media.image.save_grid", "zoo.media.audio.load_audio",
                        "zoo.compat.torchvision.ensure_torchvision"],
    "reference/testing": ["zoo.testing.weights.seeded_state_dict", "zoo.testing.weights.state_manifest",
                          "zoo.testing.hub.HubStandIn", "zoo.testing.plugins.temporary_plugin"],
    "plugins/hooks": ["zoo.hookspecs.register_cards", "zoo.hookspecs.register_builders", "zoo.hookspecs.register_commands"],
}


def _html(site, page: str) -> str:
    return (site.root / page / "index.html").read_text(encoding="utf-8")


def test_strict_build_succeeds(built_site):
    assert (built_site.root / "index.html").is_file()
    assert "WARNING" not in built_site.log


def test_catalogue_page_lists_every_model_including_the_installed_plugin(built_site):
    html = _html(built_site, "models")
    rows = re.findall(r'<td>(?:<strong>)?<a href="[^"]+"><code>([a-z0-9_.]+)</code></a>', html)
    assert sorted(rows) == sorted(zoo.list_models() + list(built_site.extra_models))
    assert (built_site.root / "models" / "patchvq" / "index.html").is_file()


def test_every_family_has_a_page_in_the_nav(built_site):
    html = _html(built_site, "models")
    for family in {n.split(".")[0] for n in zoo.list_models()} | {"patchvq"}:
        assert (built_site.root / "models" / family / "index.html").is_file(), family
        assert f'href="{family}/"' in html, f"{family} missing from the Models navigation"


def test_api_reference_is_generated_from_docstrings(built_site):
    for page, objects in API_OBJECTS.items():
        html = _html(built_site, page)
        for obj in objects:
            assert f'id="{obj}"' in html, f"{obj} is not documented on {page}"


def test_cli_reference_is_generated_from_the_click_group(built_site):
    html = _html(built_site, "reference/cli")
    assert list(cli.commands), "the zoo CLI has commands"
    for name, command in cli.commands.items():
        assert f"zoo {name}" in html, f"`zoo {name}` missing from the CLI reference"
        for param in command.params:
            for opt in getattr(param, "opts", []):
                if opt.startswith("--"):
                    assert opt in html, f"`zoo {name} {opt}` missing from the CLI reference"


def test_cli_reference_shows_plugin_commands(built_site):
    import click

    from zoo.registry import get_registry

    group = click.Group("probe")
    for impl in get_registry().pm.hook.register_commands.get_hookimpls():
        impl.function(cli=group)
    html = _html(built_site, "reference/cli")
    for name in group.commands:
        assert f"zoo {name}" in html, f"plugin command `zoo {name}` missing from the CLI reference"


def test_write_a_plugin_includes_the_example_package_sources(built_site):
    html = _html(built_site, "plugins/write-a-plugin")
    assert "zoo.plugins" in html and "patchvq" in html
    assert "PatchVQBuilder" in html and "register_builders" in html


def test_gallery_page_exists(built_site):
    html = _html(built_site, "gallery")
    assert "scripts/docs/figures.py reconstruction" in html
    assert "scripts/docs/figures.py reducers" in html


def test_search_index_knows_the_catalogue(built_site):
    index = (built_site.root / "search" / "search_index.json").read_text(encoding="utf-8")
    assert "flextok" in index.lower()
