"""Model cards: the typed schema of one catalogue entry, and validation of raw mappings.

A card is data only: where the weights live (hub repo + revision + files, and when pinned the
files' sizes and sha256), which plugin builds it, config overrides, licence, paper, modality and
reported metrics. A card is *pinned* when its ``revision`` is a 40-hex commit; otherwise it
follows the repository's main branch.

Example:
    >>> card = card_from_dict({"name": "demo.tiny", "kind": "tokenizer", "plugin": "demo",
    ...                        "modality": "image", "license": {"code": "Apache-2.0"}})
    >>> card.family, card.tag
    ('demo', 'tiny')
"""

from __future__ import annotations

import dataclasses
import json
import re
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Literal, Mapping, Optional

from zoo.errors import CardError

__all__ = ["ModelCard", "License", "Paper", "TokenSpec", "FileInfo", "UNPINNED_NOTE", "card_from_dict", "validate_dataclass", "KINDS", "MODALITIES"]

KINDS = ("tokenizer", "generator", "token_reducer")
MODALITIES = ("image", "video", "audio", "3d", "text", "multimodal", "any")
_NAME = re.compile(r"^[a-z0-9_]+(\.[a-z0-9_]+)+$")
_REVISION = re.compile(r"^[0-9a-f]{40}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
UNPINNED_NOTE = "follows the repository's main branch (not pinned)"


@dataclass(frozen=True)
class License:
    """Licences of the method's code and of the published weights (SPDX ids or short names)."""

    code: str
    weights: Optional[str] = None
    research_only: bool = False
    notes: str = ""


@dataclass(frozen=True)
class Paper:
    """The paper that introduced the model."""

    title: str
    url: str = ""
    year: Optional[int] = None


@dataclass(frozen=True)
class TokenSpec:
    """What the tokens look like: length per item (e.g. "1-256", "32", "75/s") and codebook."""

    length: str
    codebook_size: Optional[int] = None
    notes: str = ""


@dataclass(frozen=True)
class FileInfo:
    """What the hub reported for one file at the card's pinned commit: its size in bytes and,
    for LFS files, its sha256 (downloads are checked against both)."""

    size: int | None = None
    sha256: str | None = None


@dataclass(frozen=True)
class ModelCard:
    """One catalogue entry. ``name`` is ``family.tag``; the family's default card has ``default``."""

    name: str
    kind: Literal["tokenizer", "generator", "token_reducer"]
    plugin: str
    modality: Literal["image", "video", "audio", "3d", "text", "multimodal", "any"]
    license: License
    description: str = ""
    default: bool = False
    hub_repo: Optional[str] = None
    revision: Optional[str] = None
    files: list[str] = field(default_factory=list)
    file_info: dict[str, FileInfo] = field(default_factory=dict)
    package_dir: Optional[str] = None
    dependencies: dict[str, str] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    paper: Optional[Paper] = None
    tokens: Optional[TokenSpec] = None
    metrics: dict[str, Any] = field(default_factory=dict)
    parity: str = "untested"
    weights_available: bool = True
    weights_url: Optional[str] = None  # weights published off the Hub (Google Drive, a bucket): where to get `files`
    notes: str = ""
    tags: list[str] = field(default_factory=list)
    aliases: list[str] = field(default_factory=list)  # former names: they still load, with a one-time note
    source: str = ""  # where the card came from (file or plugin); set by the registry

    @property
    def family(self) -> str:
        return self.name.split(".", 1)[0]

    @property
    def tag(self) -> str:
        return self.name.split(".", 1)[1]

    @property
    def pinned(self) -> bool:
        """True when the card names its hub files at a fixed commit (a 40-hex ``revision``)."""
        return bool(self.hub_repo and self.revision and _REVISION.match(self.revision))

    @property
    def revision_note(self) -> str:
        """How the card's files are chosen, in words (empty for cards without hub files).

        Example:
            >>> card_from_dict({"name": "a.b", "kind": "tokenizer", "plugin": "p", "modality": "image",
            ...                 "license": {"code": "MIT"}, "hub_repo": "o/r", "files": ["w.bin"]}).revision_note
            "follows the repository's main branch (not pinned)"
        """
        if not self.hub_repo:
            return ""
        if self.pinned:
            hashed = "files hashed" if any(i.sha256 for i in self.file_info.values()) else "files not hashed"
            return f"pinned to commit {self.revision[:12]} ({hashed})"
        if self.revision:
            return f"follows {self.revision!r} (not pinned: not a commit)"
        return UNPINNED_NOTE

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able record of the card."""
        return dataclasses.asdict(self)


# --------------------------------------------------------------------------- validation


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _convert(value: Any, tp: Any, where: str) -> Any:
    """Check ``value`` against annotation ``tp`` (recursively); return the converted value."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _convert(value, arg, where)
            except CardError as exc:
                errors.append(str(exc))
        raise CardError(errors[0] if len(errors) == 1 else f"{where}: {value!r} fits none of {args}")
    if origin is Literal:
        if value not in args:
            raise CardError(f"{where}: {value!r} is not one of {list(args)}")
        return value
    if origin is list:
        if not isinstance(value, list):
            raise CardError(f"{where}: expected a list, got {type(value).__name__}")
        return [_convert(v, args[0], f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, Mapping):
            raise CardError(f"{where}: expected a mapping, got {type(value).__name__}")
        return {_convert(k, args[0], where): _convert(v, args[1], f"{where}.{k}") for k, v in value.items()}
    if dataclasses.is_dataclass(tp):
        return validate_dataclass(tp, value, where)
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp in (int, float) and isinstance(value, bool):
        raise CardError(f"{where}: expected {tp.__name__}, got a bool")
    if isinstance(tp, type) and not isinstance(value, tp):
        raise CardError(f"{where}: expected {_type_name(tp)}, got {type(value).__name__} {value!r}")
    return value


def validate_dataclass(cls: type, raw: Any, where: str) -> Any:
    """Build dataclass ``cls`` from a mapping; unknown keys and missing fields are errors that
    name ``where`` and the key."""
    if isinstance(raw, cls):
        return raw
    if not isinstance(raw, Mapping):
        raise CardError(f"{where}: expected a mapping for {cls.__name__}, got {type(raw).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise CardError(f"{where}: unknown key(s) {unknown}; allowed keys: {sorted(fields)}")
    kwargs = {}
    for name, f in fields.items():
        if name in raw:
            kwargs[name] = _convert(raw[name], hints[name], f"{where}.{name}")
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise CardError(f"{where}: missing required key {name!r}")
    return cls(**kwargs)


def card_from_dict(raw: Mapping[str, Any], source: str = "<card>") -> ModelCard:
    """Validate a raw mapping (from YAML or a plugin) into a :class:`ModelCard`.

    Errors name the source and the key, e.g. ``registry.yaml: card 'x.y': unknown key(s) ['lisence']``.
    """
    label = f"{source}: card {raw.get('name', '?')!r}" if isinstance(raw, Mapping) else source
    card = validate_dataclass(ModelCard, raw, label)
    if not _NAME.match(card.name):
        raise CardError(f"{label}: name must look like 'family.tag' (lowercase letters, digits, '_'), got {card.name!r}")
    for alias in card.aliases:
        if not _NAME.match(alias) or alias == card.name:
            raise CardError(f"{label}: alias {alias!r} must look like 'family.tag' and differ from the card's name")
    if card.revision is not None and card.hub_repo is None:
        raise CardError(f"{label}: 'revision' given without 'hub_repo'")
    if card.hub_repo is not None and card.package_dir is not None:
        raise CardError(f"{label}: give either 'hub_repo' or 'package_dir', not both")
    if (card.hub_repo or card.package_dir) and not card.files:
        raise CardError(f"{label}: 'files' must list the checkpoint files of {card.hub_repo or card.package_dir}")
    if card.file_info:
        if not (card.revision and _REVISION.match(card.revision)):
            raise CardError(f"{label}: 'file_info' records files at a commit; it needs a 40-hex 'revision' "
                            "(`zoo registry pin NAME` writes both)")
        unknown = sorted(set(card.file_info) - set(card.files))
        if unknown:
            raise CardError(f"{label}: file_info names {unknown}, which are not in 'files' {card.files}")
        for fname, info in card.file_info.items():
            if info.sha256 is not None and not _SHA256.match(info.sha256):
                raise CardError(f"{label}: file_info.{fname}.sha256 must be 64 lowercase hex digits, got {info.sha256!r}")
            if info.size is not None and info.size < 0:
                raise CardError(f"{label}: file_info.{fname}.size must be >= 0, got {info.size}")
    for key in ("metrics", "config"):  # they go out as JSON (`zoo info`, `zoo list --json`)
        try:
            json.dumps(getattr(card, key), allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise CardError(f"{label}: '{key}' must hold plain JSON values (numbers, strings, lists, mappings): {exc}") from None
    return dataclasses.replace(card, source=source)
