"""The public adapter interface: how a reducer hooks into a model family.

A third-party package makes its transformer reducible by implementing :class:`ModelAdapter`
and registering it once: ``register_adapter(MyAdapter())``, or, where core defines the
``register_reducer_adapters(register)`` hook, from a hook implementation in its zoo plugin.
An adapter runs an :class:`~zoo_plugins.reducers.policies.base.InModelPolicy` inside the model:
between attention and MLP of each block it builds the
:class:`~zoo_plugins.reducers.types.Signals` the policy asks for (head-averaged keys, the class
token's attention row, token sizes), runs the policy's plan, propagates sizes, and adds
``log(size)`` to the attention logits when the policy uses proportional attention.

Example:
    >>> class MyAdapter(ModelAdapter):
    ...     name = "mine"
    ...     def supports(self, model):
    ...         return False
    >>> register_adapter(MyAdapter()); "mine" in [a.name for a in adapters()]
    True
    >>> unregister_adapter("mine")
"""

from __future__ import annotations

from typing import Any

import torch

from ..types import ReducerError

__all__ = ["ModelAdapter", "ReducerHandle", "adapters", "find_adapter", "register_adapter", "unregister_adapter"]


class ReducerHandle:
    """What ``reducer.apply(model, ...)`` returns: ``remove()`` restores the model exactly.

    Attributes (after a forward pass): ``sizes`` ``[B, N, 1]`` of the last block's output,
    ``source`` ``[B, N0]`` (with ``trace_source=True``): the output position each input token
    ended in (-1 = pruned), and ``tokens_per_layer``: token counts entering each block.
    Usable as a context manager (removed on exit).
    """

    def __init__(self, model: torch.nn.Module, state: Any, undo: list):
        self.model = model
        self.state = state
        self._undo = undo
        self.removed = False

    @property
    def sizes(self) -> torch.Tensor | None:
        return self.state.size

    @property
    def source(self) -> torch.Tensor | None:
        return self.state.source

    @property
    def tokens_per_layer(self) -> list[int]:
        return list(self.state.tokens_per_layer)

    def remove(self) -> None:
        """Undo the patch; the model's outputs are bit-identical to before ``apply``."""
        if self.removed:
            return
        for fn in reversed(self._undo):
            fn()
        self._undo.clear()
        self.removed = True

    def __repr__(self) -> str:
        policy = type(getattr(self.state, "policy", None)).__name__.removesuffix("Policy")
        model = getattr(self.model, "card", None)
        model = repr(model.name) if model is not None else type(self.model).__name__
        counts = list(getattr(self.state, "tokens_per_layer", []) or [])
        tokens = (f", tokens {counts[0]} -> {counts[-1]} over {len(counts)} blocks" if counts
                  else ", no forward pass yet")
        status = "removed" if self.removed else "active"
        return f"ReducerHandle({policy} on {model}, {status}{tokens})"

    def __enter__(self):  # returns self
        return self

    def __exit__(self, *exc) -> None:
        self.remove()


class ModelAdapter:
    """Hooks policies into one model family. Subclass and override ``supports`` and ``patch``."""

    name: str = ""

    def supports(self, model: torch.nn.Module) -> bool:
        """True when this adapter knows how to patch ``model``."""
        raise NotImplementedError

    def patch(self, model: torch.nn.Module, policy: Any, *, trace_source: bool = False,
              backend: str | None = None) -> ReducerHandle:
        """Patch ``model`` in place to run ``policy``; return a handle whose ``remove()`` undoes it."""
        raise NotImplementedError


_ADAPTERS: dict[str, ModelAdapter] = {}


def register_adapter(adapter: ModelAdapter) -> None:
    """Add (or replace, by name) an adapter; later registrations are tried first."""
    if not adapter.name:
        raise ReducerError("an adapter needs a non-empty `name`")
    _ADAPTERS.pop(adapter.name, None)
    _ADAPTERS[adapter.name] = adapter


def unregister_adapter(name: str) -> None:
    """Remove the adapter called ``name`` (no error if absent)."""
    _ADAPTERS.pop(name, None)


def adapters() -> list[ModelAdapter]:
    """Registered adapters, most recent first (built-in ones are registered on first use)."""
    _ensure_builtin()
    return list(reversed(list(_ADAPTERS.values())))


def find_adapter(model: torch.nn.Module, name: str | None = None) -> ModelAdapter:
    """The adapter for ``model`` (or the one called ``name``); a clear error when none fits."""
    found = adapters()
    if name is not None:
        for a in found:
            if a.name == name:
                return a
        raise ReducerError(f"no reducer adapter called {name!r}; registered: {[a.name for a in found]}")
    for a in found:
        if a.supports(model):
            return a
    raise ReducerError(
        f"no reducer adapter supports {type(model).__module__}.{type(model).__name__}; registered adapters: "
        f"{[a.name for a in found]}. Implement zoo_plugins.reducers.adapters.base.ModelAdapter and "
        "register_adapter() it, implement the reducer_blocks() protocol of "
        "zoo_plugins.reducers.adapters.zoo_blocks, or pass a timm VisionTransformer.")


_builtin_done = False


def _ensure_builtin() -> None:
    global _builtin_done
    if _builtin_done:
        return
    _builtin_done = True
    from .timm_vit import TimmViTAdapter
    from .zoo_blocks import ZooBlocksAdapter

    builtin = [a for a in (TimmViTAdapter, ZooBlocksAdapter) if a.name not in _ADAPTERS]
    if builtin:  # built-ins go first, so user adapters take precedence
        user = dict(_ADAPTERS)
        _ADAPTERS.clear()
        for cls in builtin:
            _ADAPTERS[cls.name] = cls()
        _ADAPTERS.update(user)
    _call_adapter_hook()


def _call_adapter_hook() -> None:
    """Collect adapters from plugins implementing ``register_reducer_adapters`` (once core
    defines that hookspec; until then third parties call :func:`register_adapter`)."""
    from zoo.registry import get_registry

    hook = getattr(get_registry().pm.hook, "register_reducer_adapters", None)
    if hook is not None:
        hook(register=register_adapter)
