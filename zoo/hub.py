"""Resolving a card's files: the Hugging Face Hub (pinned revision, cache, offline) or a
directory inside an installed package.

Every file, dependencies included, goes through :func:`hf_hub_download` with the same
``revision``/``cache_dir``/``local_files_only``; ``HF_HUB_OFFLINE=1`` and ``HF_ENDPOINT`` are read
at call time. Downloads show a progress bar and go to ``.incomplete`` files first, so an
interrupted download never leaves a corrupt file in the cache.

Example:
    >>> import zoo.hub
    >>> zoo.hub.is_offline({"HF_HUB_OFFLINE": "1"})
    True
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path
from typing import Mapping

from zoo.builders import CheckpointFiles
from zoo.cards import ModelCard
from zoo.errors import HubError

__all__ = ["resolve_files", "download_file", "is_offline"]

_TRUE = {"1", "on", "yes", "true"}


def is_offline(environ: Mapping[str, str] | None = None) -> bool:
    """True when ``HF_HUB_OFFLINE`` is set to a true value."""
    env = os.environ if environ is None else environ
    return env.get("HF_HUB_OFFLINE", "").strip().lower() in _TRUE


def default_cache_dir() -> str | None:
    """The hub cache from ``HF_HUB_CACHE`` or ``HF_HOME`` as set *now* (huggingface_hub reads
    them once at import); ``None`` means huggingface_hub's default."""
    if os.environ.get("HF_HUB_CACHE"):
        return os.environ["HF_HUB_CACHE"]
    if os.environ.get("HF_HOME"):
        return os.path.join(os.environ["HF_HOME"], "hub")
    return None


def download_file(
    repo_id: str,
    filename: str,
    *,
    revision: str | None = None,
    cache_dir: str | Path | None = None,
    local_files_only: bool | None = None,
    force_download: bool = False,
) -> Path:
    """Download (or find in the cache) one file of a hub repo and return its local path.

    Raises :class:`zoo.errors.HubError` naming the repo, file and revision, with the fix.
    """
    from huggingface_hub import hf_hub_download
    from huggingface_hub import errors as hf_errors

    offline = is_offline() if local_files_only is None else (local_files_only or is_offline())
    where = f"{repo_id}/{filename} at revision {revision or 'main'}"
    try:
        path = hf_hub_download(
            repo_id,
            filename,
            revision=revision,
            cache_dir=str(cache_dir) if cache_dir is not None else default_cache_dir(),
            local_files_only=offline,
            force_download=force_download,
            endpoint=os.environ.get("HF_ENDPOINT") or None,
        )
    except hf_errors.LocalEntryNotFoundError as exc:
        if offline:
            raise HubError(
                f"{where} is not in the local cache and zoo is offline (HF_HUB_OFFLINE / local_files_only). "
                "Run `zoo download NAME` once with network access, or pass weights=PATH to zoo.load."
            ) from exc
        raise HubError(
            f"could not reach the hub for {where} and it is not cached ({exc.__cause__ or exc}). "
            "Check your connection or HF_ENDPOINT, or pass weights=PATH to zoo.load."
        ) from exc
    except hf_errors.RevisionNotFoundError as exc:
        raise HubError(f"revision {revision!r} does not exist in {repo_id}; check the card's pinned revision or your revision= argument") from exc
    except (hf_errors.EntryNotFoundError, hf_errors.RemoteEntryNotFoundError) as exc:
        raise HubError(f"file {filename!r} does not exist in {repo_id} at revision {revision or 'main'}; the card's 'files' list is wrong") from exc
    except hf_errors.GatedRepoError as exc:
        raise HubError(f"{repo_id} is gated: accept its licence on the hub and log in (`hf auth login`)") from exc
    except hf_errors.RepositoryNotFoundError as exc:
        raise HubError(f"hub repository {repo_id!r} not found (or private); check the card's hub_repo") from exc
    except hf_errors.HfHubHTTPError as exc:
        raise HubError(f"hub error for {where}: {exc}") from exc
    except Exception as exc:
        # a dropped connection / truncated body / size mismatch, from whichever HTTP stack the
        # installed huggingface_hub uses; anything else is not ours to translate
        transport = type(exc).__module__.split(".")[0] in {"httpx", "httpx2", "httpcore", "httpcore2", "h11", "requests", "urllib3"}
        if not (transport or isinstance(exc, (OSError, ValueError))):
            raise
        raise HubError(
            f"download of {where} failed ({type(exc).__name__}: {exc}); the partial file stays out of the "
            "cache's snapshots (it is resumed next time): retry the command"
        ) from exc
    return Path(path)


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
) -> CheckpointFiles:
    """Local paths of every file of ``card`` and of its dependencies (looked up in ``cards``).

    ``revision`` overrides the card's pinned revision (not its dependencies' pins); the cache and
    offline settings apply to every file.
    """
    if card.package_dir:
        paths = _package_files(card)
        origin = f"package {card.package_dir}"
    elif card.hub_repo:
        rev = revision or card.revision
        paths = {
            name: download_file(card.hub_repo, name, revision=rev, cache_dir=cache_dir,
                                local_files_only=local_files_only, force_download=force_download)
            for name in card.files
        }
        origin = f"hf-hub:{card.hub_repo}@{rev or 'main'}"
    else:
        raise HubError(f"{card.name} has no published weights (no hub_repo); load it with pretrained=False or pass weights=PATH")
    deps = {}
    for role, dep_name in card.dependencies.items():
        if cards is None or dep_name not in cards:
            raise HubError(f"{card.name} depends on {dep_name!r} ({role}), which is not in the catalogue")
        deps[role] = resolve_files(cards[dep_name], cards, cache_dir=cache_dir,
                                   local_files_only=local_files_only, force_download=force_download)
    return CheckpointFiles(paths=paths, deps=deps, origin=origin)
