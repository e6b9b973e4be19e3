"""What is in the hub cache, per model: list, remove, verify (``zoo cache ...``).

Everything is read through ``huggingface_hub.scan_cache_dir`` (repos, revisions, files, blobs,
orphaned ``.incomplete`` downloads) and mapped onto the catalogue: a model is a card whose
``hub_repo`` is cached, and its files are the ones the card lists. Several cards can share one
repo (``yucornetto/RAR`` holds four) and, across revisions, one blob: :func:`plan_removal`
removes only the snapshot files of the named models and the blobs nothing else still uses.

The weights of the networks inside metrics (LPIPS backbones, the FID Inception;
:mod:`zoo.evaluation.metric_weights`) are plain files in ``<hub cache>/zoo-metrics``; they are
listed as ``metric:<name>`` (``metric:lpips-alex``), with their download URL as ``repo``, and
``zoo cache rm`` / ``verify`` take them too (verify checks the sha256 prefix the publisher puts
in the file name).

Example:
    >>> import tempfile
    >>> list_cached(cache_dir=tempfile.mkdtemp())
    []
"""

from __future__ import annotations

import fnmatch
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from zoo.cards import ModelCard
from zoo.errors import UnknownModelError

__all__ = [
    "CachedFile",
    "CachedModel",
    "Removal",
    "VerifyRow",
    "METRIC_PREFIX",
    "cache_dir",
    "cache_summary",
    "clean_partial",
    "human_size",
    "list_cached",
    "plan_removal",
    "scan",
    "verify_cached",
]

DAY = 24 * 3600
METRIC_PREFIX = "metric:"


@dataclass
class CachedFile:
    """One snapshot file of a model in the cache."""

    name: str
    revision: str
    path: str
    blob: str
    size: int


@dataclass
class CachedModel:
    """A model (card, or a cached repo no card names: ``hf-hub:org/repo``) and its cached files."""

    name: str
    repo: str
    files: list[CachedFile] = field(default_factory=list)
    size_on_disk: int = 0  # unique blobs of these files
    revisions: list[str] = field(default_factory=list)
    status: str = "complete"  # complete | partial
    missing: list[str] = field(default_factory=list)
    partial_bytes: int = 0  # .incomplete downloads in the repo

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def cache_dir(path: str | Path | None = None) -> Path:
    """The hub cache directory zoo uses now (``cache_dir`` argument, else the environment)."""
    from zoo.hub import default_cache_dir

    return Path(path) if path is not None else Path(default_cache_dir())


def scan(path: str | Path | None = None):
    """``huggingface_hub.scan_cache_dir`` of the cache, or ``None`` when the cache does not exist yet."""
    from huggingface_hub import scan_cache_dir
    from huggingface_hub.errors import CacheNotFound

    root = cache_dir(path)
    try:
        return scan_cache_dir(root)
    except CacheNotFound:
        return None


def _cards() -> list[ModelCard]:
    from zoo.registry import get_registry

    return list(get_registry().cards.values())


def _models(info, cards: list[ModelCard]) -> list[CachedModel]:
    if info is None:
        return []
    partial_by_repo: dict[Path, int] = {}
    for inc in getattr(info, "incomplete_files", ()) or ():
        repo_path = Path(inc.file_path).parent.parent
        partial_by_repo[repo_path] = partial_by_repo.get(repo_path, 0) + inc.size_on_disk
    out: list[CachedModel] = []
    for repo in sorted(info.repos, key=lambda r: r.repo_id):
        if repo.repo_type != "model":
            continue
        owners = [c for c in cards if c.hub_repo == repo.repo_id]
        claimed: set[str] = set()
        entries = [(c.name, set(c.files), c) for c in owners] if owners else []
        for c in owners:
            claimed |= set(c.files)
        every = {f.file_name for rev in repo.revisions for f in rev.files}
        if every - claimed:
            entries.append((f"hf-hub:{repo.repo_id}", every - claimed, None))
        partial = partial_by_repo.get(Path(repo.repo_path), 0)
        for name, wanted, card in entries:
            model = CachedModel(name=name, repo=repo.repo_id, partial_bytes=partial)
            blobs: dict[str, int] = {}
            for rev in sorted(repo.revisions, key=lambda r: r.commit_hash):
                for f in sorted(rev.files, key=lambda f: f.file_name):
                    if f.file_name in wanted:
                        model.files.append(CachedFile(f.file_name, rev.commit_hash, str(f.file_path), str(f.blob_path), f.size_on_disk))
                        blobs[str(f.blob_path)] = f.size_on_disk
                        if rev.commit_hash not in model.revisions:
                            model.revisions.append(rev.commit_hash)
            if not model.files and not (card is not None and partial):
                continue
            model.size_on_disk = sum(blobs.values())
            have = {f.name for f in model.files if card is None or not card.pinned or f.revision == card.revision}
            model.missing = sorted(wanted - have) if card is not None else []
            model.status = "partial" if model.missing else "complete"
            out.append(model)
    return out


