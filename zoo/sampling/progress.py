"""Progress reporting over sampling steps: a callback, a tqdm bar, or nothing.

Example:
    >>> seen = []
    >>> report = progress_reporter(lambda step, total: seen.append((step, total)), total=2)
    >>> report(1); report(2); report.close()
    >>> seen
    [(1, 2), (2, 2)]
"""

from __future__ import annotations

from typing import Callable, Optional, Union

from zoo.errors import InputTypeError

__all__ = ["ProgressArg", "progress_reporter"]

ProgressArg = Union[None, bool, Callable[[int, int], None]]


class _Reporter:
    def __init__(self, fn: Optional[Callable[[int, int], None]], total: int, bar=None):
        self.fn, self.total, self.bar = fn, total, bar

    def __call__(self, step: int) -> None:
        if self.fn is not None:
            self.fn(step, self.total)
        if self.bar is not None:
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def progress_reporter(progress: ProgressArg, total: int, desc: str = "sampling") -> _Reporter:
    """``progress``: ``None``/``False`` (silent), ``True`` (a tqdm bar), or ``fn(step, total)``
    called after each step (``step`` counts from 1)."""
    if progress is True:
        from tqdm.auto import tqdm

        return _Reporter(None, total, tqdm(total=total, desc=desc, leave=False))
    if progress is None or progress is False:
        return _Reporter(None, total)
    if not callable(progress):
        raise InputTypeError(f"progress must be None, a bool, or a callable(step, total), got {type(progress).__name__}")
    return _Reporter(progress, total)
