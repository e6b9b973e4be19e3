"""Hook specifications: how a plugin adds models, builders and commands to zoo.

A plugin is a module (or object) with functions marked ``@hookimpl`` and named after these
specs, registered under the ``zoo.plugins`` entry-point group. Plugin modules must not import
torch at import time: import model code inside the hook bodies.

Example:
    >>> from zoo.hookspecs import hookimpl
    >>> @hookimpl
    ... def register_cards(register):
    ...     register({"name": "mine.small", "kind": "tokenizer", "plugin": "mine",
    ...               "modality": "image", "license": {"code": "MIT"}})
"""

from __future__ import annotations

from typing import Any, Callable

import pluggy

PROJECT = "zoo"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

__all__ = ["hookspec", "hookimpl", "register_cards", "register_builders", "register_commands", "register_reducer_adapters"]


@hookspec
def register_cards(register: Callable[[Any], None]) -> None:
    """Register model cards.

    Call ``register(card)`` once per model, with a :class:`zoo.cards.ModelCard` or a mapping
    of its fields (validated against the card schema; unknown keys are errors). A card's
    ``plugin`` field names the builder that constructs it. Two plugins registering the same
    card name is an error naming both. Called once, when the catalogue is first needed
    (``zoo.list_models``); must not import torch.
    """


@hookspec
def register_builders(register: Callable[[Any], None]) -> None:
    """Register model builders.

    Call ``register(builder)`` with an object following :class:`zoo.builders.ModelBuilder`
    (``name``, ``config_class``, ``read_checkpoint``, ``build``, ``convert``). Called the first
    time a model is loaded, so the hook body may import torch and model code.
    """


@hookspec
def register_commands(cli: Any) -> None:
    """Add subcommands to the ``zoo`` command line.

    ``cli`` is the top-level :class:`click.Group`; decorate new commands with ``@cli.command()``.
    Called once when the ``zoo`` command starts.
    """


@hookspec
def register_reducer_adapters(register: Callable[[Any], None]) -> None:
    """Teach token reducers a new model family.

    Call ``register(adapter)`` with an object that has ``name``, ``supports(model) -> bool`` and
    ``patch(model, policy, *, trace_source, backend) -> handle`` (see
    ``zoo_plugins.reducers.adapters.base.ModelAdapter``). Adapters registered here take precedence
    over the built-in timm ViT adapter. Called the first time a reducer is applied; may import
    torch.
    """
