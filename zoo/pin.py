"""Pinning catalogue cards: resolve each card's hub repo to a commit and record its files.

:func:`pin_catalogue` reads a catalogue file (``registry.yaml``), asks the hub (the real
``huggingface_hub.HfApi.model_info(repo, revision=..., files_metadata=True)``) for the commit a
branch points at and the files at that commit, checks that every file a card lists exists there,
and rewrites only each pinned card's ``revision`` and ``file_info`` (sizes; sha256 of LFS files)
in the YAML *text*: comments, order and formatting stay as they are. ``zoo registry pin`` is the
command; ``--dry-run`` prints the diff.

Example:
    >>> text = "models:\\n  - name: a.b  # a card\\n    hub_repo: o/r\\n    files: [w.bin]\\n    notes: x\\n"
    >>> print(set_card_fields(text, "a.b", "0" * 40, {"w.bin": {"size": 3}}), end="")
    models:
      - name: a.b  # a card
        hub_repo: o/r
        revision: 0000000000000000000000000000000000000000
        files: [w.bin]
        file_info:
          w.bin: {size: 3}
        notes: x
"""

from __future__ import annotations

import difflib
import fnmatch
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zoo.errors import CardError, HubError

__all__ = ["CardPin", "PinResult", "check_pinned_text", "pin_catalogue", "resolve_pins", "set_card_fields"]

_ITEM = re.compile(r"^(?P<indent>\s*)- name:\s*(?P<name>[^\s#]+)")
_FIELD = re.compile(r"^(?P<indent>\s*)(?P<key>[A-Za-z_][A-Za-z0-9_]*):")


@dataclass
class CardPin:
    """What the hub said for one card: the commit and each listed file's size / sha256."""

    name: str
    repo: str
    commit: str
    files: dict[str, dict[str, Any]]


@dataclass
class PinResult:
    """The rewritten catalogue text, the pins, and the cards skipped (with the reason)."""

    old_text: str
    new_text: str
    pins: list[CardPin] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)

    def diff(self, path: str = "registry.yaml") -> str:
        """A unified diff of the rewrite (empty when nothing changed); only changed lines show as
        changed (no heuristic that treats the catalogue's many identical ``files:`` lines as junk)."""
        a, b = self.old_text.splitlines(True), self.new_text.splitlines(True)
        out = []
        for group in difflib.SequenceMatcher(None, a, b, autojunk=False).get_grouped_opcodes(3):
            if not out:
                out += [f"--- a/{path}\n", f"+++ b/{path}\n"]
            i1, i2, j1, j2 = group[0][1], group[-1][2], group[0][3], group[-1][4]
            out.append(f"@@ -{_hunk_range(i1, i2)} +{_hunk_range(j1, j2)} @@\n")
            for tag, a1, a2, b1, b2 in group:
                if tag == "equal":
                    out += [" " + line for line in a[a1:a2]]
                    continue
                out += ["-" + line for line in a[a1:a2]]
                out += ["+" + line for line in b[b1:b2]]
        return "".join(line if line.endswith("\n") else line + "\n" for line in out)


def _hunk_range(start: int, stop: int) -> str:
    """A unified-diff range (``start`` 0-based, ``stop`` exclusive), as ``diff -u`` writes it."""
    length = stop - start
    if length == 1:
        return f"{start + 1}"
    return f"{start if length == 0 else start + 1},{length}"


def _yaml_scalar(value: Any) -> str:
    if isinstance(value, int):
        return str(value)
    return f'"{value}"'


def _file_info_lines(indent: str, files: dict[str, dict[str, Any]]) -> list[str]:
    lines = [f"{indent}file_info:\n"]
    for fname, info in files.items():
        parts = ", ".join(f"{k}: {_yaml_scalar(info[k])}" for k in ("size", "sha256") if info.get(k) is not None)
        key = fname if re.fullmatch(r"[A-Za-z0-9_.\-/]+", fname) else f'"{fname}"'
        lines.append(f"{indent}  {key}: {{{parts}}}\n")
    return lines


