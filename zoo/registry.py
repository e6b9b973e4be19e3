"""The plugin registry: pluggy PluginManager, entry-point discovery, cards, builders, names.

Plugins are found through the ``zoo.plugins`` entry-point group, built-in ones included (the
built-in catalogue ``registry.yaml`` is itself the plugin ``zoo.catalogue``). Each entry point is
loaded on its own: a broken plugin is a warning and the rest still load, unless
``ZOO_STRICT_PLUGINS=1`` makes it fatal. Hook implementations whose names match no hookspec are
caught (``check_pending``) and reported the same way.

Example:
    >>> parse_model_name("flextok.d18_d28_dfn@abc123")
    ModelName(family='flextok', tag='d18_d28_dfn', revision='abc123', hub_repo=None)
    >>> parse_model_name("hf-hub:EPFL-VILAB/flextok_d12_d12_in1k")
    ModelName(family=None, tag=None, revision=None, hub_repo='EPFL-VILAB/flextok_d12_d12_in1k')
"""

from __future__ import annotations

import difflib
import os
import threading
import warnings
from dataclasses import dataclass
from importlib import metadata
from typing import Any, Callable, NamedTuple

import pluggy

from zoo import hookspecs
from zoo.cards import ModelCard, card_from_dict
from zoo.errors import PluginError, UnknownModelError

__all__ = ["ENTRY_POINT_GROUP", "Registry", "get_registry", "parse_model_name", "ModelName", "PluginLoadWarning", "PluginInfo"]

ENTRY_POINT_GROUP = "zoo.plugins"


class PluginLoadWarning(UserWarning):
    """A plugin failed to load and was skipped (set ZOO_STRICT_PLUGINS=1 to make it fatal)."""


class ModelName(NamedTuple):
    """A parsed model name: ``family.tag[@revision]`` or ``hf-hub:org/repo[@revision]``."""

    family: str | None
    tag: str | None
    revision: str | None
    hub_repo: str | None


def parse_model_name(name: str) -> ModelName:
    """Split a model name into family, tag, revision, or an explicit hub repo.

    ``family`` alone (no tag) means the family's default card.
    """
    if not isinstance(name, str) or not name.strip():
        raise UnknownModelError(f"a model name must be a non-empty string, got {name!r}")
    name = name.strip()
    revision = None
    if name.startswith("hf-hub:"):
        repo = name[len("hf-hub:"):]
        if "@" in repo:
            repo, revision = repo.split("@", 1)
        if repo.count("/") != 1:
            raise UnknownModelError(f"hf-hub names look like 'hf-hub:org/repo[@revision]', got {name!r}")
        return ModelName(None, None, revision or None, repo)
    if "@" in name:
        name, revision = name.split("@", 1)
    family, _, tag = name.partition(".")
    return ModelName(family.lower(), tag.lower() or None, revision or None, None)


def _strict() -> bool:
    return os.environ.get("ZOO_STRICT_PLUGINS", "").strip().lower() in {"1", "true", "yes", "on"}


