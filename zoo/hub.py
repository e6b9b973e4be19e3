"""Resolving a card's files: the Hugging Face Hub (revision, cache, offline, checksums) or a
directory inside an installed package.

Every file, dependencies included, goes through :func:`download_file` with the same
``revision``/``cache_dir``/``local_files_only``. ``HF_HUB_OFFLINE``, ``HF_ENDPOINT``,
``HF_HUB_CACHE`` and ``HF_HOME`` are read at each call (huggingface_hub reads them once, at
import; zoo passes the values it reads explicitly), so setting or clearing them in a running
process takes effect at the next call.

Downloads go to ``blobs/<etag>.incomplete`` in the cache first and move into place only when
complete (and, when the card records a sha256, only when the hash matches), so an interrupted or
corrupt download never leaves a file where a loader reads. A download killed outright (SIGKILL,
power loss) is resumed by the next call with an HTTP ``Range`` request: only the missing bytes
are fetched.

Example:
    >>> import zoo.hub
    >>> zoo.hub.is_offline({"HF_HUB_OFFLINE": "1"})
    True
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from importlib import resources
from pathlib import Path

from zoo.builders import CheckpointFiles
from zoo.cards import ModelCard
from zoo.errors import HubError

__all__ = ["PARTIAL_SUFFIX", "default_cache_dir", "download_file", "is_offline", "resolve_files", "sha256_of"]

_TRUE = {"1", "on", "yes", "true"}
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
PARTIAL_SUFFIX = ".incomplete"
"""Suffix of a file being downloaded (zoo's resumable ``<etag>.incomplete`` and huggingface_hub's
per-process ``<etag>.<id>.incomplete``)."""


def is_offline(environ: Mapping[str, str] | None = None) -> bool:
    """True when ``HF_HUB_OFFLINE`` is set to a true value (read now, not at import)."""
    env = os.environ if environ is None else environ
    return env.get("HF_HUB_OFFLINE", "").strip().lower() in _TRUE


def default_cache_dir() -> str:
    """The hub cache as set *now*: ``HF_HUB_CACHE``, else ``$HF_HOME/hub``, else
    ``~/.cache/huggingface/hub`` (huggingface_hub reads these once, at import).

    Example:
        >>> default_cache_dir().endswith("hub") or "HF_HUB_CACHE" in os.environ
        True
    """
    if os.environ.get("HF_HUB_CACHE"):
        return os.environ["HF_HUB_CACHE"]
    if os.environ.get("HF_HOME"):
        return os.path.join(os.environ["HF_HOME"], "hub")
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(xdg, "huggingface", "hub")


def sha256_of(path: str | Path, chunk: int = 1 << 22) -> str:
    """The sha256 hex digest of a file, read in chunks.

    Example:
        >>> import tempfile
        >>> p = Path(tempfile.mkdtemp()) / "x"
        >>> _ = p.write_bytes(b"abc")
        >>> sha256_of(p)[:12]
        'ba7816bf8f01'
    """
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


@contextmanager
def _hf_offline_state(offline: bool) -> Iterator[None]:
    """huggingface_hub blocks every request when its import-time ``HF_HUB_OFFLINE`` constant is
    true; make it say what the environment says for this call."""
    from huggingface_hub import constants

    saved = constants.HF_HUB_OFFLINE
    constants.HF_HUB_OFFLINE = offline
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = saved


def _offline_reason(local_files_only: bool | None) -> str:
    if is_offline():
        return f"HF_HUB_OFFLINE={os.environ.get('HF_HUB_OFFLINE')} is set"
    return "local_files_only=True was passed"


def _storage_folder(cache_dir: str, repo_id: str) -> Path:
    return Path(cache_dir) / ("models--" + repo_id.replace("/", "--"))


def _fetch_blob_resumable(repo_id: str, filename: str, *, revision: str | None, cache_dir: str, endpoint: str | None,
                          force_download: bool, sha256: str | None) -> bool:
    """Put the file's blob into the cache, resuming ``blobs/<etag>.incomplete`` with a ``Range``
    request; huggingface_hub then finds the blob and only links it into the snapshot.

    huggingface_hub 1.x downloads into a per-process temporary file that a killed process leaves
    behind and no later call reuses; this keeps a stable partial file instead. Files that
    huggingface_hub fetches through Xet storage (when ``hf_xet`` is installed) are left to it.
    Returns whether it downloaded the blob.
    """
    from huggingface_hub import get_hf_file_metadata, hf_hub_url, try_to_load_from_cache
    from huggingface_hub.file_download import http_get, is_xet_available
    from huggingface_hub.utils import WeakFileLock, build_hf_headers

    if not force_download and isinstance(try_to_load_from_cache(repo_id, filename, cache_dir=cache_dir, revision=revision), str):
        return False  # cached for this revision: nothing to fetch
    url = hf_hub_url(repo_id, filename, revision=revision, endpoint=endpoint)
    try:
        meta = get_hf_file_metadata(url, endpoint=endpoint)
    except Exception as exc:
        if _is_transport_error(exc):
            return False  # hub unreachable: huggingface_hub falls back to the cache or says it cannot
        raise
    if meta.etag is None or meta.commit_hash is None:
        return False  # not a hub answer huggingface_hub could cache either: let it raise its error
    if sha256 is not None and _SHA256.match(meta.etag) and meta.etag != sha256:
        # the hub's ETag of an LFS file is its sha256: no need to download it to know it differs
        raise HubError(
            f"{repo_id}/{filename} at revision {revision or 'main'}: the hub reports sha256 {meta.etag}, which does "
            f"not match the card's {sha256}; nothing was downloaded. The card's pin and the hub disagree: re-pin "
            "the card (`zoo registry pin NAME`) or report the repository"
        )
    if meta.xet_file_data is not None and is_xet_available():
        return False
    storage = _storage_folder(cache_dir, repo_id)
    blob = storage / "blobs" / meta.etag
    if blob.exists() and not force_download:
        return False
    partial = blob.with_name(meta.etag + PARTIAL_SUFFIX)
    lock = Path(cache_dir) / ".locks" / storage.name / f"{meta.etag}.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    blob.parent.mkdir(parents=True, exist_ok=True)
    with WeakFileLock(str(lock)):
        if blob.exists() and not force_download:
            return False
        if force_download:
            partial.unlink(missing_ok=True)
        have = partial.stat().st_size if partial.exists() else 0
        if meta.size is not None and have > meta.size:  # not a prefix of this file: start again
            partial.unlink()
            have = 0
        with open(partial, "ab") as f:
            http_get(meta.location, f, resume_size=have, headers=build_hf_headers(), expected_size=meta.size,
                     displayed_filename=filename)
        if sha256 is not None:
            got = sha256_of(partial)
            if got != sha256:
                partial.unlink()
                raise HubError(
                    f"{repo_id}/{filename} at revision {revision or 'main'}: sha256 {got} does not match the card's "
                    f"{sha256}; the file was not kept. The card's pin and the hub disagree: re-pin the card "
                    "(`zoo registry pin NAME`) or report the repository"
                )
        os.replace(partial, blob)
        return True


def _verify_cached(path: Path, repo_id: str, filename: str, revision: str | None, sha256: str | None, size: int | None) -> None:
    """A cached file against the card's pin: its size, and its sha256 unless the blob's name
    (the hub's sha256 of an LFS file) already says it. A mismatch leaves the cache."""
    blob = path.resolve()
    problem = None
    if size is not None and blob.stat().st_size != size:
        problem = f"has {blob.stat().st_size} bytes, the card says {size}"
    elif sha256 is not None and blob.name != sha256:
        got = sha256_of(blob)
        if got != sha256:
            problem = f"has sha256 {got}, the card says {sha256}"
    if problem is None:
        return
    path.unlink(missing_ok=True)
    if blob != path:
        blob.unlink(missing_ok=True)
    raise HubError(
        f"{repo_id}/{filename} at revision {revision or 'main'} {problem}; the file was removed from the cache. "
        "Download it again (`zoo download NAME`); if it still differs, re-pin the card (`zoo registry pin NAME`)"
    )


def download_file(
    repo_id: str,
    filename: str,
    *,
    revision: str | None = None,
    cache_dir: str | Path | None = None,
    local_files_only: bool | None = None,
    force_download: bool = False,
    sha256: str | None = None,
    size: int | None = None,
) -> Path:
    """Download (or find in the cache) one file of a hub repo and return its local path.

    ``sha256``/``size`` (from a pinned card) are checked on download and on every cache hit
    (sizes, and the blob's name when it is the hub's sha256; ``zoo cache verify`` re-hashes).
    Raises :class:`zoo.errors.HubError` naming the repo, file and revision, with the fix.
    """
    from huggingface_hub import errors as hf_errors
    from huggingface_hub import hf_hub_download

    if sha256 is not None and not _SHA256.match(sha256):
        raise HubError(f"sha256 for {repo_id}/{filename} must be 64 lowercase hex digits, got {sha256!r}")
    offline = bool(local_files_only) or is_offline()
    where = f"{repo_id}/{filename} at revision {revision or 'main'}"
    if offline and force_download:
        raise HubError(f"cannot download {where} again: zoo is offline ({_offline_reason(local_files_only)}). "
                       "Drop --force / force_download to use the cached copy, or go online to re-download")
    cache = str(cache_dir) if cache_dir is not None else default_cache_dir()
    endpoint = os.environ.get("HF_ENDPOINT") or None
    try:
        with _hf_offline_state(offline):
            fetched = False
            if not offline:
                fetched = _fetch_blob_resumable(repo_id, filename, revision=revision, cache_dir=cache, endpoint=endpoint,
                                                force_download=force_download, sha256=sha256)
            path = hf_hub_download(
                repo_id,
                filename,
                revision=revision,
                cache_dir=cache,
                local_files_only=offline,
                force_download=force_download and not fetched,  # a forced download happened above
                endpoint=endpoint,
            )
    except HubError:
        raise
    except hf_errors.LocalEntryNotFoundError as exc:
        if offline:
            raise HubError(
                f"{where} is not in the local cache ({cache}) and zoo is offline ({_offline_reason(local_files_only)}). "
                "Run `zoo download NAME` once with network access, or pass weights=PATH to zoo.load."
            ) from exc
        raise HubError(
            f"could not reach the hub for {where} and it is not cached ({exc.__cause__ or exc}). "
            "Check your connection or HF_ENDPOINT, or pass weights=PATH to zoo.load."
        ) from exc
    except hf_errors.RevisionNotFoundError as exc:
        raise HubError(f"revision {revision!r} does not exist in {repo_id}; check the card's revision or your revision= argument") from exc
    except (hf_errors.EntryNotFoundError, hf_errors.RemoteEntryNotFoundError) as exc:
        raise HubError(f"file {filename!r} does not exist in {repo_id} at revision {revision or 'main'}; the card's 'files' list is wrong") from exc
    except hf_errors.GatedRepoError as exc:
        raise HubError(f"{repo_id} is gated: accept its licence on the hub and log in (`hf auth login`)") from exc
    except hf_errors.RepositoryNotFoundError as exc:
        raise HubError(f"hub repository {repo_id!r} not found (or private); check the card's hub_repo") from exc
    except hf_errors.HfHubHTTPError as exc:
        raise HubError(f"hub error for {where}: {exc}") from exc
    except OSError as exc:
        if exc.errno not in _UNWRITABLE:
            translated = _translate_os_error(exc, where, cache)
            if translated is exc:
                raise
            raise translated from exc
        raise HubError(
            f"cannot write {where} into the cache: {exc.filename or cache} is not a writable directory "
            f"({exc.strerror or exc}). Point HF_HUB_CACHE (or cache_dir=) at a writable directory"
        ) from exc
    except Exception as exc:
        # a dropped connection / truncated body from whichever HTTP stack the installed
        # huggingface_hub uses; anything else is not ours to translate
        if not _is_transport_error(exc):
            raise
        raise _interrupted(where, exc) from exc
    local = Path(path)
    if sha256 is not None or size is not None:
        _verify_cached(local, repo_id, filename, revision, sha256, size)
    return local


_UNWRITABLE = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOTDIR, errno.EEXIST}


