"""Griffe extension for zoo's docstrings (listed in mkdocs.yml under mkdocstrings' extensions).

zoo's docstrings are Google style with two habits that Markdown would render badly:

* ``Example:`` (singular) heads doctest blocks; Griffe only treats ``Examples:`` as examples
  (rendered as Python console code), and would otherwise render ``>>>`` as nested quotes;
* Sphinx roles such as ``:class:`~zoo.cards.ModelCard```; they become inline code
  (``ModelCard``; the ``~`` keeps the last name, as in Sphinx);
* parameters documented together (``device, dtype: where and in which precision ...``); Griffe
  would render one parameter named "device, dtype", "required" and without a type. Each name gets
  its own entry with the shared text, so the table shows each one's type and default from the
  signature.

The source files are not changed: the rewrite applies to the docstrings Griffe reads.

Example:
    >>> normalise("Intro.\\n\\nExample:\\n    >>> 1\\n    1")
    'Intro.\\n\\nExamples:\\n    >>> 1\\n    1'
    >>> normalise("See :func:`~zoo.api.load`.")
    'See `load`.'
    >>> print(normalise("Args:\\n    a, b: shared\\n        more.\\n    c: own"))
    Args:
        a: shared
            more.
        b: shared
            more.
        c: own
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_EXAMPLE = re.compile(r"^(\s*)Example:[ \t]*$", re.MULTILINE)
_ROLE = re.compile(r":(?:py:)?(?:class|func|meth|mod|attr|data|exc|obj|const):`(~?)([^`]+)`")


def _role(match: re.Match) -> str:
    tilde, target = match.groups()
    return f"`{target.rsplit('.', 1)[-1] if tilde else target}`"


_PARAM_SECTION = re.compile(r"^(\s*)(Args|Arguments|Parameters|Params|Other Parameters|Keyword Args|Keyword Arguments):\s*$")
_GROUPED = re.compile(r"^(\s*)(\*{0,2}\w+(?:\s*,\s*\*{0,2}\w+)+)(\s*\([^)]*\))?:(.*)$")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def split_grouped_params(text: str) -> str:
    """In parameter sections, ``a, b: text`` becomes one entry per name with the same text."""
    lines, out, i = text.split("\n"), [], 0
    section_indent: int | None = None
    while i < len(lines):
        line = lines[i]
        header = _PARAM_SECTION.match(line)
        if header:
            section_indent = _indent(line)
            out.append(line)
            i += 1
            continue
        if section_indent is not None and line.strip() and _indent(line) <= section_indent:
            section_indent = None
        grouped = _GROUPED.match(line) if section_indent is not None else None
        if not grouped:
            out.append(line)
            i += 1
            continue
        indent, names, annotation, rest = grouped.groups()
        body, i = [], i + 1
        while i < len(lines) and (not lines[i].strip() or _indent(lines[i]) > len(indent)):
            body.append(lines[i])
            i += 1
        while body and not body[-1].strip():  # trailing blank lines stay after the group
            i -= 1
            body.pop()
        for name in (n.strip() for n in names.split(",")):
            out.append(f"{indent}{name}{annotation or ''}:{rest}")
            out.extend(body)
    return "\n".join(out)


def normalise(text: str) -> str:
    """Docstring text with ``Example:`` read as ``Examples:``, Sphinx roles as inline code and
    parameters documented together split into one entry each."""
    return split_grouped_params(_ROLE.sub(_role, _EXAMPLE.sub(r"\1Examples:", text)))


class ZooDocstrings(griffe.Extension):
    """Apply :func:`normalise` to every docstring Griffe loads."""

    def on_object(self, *, obj: Any, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = normalise(obj.docstring.value)
