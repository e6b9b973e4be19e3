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
import re
import threading
import warnings
from dataclasses import dataclass
from importlib import metadata
from typing import Any, Callable, NamedTuple

import pluggy

from zoo import hookspecs
from zoo.cards import ModelCard, card_from_dict
from zoo.errors import InputError, PluginError, UnknownModelError

__all__ = ["ENTRY_POINT_GROUP", "Registry", "check_revision", "get_registry", "parse_model_name", "ModelName", "PluginLoadWarning", "PluginInfo",
           "RenamedModelWarning"]

ENTRY_POINT_GROUP = "zoo.plugins"


class PluginLoadWarning(UserWarning):
    """A plugin failed to load and was skipped (set ZOO_STRICT_PLUGINS=1 to make it fatal)."""


class RenamedModelWarning(FutureWarning):
    """A model was asked for by a former name (a card ``alias``); shown once per name per process."""


class ModelName(NamedTuple):
    """A parsed model name: ``family.tag[@revision]`` or ``hf-hub:org/repo[@revision]``."""

    family: str | None
    tag: str | None
    revision: str | None
    hub_repo: str | None


_PART = re.compile(r"[a-z0-9_][a-z0-9_-]*")
_HUB_REPO = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*")
_REVISION_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._/-]*")
_FORMS = "model names look like 'family', 'family.tag', 'family.tag@revision' or 'hf-hub:org/repo[@revision]'"


def _malformed(name: str, why: str) -> UnknownModelError:
    return UnknownModelError(f"malformed model name {name!r}: {why}; {_FORMS}")


def _check_revision(name: str, revision: str) -> str:
    if not revision:
        raise _malformed(name, "nothing after '@' (drop the '@', or give a commit / branch / tag)")
    if not _REVISION_NAME.fullmatch(revision) or ".." in revision or "//" in revision or revision.endswith(("/", ".")):
        raise _malformed(name, f"{revision!r} is not a revision (a commit hash, branch or tag: letters, digits, '._/-')")
    return revision


def check_revision(revision: str) -> str:
    """A ``revision=`` argument (commit, branch or tag) checked like the ``@revision`` of a name.

    Example:
        >>> check_revision("refs/pr/1")
        'refs/pr/1'
        >>> check_revision("main branch")  # doctest: +IGNORE_EXCEPTION_DETAIL
        Traceback (most recent call last):
        zoo.errors.InputError: revision='main branch' is not a revision ...
    """
    if not isinstance(revision, str) or not revision:
        raise InputError(f"revision must be a non-empty string (a commit, branch or tag), got {revision!r}")
    try:
        return _check_revision(revision, revision)
    except UnknownModelError:
        raise InputError(f"revision={revision!r} is not a revision (a commit hash, branch or tag: letters, digits, "
                         "'._/-', no '..')") from None