def _translate_os_error(exc: OSError, where: str, cache: str) -> BaseException:
    if exc.errno == errno.ENOSPC or "disk space" in str(exc).lower():
        return HubError(f"not enough disk space for {where} in {cache} ({exc}); free space or point HF_HUB_CACHE elsewhere")
    if _is_transport_error(exc) or "consistency check" in str(exc).lower():
        return _interrupted(where, exc)
    return exc


def _is_transport_error(exc: BaseException) -> bool:
    return type(exc).__module__.split(".")[0] in {"httpx", "httpx2", "httpcore", "httpcore2", "h11", "requests", "urllib3"}


def _interrupted(where: str, exc: BaseException) -> HubError:
    return HubError(
        f"download of {where} was interrupted ({type(exc).__name__}: {exc}); the partial file stays out of the "
        "cache's snapshots and the next attempt resumes it: run the command again when the connection is back"
    )


def _package_files(card: ModelCard) -> dict[str, Path]:
    package, _, sub = card.package_dir.partition(":")  # "zoo_plugins.flextok:demo/tiny"
    try:
        root = resources.files(package)
    except ModuleNotFoundError as exc:
        raise HubError(f"card {card.name}: package {package!r} holding its weights is not installed") from exc
    base = Path(str(root.joinpath(sub))) if sub else Path(str(root))
    out = {}
    for name in card.files:
        path = base / name
        if not path.is_file():
            raise HubError(f"card {card.name}: embedded file {path} is missing; reinstall zoo")
        out[name] = path
    return out


