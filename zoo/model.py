"""What every model ``zoo.load`` returns has in common: a one-line ``repr`` that says what it is,
``name`` (its card's name), ``num_parameters()`` and ``module_tree()``.

First-party model classes inherit :class:`ZooModel` (put it *before* ``torch.nn.Module`` in the
bases, so its ``__repr__`` wins); a third-party plugin's classes do the same to get the same
behaviour. ``zoo.load`` sets ``model.card`` and ``model.config``; before that ``name`` falls back
to the class name.

Example:
    >>> import torch
    >>> class Tiny(ZooModel, torch.nn.Module):
    ...     image_size = 32
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.proj = torch.nn.Linear(4, 4)
    >>> model = Tiny()
    >>> model
    Tiny(20 params, float32, cpu, image_size=32)
    >>> model.module_tree().splitlines()[0]
    'Tiny('
    >>> format_count(1_234_567), format_count(2_600_000_000), format_count(999)
    ('1.23M', '2.60B', '999')
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from zoo.cards import ModelCard

__all__ = ["ZooModel", "describe", "format_count"]

_TREE = threading.local()  # depth > 0 while module_tree() renders: sub-models print their tree

#: Attributes shown in the repr when a model has them (key shape facts).
SHAPE_FACTS = ("image_size", "sample_rate", "frame_rate")


def format_count(n: int | None) -> str:
    """A parameter count in three significant digits: ``'86.6M'``, ``'1.50B'``; ``'?'`` if unknown."""
    if n is None:
        return "?"
    for div, unit in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if n >= div:
            value = n / div
            return f"{value:.0f}{unit}" if value >= 100 else f"{value:.1f}{unit}" if value >= 10 else f"{value:.2f}{unit}"
    return str(int(n))


def _dtype_device(model: Any) -> tuple[str, str] | None:
    """``(dtype, device)`` of a module's parameters and buffers (``'a/b'`` when mixed)."""
    tensors = []
    for attr in ("parameters", "buffers"):
        fn = getattr(model, attr, None)
        if callable(fn):
            try:
                tensors.extend(fn())
            except Exception:  # noqa: BLE001 -- a repr never raises
                return None
    if not tensors:
        return None
    dtypes = sorted({str(t.dtype).replace("torch.", "") for t in tensors if t.is_floating_point()} or
                    {str(t.dtype).replace("torch.", "") for t in tensors})
    devices = sorted({str(t.device) for t in tensors})
    return "/".join(dtypes), "/".join(devices)


def describe(model: Any) -> str:
    """The one-line description :class:`ZooModel` uses as its ``repr`` (works on any object).

    Names the class and card, the kind, the parameter count, dtype and device, the tokens the
    card promises (length, codebook), a generator's paired tokenizer and the shape facts the model
    has (``image_size``, ``sample_rate``) plus what its ``describe_facts()`` adds. Never prints a
    tensor.
    """
    card = getattr(model, "card", None)
    parts = [repr(card.name), card.kind] if card is not None else []  # no card: the class name says it
    count = model.num_parameters() if isinstance(model, ZooModel) else None
    if count:
        parts.append(f"{format_count(count)} params")
    placement = _dtype_device(model)
    if placement:
        parts += list(placement)
    tokens = getattr(card, "tokens", None)
    if tokens is not None:
        parts.append(f"tokens={tokens.length}")
        if tokens.codebook_size:
            parts.append(f"codebook={tokens.codebook_size}")
    facts = model.describe_facts() if isinstance(model, ZooModel) else {}
    paired = getattr(getattr(model, "config", None), "tokenizer", None)  # a generator's tokenizer
    if isinstance(paired, str) and paired and "tokenizer" not in facts:
        facts["tokenizer"] = paired
    for key in SHAPE_FACTS:
        if key not in facts:
            try:
                value = getattr(model, key, None)
            except Exception:  # noqa: BLE001 -- a property that needs state the model lacks
                value = None
            if isinstance(value, (int, float, str)) and not isinstance(value, bool):
                facts[key] = value
    parts += [f"{k}={_short(v)}" for k, v in facts.items()]
    return f"{type(model).__name__}({', '.join(parts)})"


def _short(value: Any) -> str:
    text = ", ".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)
    return text if len(text) <= 40 else text[:37] + "..."


class ZooModel:
    """Mixin for the models ``zoo.load`` returns (tokenizers, generators, reducers).

    ``card`` and ``config`` are set by ``zoo.load``. Subclasses may override
    :meth:`describe_facts` to add key facts to the repr, and may set a class attribute
    ``default_name`` (``"kl_vae"``): the :attr:`name` used in Tokens and messages before a card is set.
    """

    card: ModelCard | None = None

    @property
    def name(self) -> str:
        """The card's name (``'flextok.demo_128'``); before ``zoo.load`` set a card, the class's
        ``default_name`` (a family name such as ``"kl_vae"``) if it has one, else the class name."""
        card = self.card
        if card is not None and card.name:
            return card.name
        return getattr(self, "default_name", None) or type(self).__name__

    def num_parameters(self, trainable_only: bool = False) -> int:
        """How many parameters the model holds (0 for a reducer without weights)."""
        params = getattr(self, "parameters", None)
        if not callable(params):
            return 0
        return sum(p.numel() for p in params() if p.requires_grad or not trainable_only)

    def module_tree(self) -> str:
        """The full ``torch.nn.Module`` tree (what ``print(model)`` shows for a plain module),
        sub-models included (a ZooModel inside it shows its tree here, not its one line)."""
        import torch

        if not isinstance(self, torch.nn.Module):
            return object.__repr__(self)
        _TREE.depth = getattr(_TREE, "depth", 0) + 1
        try:
            return torch.nn.Module.__repr__(self)
        finally:
            _TREE.depth -= 1

    def describe_facts(self) -> dict[str, Any]:
        """Extra ``key=value`` facts for the repr (override to add, e.g., a reducer's options)."""
        return {}

    def __repr__(self) -> str:
        if getattr(_TREE, "depth", 0):  # inside an enclosing module_tree(): the full tree
            return self.module_tree()
        try:
            return describe(self)
        except Exception as exc:  # noqa: BLE001 -- a repr must never raise
            return f"{type(self).__name__}(<repr failed: {type(exc).__name__}>)"
