"""The bad-input matrix: one :class:`Row` per class of bad input, checked by :func:`check_row`.

A row either expects an error (its class, which must be a :class:`zoo.errors.ZooError`, and key
words of its message) or a correct result (``check(result)`` is true). Groups live in
``test_matrix_<group>.py``; ``test_matrix_size.py`` counts them.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from zoo.errors import ZooError


@dataclass(frozen=True)
class Row:
    """One bad-input class: ``call(env)`` must raise ``raises`` naming ``words``, or return a
    result for which ``check`` holds."""

    id: str
    call: Callable[[Any], Any]
    raises: type[BaseException] | None = None
    words: tuple[str, ...] = ()
    check: Callable[[Any], bool] | None = None

    def __post_init__(self) -> None:
        if (self.raises is None) == (self.check is None):
            raise TypeError(f"row {self.id}: give exactly one of raises= or check=")


def check_row(row: Row, env: Any) -> None:
    if row.raises is None:
        result = row.call(env)
        assert row.check(result), f"{row.id}: wrong result {result!r}"
        return
    with pytest.raises(row.raises) as info:
        row.call(env)
    exc = info.value
    assert isinstance(exc, ZooError), f"{row.id}: {type(exc).__name__} is not a ZooError: {exc}"
    message = str(exc).lower()
    missing = [w for w in row.words if w.lower() not in message]
    assert not missing, f"{row.id}: message lacks {missing}: {exc}"


def cli_refuses(code: int, *words: str) -> Callable[[Any], bool]:
    """A check for CLI rows: exit ``code``, the words in the output, and no Python traceback."""

    def check(result: Any) -> bool:
        out = result.output
        tb = "".join(traceback.format_exception(result.exc_info[1])) if result.exc_info and not isinstance(result.exception, SystemExit) else ""
        assert result.exit_code == code, f"exit {result.exit_code} != {code}: {out}{tb}"
        assert "Traceback" not in out and not tb, out + tb
        missing = [w for w in words if w.lower() not in out.lower()]
        assert not missing, f"output lacks {missing}: {out}"
        return True

    return check


def params(rows: list[Row]) -> Any:
    ids = [r.id for r in rows]
    assert len(ids) == len(set(ids)), "duplicate row ids"
    return pytest.mark.parametrize("row", rows, ids=ids)