def _card_block(lines: list[str], name: str) -> tuple[int, int, str]:
    """``(start, end, field indent)`` of the block-style card ``name`` in ``lines``."""
    for i, line in enumerate(lines):
        m = _ITEM.match(line)
        if m and m.group("name").strip("'\"") == name:
            item_indent = len(m.group("indent"))
            end = i + 1
            while end < len(lines):
                text = lines[end]
                if text.strip() and len(text) - len(text.lstrip()) <= item_indent:
                    break
                end += 1
            while end > i + 1 and not lines[end - 1].strip():  # trailing blank lines belong outside
                end -= 1
            return i, end, " " * (item_indent + 2)
    raise CardError(f"card {name!r} is not written in block style ('- name: {name}') in the catalogue file; pin it by hand")


def _field_span(lines: list[str], start: int, end: int, indent: str, key: str) -> tuple[int, int] | None:
    """The lines ``[a, b)`` of field ``key`` inside a card block (the key line and its continuation)."""
    first = start if lines[start].lstrip().startswith("- ") else None
    for i in range(start, end):
        line = lines[i]
        if i == first:
            body = " " * (len(line) - len(line.lstrip())) + "  " + line.lstrip()[2:]
        else:
            body = line
        m = _FIELD.match(body)
        if m and m.group("indent") == indent and m.group("key") == key:
            j = i + 1
            while j < end and (not lines[j].strip() or len(lines[j]) - len(lines[j].lstrip()) > len(indent)):
                j += 1
            while j > i + 1 and not lines[j - 1].strip():
                j -= 1
            return i, j
    return None


def set_card_fields(text: str, name: str, revision: str, files: dict[str, dict[str, Any]]) -> str:
    """``text`` with card ``name``'s ``revision`` and ``file_info`` set; every other byte kept.

    ``revision`` replaces the existing line (or goes after ``hub_repo``); ``file_info`` replaces
    the existing block (or goes after ``files``).
    """
    lines = text.splitlines(True)
    start, end, indent = _card_block(lines, name)
    info = _file_info_lines(indent, files)
    span = _field_span(lines, start, end, indent, "file_info")
    if span:
        lines[span[0]:span[1]] = info
    else:
        anchor = _field_span(lines, start, end, indent, "files")
        if anchor is None:
            raise CardError(f"card {name!r} has no 'files' field to pin")
        lines[anchor[1]:anchor[1]] = info
    start, end, indent = _card_block(lines, name)
    rev_line = f"{indent}revision: {revision}\n"
    span = _field_span(lines, start, end, indent, "revision")
    if span:
        old = lines[span[0]]
        m = re.search(r"\s+#.*$", old.rstrip("\n"))
        comment = m.group(0) if m else ""
        lines[span[0]:span[1]] = [rev_line.rstrip("\n") + comment + "\n"]
    else:
        anchor = _field_span(lines, start, end, indent, "hub_repo")
        if anchor is None:
            raise CardError(f"card {name!r} has no 'hub_repo' field")
        lines[anchor[1]:anchor[1]] = [rev_line]
    return "".join(lines)


def _hub_api(endpoint: str | None):
    from huggingface_hub import HfApi

    return HfApi(endpoint=endpoint or os.environ.get("HF_ENDPOINT") or None)