def _metric_models(root: str | Path | None) -> list[CachedModel]:
    """The metric weights in ``<hub cache>/zoo-metrics`` as ``metric:<name>`` entries (a file no
    metric names: ``metric:<file name>``); torch's ``.partial`` downloads count as partial bytes,
    and a metric with only those is ``partial``."""
    from zoo.evaluation.metric_weights import METRIC_WEIGHTS, metric_cache_dir

    folder = metric_cache_dir(cache_dir(root))
    if not folder.is_dir():
        return []
    from zoo.evaluation.packaged_weights import PACKAGED  # converted copies are listed under their metric

    specs = {spec.filename: spec for spec in METRIC_WEIGHTS.values()}
    specs.update({packaged.filename: METRIC_WEIGHTS[name] for name, packaged in PACKAGED.items()})
    found: dict[str, CachedModel] = {}
    for path in sorted(folder.iterdir()):
        if not path.is_file():
            continue
        partial = path.name.endswith(".partial")  # torch.hub: <file>.<uuid>.partial while downloading
        filename = path.name.rsplit(".", 2)[0] if partial else path.name
        spec = specs.get(filename)
        name = METRIC_PREFIX + (spec.name if spec is not None else filename)
        model = found.setdefault(name, CachedModel(name=name, repo=spec.url if spec is not None else str(folder)))
        size = path.stat().st_size
        if partial:
            model.partial_bytes += size
        else:
            model.files.append(CachedFile(path.name, "", str(path), str(path), size))
            model.size_on_disk += size
    for model in found.values():
        if not model.files:
            model.status, model.missing = "partial", [model.name[len(METRIC_PREFIX):]]
    return sorted(found.values(), key=lambda m: m.name)


def list_cached(pattern: str = "*", *, cache_dir: str | Path | None = None) -> list[CachedModel]:
    """Cached models whose name matches ``pattern`` (fnmatch), with files, size and status, then
    the cached metric weights (``metric:lpips-alex``, ...; see the module docstring).

    A model is ``partial`` when some file its card lists (at its pinned revision, when pinned)
    is not in the cache.
    """
    models = _models(scan(cache_dir), _cards()) + _metric_models(cache_dir)
    return [m for m in models if fnmatch.fnmatchcase(m.name, pattern) or fnmatch.fnmatchcase(m.repo, pattern)]


@dataclass
class Removal:
    """What :func:`plan_removal` found: snapshot files and blobs to delete, bytes freed, and the
    blobs kept because another cached model (or file) uses them."""

    models: list[str]
    links: list[str] = field(default_factory=list)
    blobs: list[str] = field(default_factory=list)
    kept_blobs: dict[str, list[str]] = field(default_factory=dict)
    freed: int = 0

    def execute(self) -> None:
        """Delete the planned files; then remove snapshots and repos left empty."""
        for p in self.links:
            Path(p).unlink(missing_ok=True)
        for p in self.blobs:
            Path(p).unlink(missing_ok=True)
        for p in {Path(p) for p in self.links}:
            _prune_empty(p.parent)


def _prune_empty(folder: Path) -> None:
    """Remove empty folders up to the snapshot; a repo without snapshots goes entirely."""
    while folder.name and folder.parent.name != "snapshots" and not any(folder.iterdir()):
        folder.rmdir()
        folder = folder.parent
    if folder.parent.name == "snapshots" and folder.is_dir() and not any(folder.iterdir()):
        snapshots = folder.parent
        folder.rmdir()
        repo = snapshots.parent
        commit = folder.name
        refs = repo / "refs"
        if refs.is_dir():
            for ref in refs.rglob("*"):
                if ref.is_file() and ref.read_text().strip() == commit:
                    ref.unlink()
        if not any(snapshots.iterdir()):
            blobs = repo / "blobs"
            if not blobs.is_dir() or not any(p for p in blobs.iterdir() if not p.name.endswith(".incomplete")):
                shutil.rmtree(repo)


