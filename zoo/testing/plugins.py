"""Temporary plugin and card registration, for tests.

Example:
    >>> from zoo.hookspecs import hookimpl
    >>> class Mine:
    ...     @hookimpl
    ...     def register_cards(self, register):
    ...         register({"name": "mine.small", "kind": "tokenizer", "plugin": "mine",
    ...                   "modality": "image", "license": {"code": "MIT"}})
    >>> import zoo
    >>> with temporary_plugin(Mine()):
    ...     "mine.small" in zoo.list_models()
    True
    >>> "mine.small" in zoo.list_models()
    False
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

from zoo.registry import Registry, get_registry, set_registry

__all__ = ["temporary_plugin", "isolated_registry"]


@contextmanager
def temporary_plugin(plugin: Any, name: str | None = None) -> Iterator[Registry]:
    """Register ``plugin`` in the process-wide registry for the duration of the block.

    A plugin that is already registered (e.g. installed through its entry point) is left as it
    is, so a plugin's tests pass whether or not the plugin is installed.
    """
    registry = get_registry()
    if registry.pm.is_registered(plugin):
        yield registry
        return
    name = name or f"temporary-{id(plugin)}"
    if not registry.register_plugin(plugin, name):
        raise RuntimeError(f"plugin {name!r} was rejected; see the warning")
    try:
        yield registry
    finally:
        registry.unregister_plugin(name)


@contextmanager
def isolated_registry(*plugins: Any, entry_points: bool = False) -> Iterator[Registry]:
    """A fresh process-wide registry holding only ``plugins`` (and entry points if asked)."""
    registry = Registry(load_entry_points=entry_points)
    for i, plugin in enumerate(plugins):
        registry.register_plugin(plugin, getattr(plugin, "__name__", None) or f"plugin-{i}")
    previous = set_registry(registry)
    try:
        yield registry
    finally:
        set_registry(previous)
