"""DESIGN: "A plugin never reaches into another plugin" — families meet through the registry
(``zoo.load``), not by import. This scans every first-party plugin module's imports."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PLUGINS = Path(__file__).resolve().parents[2] / "plugins"
FAMILIES = sorted(p.name for p in PLUGINS.iterdir() if (p / "__init__.py").exists())


def _imported_families(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        elif isinstance(node, ast.ImportFrom) and node.level >= 2:  # from ..other import x
            rel = path.relative_to(PLUGINS).parts
            if node.level > len(rel) - 1:  # climbs out of the family package
                found.add((node.module or "").split(".")[0] or "<plugins root>")
        for n in names:
            parts = n.split(".")
            if parts[0] == "zoo_plugins" and len(parts) > 1:
                found.add(parts[1])
    return found


@pytest.mark.parametrize("family", FAMILIES)
def test_plugin_imports_only_itself_and_core(family):
    bad = {}
    for path in sorted((PLUGINS / family).rglob("*.py")):
        others = _imported_families(path) - {family}
        if others:
            bad[str(path.relative_to(PLUGINS))] = sorted(others)
    assert not bad, f"plugins import other plugins (go through zoo.load / the registry instead): {bad}"