@dataclass
class PluginInfo:
    """What ``zoo plugins`` reports for one plugin."""

    name: str
    module: str
    distribution: str | None
    version: str | None
    hooks: list[str]
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class Registry:
    """Plugins, cards and builders. Use :func:`get_registry` for the process-wide one."""

    def __init__(self, load_entry_points: bool = True):
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.failed: list[PluginInfo] = []
        self._dists: dict[str, tuple[str | None, str | None]] = {}
        self._cards: dict[str, ModelCard] | None = None
        self._card_owner: dict[str, str] = {}
        self._builders: dict[str, Any] | None = None
        self._lock = threading.RLock()
        if load_entry_points:
            self.load_entry_points()

    # ------------------------------------------------------------------ plugins

    def _fail(self, name: str, module: str, exc: BaseException, dist=None) -> None:
        message = f"zoo plugin {name!r} ({module}) failed to load: {type(exc).__name__}: {exc}"
        if _strict():
            raise PluginError(message) from exc
        warnings.warn(message + " -- skipped (set ZOO_STRICT_PLUGINS=1 to make this fatal)", PluginLoadWarning, stacklevel=3)
        self.failed.append(PluginInfo(name, module, dist, None, [], error=f"{type(exc).__name__}: {exc}"))

    def register_plugin(self, plugin: Any, name: str | None = None, *, dist: tuple[str | None, str | None] = (None, None)) -> bool:
        """Register a plugin object/module; validate its hooks. Returns False if it was rejected."""
        name = name or getattr(plugin, "__name__", None) or repr(plugin)
        module = getattr(plugin, "__name__", type(plugin).__name__)
        with self._lock:
            if self.pm.has_plugin(name):
                self._fail(name, module, PluginError(f"a plugin named {name!r} is already registered ({self.pm.get_plugin(name)!r})"), dist[0])
                return False
            try:
                self.pm.register(plugin, name=name)
            except Exception as exc:  # pluggy.PluginValidationError: bad hook signature
                self._fail(name, module, exc, dist[0])
                return False
            try:
                self.pm.check_pending()
            except pluggy.PluginValidationError as exc:
                self.pm.unregister(plugin)
                self._fail(name, module, PluginError(f"unknown hook implementation ({exc}); known hooks: "
                                                     f"{sorted(h for h in dir(self.pm.hook) if not h.startswith('_'))}"), dist[0])
                return False
            self._dists[name] = dist
            self._cards = None
            self._builders = None
            return True

    def unregister_plugin(self, name: str) -> None:
        with self._lock:
            self.pm.unregister(name=name)
            self._dists.pop(name, None)
            self._cards = None
            self._builders = None

    def load_entry_points(self) -> None:
        """Load every ``zoo.plugins`` entry point, one by one."""
        for ep in sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            dist = (ep.dist.name, ep.dist.version) if ep.dist is not None else (None, None)
            if self.pm.has_plugin(ep.name):
                continue  # the same distribution seen twice on sys.path
            try:
                plugin = ep.load()
            except Exception as exc:
                self._fail(ep.name, ep.value, exc, dist[0])
                continue
            self.register_plugin(plugin, ep.name, dist=dist)

    def plugins(self) -> list[PluginInfo]:
        """Loaded plugins (and the ones that failed), sorted by name."""
        out = []
        for name, plugin in self.pm.list_name_plugin():
            hooks = sorted(caller.name for caller in (self.pm.get_hookcallers(plugin) or []))
            dist, version = self._dists.get(name, (None, None))
            out.append(PluginInfo(name, getattr(plugin, "__name__", type(plugin).__name__), dist, version, hooks))
        return sorted(out + self.failed, key=lambda p: p.name)

    def _call_each(self, hook_name: str, make_register: Callable[[str], Callable[[Any], None]]) -> None:
        """Call one hook implementation at a time so each registration knows its plugin."""
        for impl in getattr(self.pm.hook, hook_name).get_hookimpls():
            plugin_name = self.pm.get_name(impl.plugin)
            try:
                impl.function(register=make_register(plugin_name))
            except (PluginError,) as exc:
                raise exc
            except Exception as exc:
                self._fail(plugin_name, getattr(impl.plugin, "__name__", "?"), exc)

    # ------------------------------------------------------------------ cards

    @property
    def cards(self) -> dict[str, ModelCard]:
        """Every registered card by name (collected once, on first use)."""
        with self._lock:
            if self._cards is None:
                cards: dict[str, ModelCard] = {}
                owner: dict[str, str] = {}

                def make_register(plugin_name: str):
                    def register(card: Any) -> None:
                        card = card_from_dict(card, source=f"plugin {plugin_name}") if not isinstance(card, ModelCard) else card
                        if not card.source:
                            card = card.__class__(**{**card.__dict__, "source": f"plugin {plugin_name}"})
                        if card.name in cards:
                            raise PluginError(
                                f"model {card.name!r} is registered twice: by {owner[card.name]} ({cards[card.name].source}) "
                                f"and by {plugin_name} ({card.source}); uninstall one of the plugins or rename the card"
                            )
                        cards[card.name] = card
                        owner[card.name] = plugin_name
                    return register

                self._call_each("register_cards", make_register)
                self._check_defaults(cards)
                self._cards, self._card_owner = cards, owner
            return self._cards

    @staticmethod
    def _check_defaults(cards: dict[str, ModelCard]) -> None:
        per_family: dict[str, list[str]] = {}
        for card in cards.values():
            if card.default:
                per_family.setdefault(card.family, []).append(card.name)
        for family, names in per_family.items():
            if len(names) > 1:
                raise PluginError(f"family {family!r} has several default cards: {names}; mark exactly one default: true")

    def card_owner(self, name: str) -> str:
        self.cards
        return self._card_owner[name]

    def family_default(self, family: str) -> ModelCard | None:
        members = [c for c in self.cards.values() if c.family == family]
        for card in members:
            if card.default:
                return card
        return members[0] if len(members) == 1 else None

    def find_card(self, name: str) -> tuple[ModelCard, str | None]:
        """The card a model name refers to, and the revision it asks for (or None)."""
        parsed = parse_model_name(name)
        cards = self.cards
        if parsed.hub_repo is not None:
            matches = [c for c in cards.values() if c.hub_repo and c.hub_repo.lower() == parsed.hub_repo.lower()]
            if not matches:
                raise UnknownModelError(
                    f"no card describes hub repo {parsed.hub_repo!r}. zoo needs a card to know the architecture: "
                    "use a registered name (`zoo list`), or register a card for it in a plugin."
                )
            return matches[0], parsed.revision
        if parsed.tag is None:
            card = self.family_default(parsed.family)
            if card is not None:
                return card, parsed.revision
            members = sorted(c.name for c in cards.values() if c.family == parsed.family)
            if members:
                raise UnknownModelError(f"family {parsed.family!r} has no default model; pick one of: {', '.join(members)}")
        else:
            full = f"{parsed.family}.{parsed.tag}"
            if full in cards:
                return cards[full], parsed.revision
        wanted = name.split("@", 1)[0].lower()
        candidates = sorted(set(cards) | {c.family for c in cards.values()})
        close = difflib.get_close_matches(wanted, candidates, n=5, cutoff=0.5)
        close += [c for c in candidates if wanted in c and c not in close][:5]
        hint = f" Did you mean: {', '.join(close[:5])}?" if close else " Run `zoo list` to see the models."
        raise UnknownModelError(f"unknown model {name!r}.{hint}")

    # ------------------------------------------------------------------ builders

    @property
    def builders(self) -> dict[str, Any]:
        """Every registered builder by name (collected on first load; may import torch)."""
        with self._lock:
            if self._builders is None:
                builders: dict[str, Any] = {}
                owner: dict[str, str] = {}

                def make_register(plugin_name: str):
                    def register(builder: Any) -> None:
                        name = getattr(builder, "name", None)
                        if not name:
                            raise PluginError(f"plugin {plugin_name} registered a builder without a name: {builder!r}")
                        if name in builders:
                            raise PluginError(f"builder {name!r} is registered twice: by {owner[name]} and by {plugin_name}")
                        builders[name] = builder
                        owner[name] = plugin_name
                    return register

                self._call_each("register_builders", make_register)
                self._builders = builders
            return self._builders

    def builder_for(self, card: ModelCard) -> Any:
        builders = self.builders
        if card.plugin not in builders:
            failed = [p for p in self.failed if p.name == card.plugin]
            why = f" It failed to load: {failed[0].error}." if failed else ""
            raise PluginError(
                f"model {card.name!r} needs the builder {card.plugin!r}, which no loaded plugin provides.{why} "
                f"Loaded builders: {sorted(builders) or 'none'}. Install the plugin package that provides it."
            )
        return builders[card.plugin]


_registry: Registry | None = None
_registry_lock = threading.Lock()


def get_registry() -> Registry:
    """The process-wide registry (plugins loaded from entry points on first call)."""
    global _registry
    with _registry_lock:
        if _registry is None:
            _registry = Registry()
        return _registry


def set_registry(registry: Registry | None) -> Registry | None:
    """Swap the process-wide registry (for tests); returns the previous one."""
    global _registry
    with _registry_lock:
        previous, _registry = _registry, registry
        return previous
