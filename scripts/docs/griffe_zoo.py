"""Griffe extension for zoo's docstrings (listed in mkdocs.yml under mkdocstrings' extensions).

zoo's docstrings are Google style with two habits that Markdown would render badly:

* ``Example:`` (singular) heads doctest blocks; Griffe only treats ``Examples:`` as examples
  (rendered as Python console code), and would otherwise render ``>>>`` as nested quotes;
* Sphinx roles such as ``:class:`~zoo.cards.ModelCard```; they become inline code
  (``ModelCard``; the ``~`` keeps the last name, as in Sphinx).

The source files are not changed: the rewrite applies to the docstrings Griffe reads.

Example:
    >>> normalise("Intro.\\n\\nExample:\\n    >>> 1\\n    1")
    'Intro.\\n\\nExamples:\\n    >>> 1\\n    1'
    >>> normalise("See :func:`~zoo.api.load`.")
    'See `load`.'
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


def normalise(text: str) -> str:
    """Docstring text with ``Example:`` read as ``Examples:`` and Sphinx roles as inline code."""
    return _ROLE.sub(_role, _EXAMPLE.sub(r"\1Examples:", text))


class ZooDocstrings(griffe.Extension):
    """Apply :func:`normalise` to every docstring Griffe loads."""

    def on_object(self, *, obj: Any, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = normalise(obj.docstring.value)