def parse_model_name(name: str) -> ModelName:
    """Split a model name into family, tag, revision, or an explicit hub repo.

    ``family`` alone (no tag) means the family's default card. Names are case-insensitive
    (revisions are not); anything else (``flextok@``, ``flextok@@``, ``.tag``, spaces inside) is
    an :class:`~zoo.errors.UnknownModelError` that says what is wrong.

    Example:
        >>> parse_model_name("FlexTok")
        ModelName(family='flextok', tag=None, revision=None, hub_repo=None)
        >>> parse_model_name("flextok@")  # doctest: +IGNORE_EXCEPTION_DETAIL
        Traceback (most recent call last):
        zoo.errors.UnknownModelError: malformed model name 'flextok@': nothing after '@' ...
    """
    if not isinstance(name, str) or not name.strip():
        raise UnknownModelError(f"a model name must be a non-empty string, got {name!r}; {_FORMS}")
    original, name = name, name.strip()
    revision = None
    if name.lower().startswith("hf-hub:"):
        repo = name[len("hf-hub:"):]
        if "@" in repo:
            repo, revision = repo.split("@", 1)
            revision = _check_revision(original, revision)
        if not _HUB_REPO.fullmatch(repo) or ".." in repo:
            raise _malformed(original, f"{repo!r} is not a hub repo id (org/repo: letters, digits, '._-')")
        return ModelName(None, None, revision, repo)
    if "@" in name:
        name, revision = name.split("@", 1)
        revision = _check_revision(original, revision)
    family, dot, tag = name.lower().partition(".")
    if not _PART.fullmatch(family):
        raise _malformed(original, f"{family!r} is not a family name (lowercase letters, digits, '_')")
    if dot and not all(_PART.fullmatch(part) for part in tag.split(".")):
        raise _malformed(original, f"{tag!r} is not a tag (lowercase letters, digits, '_', dot-separated)")
    return ModelName(family, tag or None, revision, None)


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
        self._aliases: dict[str, str] = {}  # former name -> card name
        self._warned_aliases: set[str] = set()
        self._builders: dict[str, Any] | None = None
        self._lock = threading.RLock()
        if load_entry_points:
            self.load_entry_points()

    # ------------------------------------------------------------------ plugins

    def _fail(self, name: str, module: str, exc: BaseException, dist=None, *, what: str = "failed to load") -> None:
        message = f"zoo plugin {name!r} ({module}) {what}: {type(exc).__name__}: {exc}"
        if _strict():
            raise PluginError(message) from None
        error = f"{type(exc).__name__}: {exc}"
        if any(p.name == name and p.error == error for p in self.failed):
            return  # already reported (cards and builders are collected again after each registration)
        warnings.warn(message + " -- skipped (set ZOO_STRICT_PLUGINS=1 to make this fatal)", PluginLoadWarning, stacklevel=3)
        self.failed.append(PluginInfo(name, module, dist, None, [], error=error))

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
        """Loaded plugins (and the ones that failed), sorted by name. A loaded plugin whose cards or
        builders were skipped carries the reason in ``error``."""
        out = []
        problems: dict[str, list[str]] = {}
        for failure in self.failed:
            problems.setdefault(failure.name, []).append(failure.error or "")
        for name, plugin in self.pm.list_name_plugin():
            hooks = sorted(caller.name for caller in (self.pm.get_hookcallers(plugin) or []))
            dist, version = self._dists.get(name, (None, None))
            error = "; ".join(problems.pop(name)) if name in problems else None
            out.append(PluginInfo(name, getattr(plugin, "__name__", type(plugin).__name__), dist, version, hooks, error=error))
        out += [f for f in self.failed if f.name in problems]  # never loaded at all
        return sorted(out, key=lambda p: p.name)

    def _call_each(self, hook_name: str, accept: Callable[[str, list[Any]], None]) -> None:
        """Call one hook implementation at a time; each plugin's registrations are collected,
        then ``accept(plugin_name, items)`` checks and takes them all. A plugin whose hook raises,
        or whose items ``accept`` refuses, is reported and contributes nothing (not half of its
        items); the other plugins are unaffected."""
        for impl in getattr(self.pm.hook, hook_name).get_hookimpls():
            plugin_name = self.pm.get_name(impl.plugin)
            items: list[Any] = []
            try:
                impl.function(register=items.append)
                accept(plugin_name, items)
            except Exception as exc:  # a broken plugin is reported, never fatal unless strict
                what = f"was skipped: its {hook_name} hook failed, so none of what it registers is used"
                self._fail(plugin_name, getattr(impl.plugin, "__name__", "?"), exc, self._dists.get(plugin_name, (None,))[0], what=what)

    # ------------------------------------------------------------------ cards

    @property
    def cards(self) -> dict[str, ModelCard]:
        """Every registered card by name (collected once, on first use)."""
        with self._lock:
            if self._cards is None:
                cards: dict[str, ModelCard] = {}
                owner: dict[str, str] = {}

                def accept(plugin_name: str, raw_cards: list[Any]) -> None:
                    mine: dict[str, ModelCard] = {}
                    for raw in raw_cards:
                        card = raw if isinstance(raw, ModelCard) else card_from_dict(raw, source=f"plugin {plugin_name}")
                        if not card.source:
                            card = card.__class__(**{**card.__dict__, "source": f"plugin {plugin_name}"})
                        if card.name in cards or card.name in mine:
                            first = f"{owner[card.name]} ({cards[card.name].source})" if card.name in cards else f"{plugin_name} itself"
                            raise PluginError(
                                f"model {card.name!r} is registered twice: by {first} and by {plugin_name} ({card.source}); "
                                "uninstall one of the plugins or rename the card"
                            )
                        mine[card.name] = card
                    self._check_defaults({**cards, **mine})
                    self._collect_aliases({**cards, **mine})  # an alias that clashes skips this plugin
                    cards.update(mine)
                    owner.update(dict.fromkeys(mine, plugin_name))

                self._call_each("register_cards", accept)
                self._aliases = self._collect_aliases(cards)
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

    @staticmethod
    def _collect_aliases(cards: dict[str, ModelCard]) -> dict[str, str]:
        aliases: dict[str, str] = {}
        for card in cards.values():
            for alias in card.aliases:
                if alias in cards:
                    raise PluginError(f"{card.name} ({card.source}) lists the alias {alias!r}, which is another card's name")
                if alias in aliases:
                    raise PluginError(f"the alias {alias!r} is claimed by {aliases[alias]} and by {card.name}; keep it on one card")
                aliases[alias] = card.name
        return aliases

    @property
    def aliases(self) -> dict[str, str]:
        """Former model names (card ``aliases``) and the card each now names."""
        _ = self.cards  # collects cards (and their aliases) on first use
        return dict(self._aliases)

    def card_owner(self, name: str) -> str:
        """The plugin that registered card ``name``."""
        _ = self.cards  # collects cards (and their owners) on first use
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
            if full in self._aliases:
                current = self._aliases[full]
                if full not in self._warned_aliases:
                    self._warned_aliases.add(full)
                    warnings.warn(f"model {full!r} is now called {current!r}; the old name still works but will be "
                                  f"removed: use {current!r}", RenamedModelWarning, stacklevel=3)
                return cards[current], parsed.revision
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

                def accept(plugin_name: str, items: list[Any]) -> None:
                    mine: dict[str, Any] = {}
                    for builder in items:
                        name = getattr(builder, "name", None)
                        if not name or not isinstance(name, str):
                            raise PluginError(f"plugin {plugin_name} registered a builder without a name: {builder!r}")
                        if name in builders or name in mine:
                            first = owner.get(name, plugin_name)
                            raise PluginError(f"builder {name!r} is registered twice: by {first} and by {plugin_name}")
                        mine[name] = builder
                    builders.update(mine)
                    owner.update(dict.fromkeys(mine, plugin_name))

                self._call_each("register_builders", accept)
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