def plan_removal(names: list[str], *, cache_dir: str | Path | None = None) -> Removal:
    """Plan removing the cached files of ``names`` (card names, families or ``hf-hub:org/repo``):
    their snapshot files, and the blobs that no other cached model's file points to."""
    info = scan(cache_dir)
    models = _models(info, _cards()) + _metric_models(cache_dir)
    chosen: list[CachedModel] = []
    for name in names:
        hits = [m for m in models if m.name == name or m.name.split(".", 1)[0] == name]
        if not hits:
            raise UnknownModelError(f"{name!r} is not in the cache ({cache_dir or 'default cache'}); `zoo cache ls` lists what is")
        chosen.extend(h for h in hits if h not in chosen)
    plan = Removal(models=[m.name for m in chosen])
    chosen_names = {m.name for m in chosen}
    owners: dict[str, set[str]] = {}  # snapshot file -> models listing it
    for m in models:
        for f in m.files:
            owners.setdefault(f.path, set()).add(m.name)
    kept_links = {p: names - chosen_names for p, names in owners.items() if names & chosen_names and names - chosen_names}
    # snapshot links to unlink; a metric's file is its own blob (below), with no snapshot folder to prune
    targets = {f.path for m in chosen for f in m.files if f.path not in kept_links and not m.name.startswith(METRIC_PREFIX)}
    users: dict[str, set[str]] = {}  # blob -> who still uses it after the removal
    if info is not None:
        for repo in info.repos:
            for rev in repo.revisions:
                for f in rev.files:
                    if str(f.file_path) not in targets:
                        who = owners.get(str(f.file_path), set()) - chosen_names or {f"{repo.repo_id}/{f.file_name}"}
                        users.setdefault(str(f.blob_path), set()).update(who)
    sizes = {f.blob: f.size for m in chosen for f in m.files}
    plan.links = sorted(targets)
    for blob, size in sorted(sizes.items()):
        if blob in users:
            plan.kept_blobs[blob] = sorted(users[blob])
        else:
            plan.blobs.append(blob)
            plan.freed += size
    return plan


def clean_partial(*, cache_dir: str | Path | None = None, older_than: float = DAY, dry_run: bool = False) -> list[tuple[str, int]]:
    """Delete orphaned ``.incomplete`` downloads (and metric weights' ``.partial`` ones) older than
    ``older_than`` seconds (default a day: a younger one may still be resuming). Returns
    ``(path, bytes)`` of each."""
    from zoo.evaluation.metric_weights import metric_cache_dir

    info = scan(cache_dir)
    cutoff = time.time() - older_than
    metrics = metric_cache_dir(cache_dir)
    candidates = [Path(inc.file_path) for inc in (getattr(info, "incomplete_files", ()) or ())] if info is not None else []
    candidates += list(metrics.glob("*.partial")) if metrics.is_dir() else []  # metric weights' torch.hub downloads
    out = []
    for path in sorted(candidates, key=str):
        try:
            stat = path.stat()
        except FileNotFoundError:
            continue
        if stat.st_mtime > cutoff:
            continue
        if not dry_run:
            path.unlink(missing_ok=True)
        out.append((str(path), stat.st_size))
    return out


@dataclass
class VerifyRow:
    """One cached file checked against its card: ``ok``, ``mismatch``, ``unpinned`` (the card
    records no hash: the computed one is shown) or ``other-revision`` (not the pinned commit)."""

    model: str
    file: str
    revision: str
    status: str
    detail: str = ""