def resolve_files(
    card: ModelCard,
    cards: Mapping[str, ModelCard] | None = None,
    *,
    revision: str | None = None,
    cache_dir: str | Path | None = None,
    local_files_only: bool | None = None,
    force_download: bool = False,
    dependencies: bool = True,
) -> CheckpointFiles:
    """Local paths of every file of ``card`` and (with ``dependencies``) of its dependencies,
    looked up in ``cards``.

    ``revision`` overrides the card's revision (not its dependencies'); the cache and offline
    settings apply to every file. Files are checked against the card's ``file_info`` (sha256,
    size) when it has one and the revision is the card's own.
    """
    if card.package_dir:
        paths = _package_files(card)
        origin = f"package {card.package_dir}"
    elif card.hub_repo:
        rev = revision or card.revision
        pinned = rev == card.revision
        paths = {}
        for name in card.files:
            info = card.file_info.get(name) if pinned else None
            paths[name] = download_file(card.hub_repo, name, revision=rev, cache_dir=cache_dir, local_files_only=local_files_only,
                                        force_download=force_download, sha256=info.sha256 if info else None,
                                        size=info.size if info else None)
        origin = f"hf-hub:{card.hub_repo}@{rev or 'main'}"
    elif card.weights_url:
        raise HubError(f"{card.name}'s weights are published off the Hugging Face Hub: download "
                       f"{', '.join(card.files) or 'them'} from {card.weights_url} and pass weights=PATH")
    else:
        raise HubError(f"{card.name} has no published weights (no hub_repo); load it with pretrained=False or pass weights=PATH")
    deps = {}
    for role, dep_name in (card.dependencies.items() if dependencies else ()):
        if cards is None or dep_name not in cards:
            raise HubError(f"{card.name} depends on {dep_name!r} ({role}), which is not in the catalogue")
        deps[role] = resolve_files(cards[dep_name], cards, cache_dir=cache_dir,
                                   local_files_only=local_files_only, force_download=force_download)
    return CheckpointFiles(paths=paths, deps=deps, origin=origin)
