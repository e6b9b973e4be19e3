"""The API reference renders every documented parameter with its type and default.

Docstrings sometimes document parameters together (``device, dtype: ...``); the Griffe extension
``scripts/docs/griffe_zoo.py`` splits them, so that the parameter table shows each one with the
annotation and default of the signature instead of one "required" row without a type.
"""

from __future__ import annotations

import re

import pytest

from tests.docs.conftest import load_script

CELL = re.compile(r"<td[^>]*>(.*?)</td>", re.DOTALL)
ROW = re.compile(r'<tr class="doc-section-item">(.*?)</tr>', re.DOTALL)
TABLE = re.compile(r"<table>(.*?)</table>", re.DOTALL)


def _text(fragment: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", fragment)).strip()


def parameter_rows(html: str, anchor: str | None = None) -> list[list[str]]:
    """[name, type, description, default] of every parameter table row (after ``anchor``'s id)."""
    if anchor is not None:
        html = html[html.index(f'id="{anchor}"'):]
        html = TABLE.search(html).group(0)
    rows = []
    for table in TABLE.findall(html):
        if "<th>Type</th>" not in table or "<th>Name</th>" not in table:
            continue
        rows += [[_text(c) for c in CELL.findall(r)] for r in ROW.findall(table)]
    return rows


@pytest.mark.parametrize("name, type_, default", [
    ("name", "str", "required"),
    ("pretrained", "bool", "True"),
    ("device", "str | device | None", "None"),  # torch.device, rendered by its name
    ("dtype", "str | dtype | None", "None"),
    ("cache_dir", "str | Path | None", "None"),
    ("local_files_only", "bool | None", "None"),
])
def test_load_parameters_show_type_and_default(built_site, name, type_, default):
    html = (built_site.root / "reference" / "api" / "index.html").read_text(encoding="utf-8")
    rows = {r[0]: r for r in parameter_rows(html, anchor="zoo.api.load")}
    assert name in rows, f"zoo.load's parameter table lacks {name!r}: {sorted(rows)}"
    assert re.sub(r"\s*\|\s*", " | ", rows[name][1]) == type_, rows[name]
    assert rows[name][-1] == default, rows[name]
    assert not any("," in n for n in rows), f"grouped parameter rows left: {sorted(rows)}"


def test_no_parameter_row_without_a_type_anywhere(built_site):
    """A row without a type means a documented name the signature does not have (or a grouped one)."""
    pages = sorted((built_site.root / "reference").rglob("index.html")) + sorted((built_site.root / "plugins").rglob("index.html"))
    untyped, total = [], 0
    for page in pages:
        for row in parameter_rows(page.read_text(encoding="utf-8")):
            total += 1
            if len(row) >= 2 and not row[1]:
                untyped.append((str(page.relative_to(built_site.root)), row[0]))
    assert total > 30, f"only {total} parameter rows found: did the reference layout change?"
    assert not untyped, untyped


@pytest.mark.parametrize("docstring, expected", [
    ("Args:\n    a, b: shared\n    c: own", "Args:\n    a: shared\n    b: shared\n    c: own"),
    ("Args:\n    x, y (int): both\n        more text.\n\nReturns:\n    z, w: not params",
     "Args:\n    x (int): both\n        more text.\n    y (int): both\n        more text.\n\nReturns:\n    z, w: not params"),
    ("Intro: a, b: untouched outside a parameter section", "Intro: a, b: untouched outside a parameter section"),
    ("Args:\n    *args, **kwargs: forwarded", "Args:\n    *args: forwarded\n    **kwargs: forwarded"),
])
def test_grouped_parameters_are_split(docstring, expected):
    assert load_script("griffe_zoo").split_grouped_params(docstring) == expected


def test_every_public_parameter_is_annotated():
    """What the reference renders: every parameter of a public function or method of zoo has a
    type (click commands excepted: the CLI reference documents their options)."""
    griffe = pytest.importorskip("griffe", reason="the docs extra is not installed")
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    package = griffe.load("zoo", search_paths=[str(root)])
    cli_modules = {"zoo.cli", "zoo.generation_commands"}
    missing = []

    def walk(obj):
        for name, member in obj.members.items():
            if member.is_alias or (name.startswith("_") and name != "__init__"):
                continue
            if member.is_module or member.is_class:
                walk(member)
            elif member.is_function and member.module.path not in cli_modules:
                missing.extend(f"{member.path}({p.name})" for p in member.parameters
                               if p.name not in ("self", "cls") and p.annotation is None)

    walk(package)
    assert not missing, f"parameters without a type: {missing}"