def verify_cached(name: str | None = None, *, cache_dir: str | Path | None = None) -> list[VerifyRow]:
    """Re-hash cached files (sha256) and compare with the card's ``file_info``."""
    from zoo.hub import sha256_of
    from zoo.registry import get_registry

    cards = get_registry().cards
    rows = []
    models = list_cached(cache_dir=cache_dir)
    if name is not None:
        models = [m for m in models if m.name == name or m.name.split(".", 1)[0] == name]
        if not models:
            raise UnknownModelError(f"{name!r} is not in the cache; `zoo cache ls` lists what is")
    for m in models:
        card = cards.get(m.name)
        if m.name.startswith(METRIC_PREFIX):
            rows.extend(_verify_metric(m))
            continue
        for f in m.files:
            got = sha256_of(f.path)
            info = card.file_info.get(f.name) if card is not None else None
            if card is not None and card.pinned and f.revision != card.revision:
                rows.append(VerifyRow(m.name, f.name, f.revision, "other-revision", f"the card pins {card.revision[:12]}; sha256 {got}"))
            elif info is None or (info.sha256 is None and info.size is None):
                rows.append(VerifyRow(m.name, f.name, f.revision, "unpinned", f"sha256 {got} (the card records none)"))
            elif info.sha256 is not None and got != info.sha256:
                rows.append(VerifyRow(m.name, f.name, f.revision, "mismatch", f"sha256 {got}, the card says {info.sha256}"))
            elif info.size is not None and os.path.getsize(f.path) != info.size:
                rows.append(VerifyRow(m.name, f.name, f.revision, "mismatch", f"{os.path.getsize(f.path)} bytes, the card says {info.size}"))
            else:
                rows.append(VerifyRow(m.name, f.name, f.revision, "ok", "sha256 matches" if info.sha256 else "size matches (no sha256 for non-LFS files)"))
    return rows


def _verify_metric(model: CachedModel) -> list[VerifyRow]:
    """A metric weights file against the sha256 prefix its publisher puts in the file name."""
    from zoo.evaluation.metric_weights import METRIC_WEIGHTS
    from zoo.evaluation.packaged_weights import PACKAGED
    from zoo.hub import sha256_of

    name = model.name[len(METRIC_PREFIX):]
    spec, packaged = METRIC_WEIGHTS.get(name), PACKAGED.get(name)
    rows = []
    for f in model.files:
        got = sha256_of(f.path)
        if packaged is not None and f.name == packaged.filename:
            rows.append(VerifyRow(model.name, f.name, "", "unpinned", f"sha256 {got} (converted from {packaged.distribution}'s "
                                  f"{packaged.path}, whose sha256 {packaged.sha256[:8]}... was checked when converting)"))
        elif spec is None or not spec.hash_prefix:
            rows.append(VerifyRow(model.name, f.name, "", "unpinned", f"sha256 {got} (the publisher names no hash)"))
        elif got.startswith(spec.hash_prefix):
            rows.append(VerifyRow(model.name, f.name, "", "ok", f"sha256 starts with {spec.hash_prefix}, as its name says"))
        else:
            rows.append(VerifyRow(model.name, f.name, "", "mismatch", f"sha256 {got}, the file name says {spec.hash_prefix}..."))
    return rows


def _free_disk(path: Path) -> int | None:
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        return shutil.disk_usage(probe).free
    except OSError:
        return None


def cache_summary(path: str | Path | None = None) -> dict[str, Any]:
    """Where the cache is, its size, partial downloads and the free disk there (for ``zoo doctor``).

    ``size_on_disk`` counts the hub repos and the metric weights (``<hub cache>/zoo-metrics``);
    ``metric_files`` / ``metric_bytes`` say how much of it is metric weights, and partial counts
    include their unfinished downloads."""
    root = cache_dir(path)
    info = scan(root)
    incomplete = list(getattr(info, "incomplete_files", ()) or ()) if info is not None else []
    metrics = _metric_models(root)
    metric_bytes = sum(m.size_on_disk for m in metrics)
    metric_partial = [m.partial_bytes for m in metrics if m.partial_bytes]
    return {
        "cache_dir": str(root),
        "exists": info is not None or bool(metrics),
        "size_on_disk": (int(info.size_on_disk) if info is not None else 0) + metric_bytes,
        "repos": len(info.repos) if info is not None else 0,
        "metric_files": sum(len(m.files) for m in metrics),
        "metric_bytes": metric_bytes,
        "partial_files": len(incomplete) + len(metric_partial),
        "partial_bytes": sum(i.size_on_disk for i in incomplete) + sum(metric_partial),
        "free_disk": _free_disk(root),
    }


def human_size(n: int | None) -> str:
    """``1536`` -> ``'1.5 KB'``.

    Example:
        >>> human_size(1536), human_size(0)
        ('1.5 KB', '0 B')
    """
    if n is None:
        return "?"
    value = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1024 or unit == "TB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError  # unreachable
