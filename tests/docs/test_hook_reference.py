"""The hook reference (docs/plugins/hooks.md) documents every hookspec with its exact signature."""

from __future__ import annotations

import inspect
import re

import pytest

from tests.docs.conftest import ROOT
from zoo import hookspecs

HOOKS_PAGE = ROOT / "docs" / "plugins" / "hooks.md"


def hookspec_functions() -> dict[str, object]:
    marker = f"{hookspecs.PROJECT}_spec"
    return {name: fn for name, fn in vars(hookspecs).items() if callable(fn) and hasattr(fn, marker)}


def source_signature(fn) -> str:
    """``name(param: annotation, ...) -> return`` with annotations as written in the source."""
    sig = inspect.signature(fn)

    def ann(a):
        return a if isinstance(a, str) else inspect.formatannotation(a)

    params = ", ".join(
        p.name + (f": {ann(p.annotation)}" if p.annotation is not p.empty else "") + (f" = {p.default!r}" if p.default is not p.empty else "")
        for p in sig.parameters.values()
    )
    ret = f" -> {ann(sig.return_annotation)}" if sig.return_annotation is not sig.empty else ""
    return f"{fn.__name__}({params}){ret}"


def test_there_are_hookspecs():
    assert set(hookspec_functions()) >= {"register_cards", "register_builders", "register_commands"}


@pytest.mark.parametrize("name", sorted(hookspec_functions()))
def test_every_hookspec_is_documented_with_its_exact_signature(name):
    page = HOOKS_PAGE.read_text(encoding="utf-8")
    signature = source_signature(hookspec_functions()[name])
    section = re.search(rf"^## {re.escape(name)}\n(.*?)(?=^## |\Z)", page, flags=re.MULTILINE | re.DOTALL)
    assert section, f"docs/plugins/hooks.md has no '## {name}' section: document the new hook"
    assert f"```python\n{signature}\n```" in section.group(1), (
        f"docs/plugins/hooks.md, section {name}: the signature must read exactly `{signature}`"
    )


def test_no_stale_hooks_are_documented():
    page = HOOKS_PAGE.read_text(encoding="utf-8")
    documented = set(re.findall(r"^## (register_\w+|\w+_hook)$", page, flags=re.MULTILINE))
    assert documented <= set(hookspec_functions()), f"documented but not hookspecs: {documented - set(hookspec_functions())}"


def test_firstresult_and_historic_are_stated():
    page = HOOKS_PAGE.read_text(encoding="utf-8")
    for name, fn in hookspec_functions().items():
        opts = getattr(fn, f"{hookspecs.PROJECT}_spec")
        if opts.get("firstresult"):
            assert re.search(rf"## {name}\n[^#]*firstresult", page), f"{name} is firstresult: say so in hooks.md"
    if not any(getattr(fn, f"{hookspecs.PROJECT}_spec").get("firstresult") for fn in hookspec_functions().values()):
        assert "none is `firstresult`" in page
