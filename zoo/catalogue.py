"""The built-in catalogue: ``registry.yaml`` registered as a plugin like any other.

The file lives at the repository root (``zoo/registry.yaml`` links to it so that it ships
inside the package). It holds ``models:``, a list of cards validated against
:class:`zoo.cards.ModelCard`; a bad card is an error naming the file, the card and the key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from zoo.cards import ModelCard, card_from_dict
from zoo.errors import CardError
from zoo.hookspecs import hookimpl

__all__ = ["REGISTRY_FILE", "load_catalogue", "register_cards"]

REGISTRY_FILE = Path(__file__).with_name("registry.yaml")


def load_catalogue(path: str | Path = REGISTRY_FILE) -> list[ModelCard]:
    """Read and validate a catalogue file.

    Example:
        >>> cards = load_catalogue()
        >>> all(card.source == "registry.yaml" for card in cards)
        True
    """
    import yaml

    path = Path(path)
    label = path.name
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise CardError(f"{label}: not valid YAML: {exc}") from None
    if data is None:
        return []
    if not isinstance(data, dict) or set(data) - {"models"}:
        raise CardError(f"{label}: the top level must be a mapping with the single key 'models' (a list of cards)")
    models = data.get("models") or []
    if not isinstance(models, list):
        raise CardError(f"{label}: 'models' must be a list of cards")
    cards, seen = [], set()
    for i, raw in enumerate(models):
        if not isinstance(raw, dict):
            raise CardError(f"{label}: models[{i}] must be a mapping, got {type(raw).__name__}")
        card = card_from_dict(raw, source=label)
        if card.name in seen:
            raise CardError(f"{label}: card {card.name!r} appears twice")
        seen.add(card.name)
        cards.append(card)
    return cards


@hookimpl
def register_cards(register: Callable[[Any], None]) -> None:
    for card in load_catalogue():
        register(card)