def resolve_pins(cards: list[dict[str, Any]], revision: str = "main", endpoint: str | None = None) -> list[CardPin]:
    """Ask the hub for each card's repo at ``revision``: the commit, and each listed file's size
    and (LFS) sha256. One ``model_info`` call per repo. Raises :class:`HubError` naming the card,
    the repo and what is missing."""
    from huggingface_hub import errors as hf_errors

    from zoo.hub import is_offline

    if is_offline():
        raise HubError("pinning asks the hub for commits, and HF_HUB_OFFLINE is set: run it with network access")
    api = _hub_api(endpoint)
    infos: dict[str, Any] = {}
    pins = []
    for card in cards:
        repo = card["hub_repo"]
        if repo not in infos:
            try:
                infos[repo] = api.model_info(repo, revision=revision, files_metadata=True)
            except hf_errors.RevisionNotFoundError as exc:
                raise HubError(f"card {card['name']}: revision {revision!r} does not exist in {repo}") from exc
            except hf_errors.RepositoryNotFoundError as exc:
                raise HubError(f"card {card['name']}: hub repository {repo!r} not found (or private/gated without login)") from exc
            except hf_errors.HfHubHTTPError as exc:
                raise HubError(f"card {card['name']}: the hub answered {exc} for {repo}") from exc
            except Exception as exc:
                if type(exc).__module__.split(".")[0] not in {"httpx", "httpx2", "httpcore", "httpcore2", "h11", "requests", "urllib3"}:
                    raise
                raise HubError(f"could not reach the hub at {api.endpoint} for {repo} ({type(exc).__name__}: {exc}); "
                               "pinning needs network access (check HF_ENDPOINT and your connection)") from exc
        info = infos[repo]
        siblings = {s.rfilename: s for s in (info.siblings or [])}
        missing = [f for f in card.get("files") or [] if f not in siblings]
        if missing:
            raise HubError(f"card {card['name']}: {missing} not in {repo} at {revision} (commit {info.sha}); "
                           f"the repo has {sorted(siblings)[:20]}. Fix the card's 'files'")
        files = {}
        for fname in card.get("files") or []:
            s = siblings[fname]
            entry: dict[str, Any] = {"size": s.lfs.size if s.lfs else s.size}
            if s.lfs:
                entry["sha256"] = s.lfs.sha256
            files[fname] = entry
        pins.append(CardPin(card["name"], repo, info.sha, files))
    return pins


def pin_catalogue(path: str | Path, pattern: str = "*", *, revision: str = "main", endpoint: str | None = None) -> PinResult:
    """Pin every card of the catalogue file ``path`` whose name matches ``pattern`` (fnmatch),
    and the cards they depend on. Returns the new text (not written: the caller decides)."""
    import yaml

    path = Path(path)
    text = path.read_text(encoding="utf-8")
    data = yaml.safe_load(text) or {}
    raw_cards = {c["name"]: c for c in data.get("models") or [] if isinstance(c, dict) and "name" in c}
    chosen = [n for n in raw_cards if fnmatch.fnmatchcase(n, pattern)]
    if not chosen:
        raise HubError(f"no card in {path} matches {pattern!r}")
    todo, seen = list(chosen), set()
    result = PinResult(old_text=text, new_text=text)
    while todo:
        name = todo.pop(0)
        if name in seen:
            continue
        seen.add(name)
        card = raw_cards.get(name)
        if card is None:
            result.skipped[name] = f"not in {path.name} (registered by a plugin): pin it in that plugin"
            continue
        todo.extend((card.get("dependencies") or {}).values())
    order = [n for n in raw_cards if n in seen]
    hub_cards = []
    for name in order:
        card = raw_cards[name]
        if not card.get("hub_repo"):
            result.skipped[name] = "no hub_repo (embedded or no weights)"
        else:
            hub_cards.append(card)
    result.pins = resolve_pins(hub_cards, revision=revision, endpoint=endpoint)
    new = text
    for pin in result.pins:
        new = set_card_fields(new, pin.name, pin.commit, pin.files)
    result.new_text = new
    return result


def check_pinned_text(text: str, label: str = "registry.yaml") -> None:
    """Validate a rewritten catalogue (every card against the schema) before it is written."""
    import tempfile

    from zoo.catalogue import load_catalogue

    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / label
        p.write_text(text, encoding="utf-8")
        try:
            load_catalogue(p)
        except CardError as exc:
            raise HubError(f"the pinned catalogue does not validate ({exc}); nothing was written") from exc
