"""Public API: ``load``, ``list_models``, ``info``, ``plugins``, ``download``.

Example:
    >>> import zoo
    >>> isinstance(zoo.list_models(), list)
    True
"""

from __future__ import annotations

import difflib
import fnmatch
import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zoo.builders import CheckpointFiles
from zoo.card_facts import card_facts
from zoo.cards import KINDS, MODALITIES, ModelCard
from zoo.errors import CheckpointError, InputError, InputTypeError, ZooError
from zoo.registry import get_registry

if TYPE_CHECKING:
    import torch

    from zoo.interfaces import Model

__all__ = ["load", "list_models", "info", "plugins", "download", "get_card"]

log = logging.getLogger("zoo")
_DTYPES = {
    "float32": "float32", "fp32": "float32", "float": "float32",
    "float16": "float16", "fp16": "float16", "half": "float16",
    "bfloat16": "bfloat16", "bf16": "bfloat16",
}


def _natural_key(name: str) -> list[Any]:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def list_models(pattern: str = "*", kind: str | None = None, modality: str | None = None, *, with_weights: bool = False) -> list[str]:
    """Names of registered models matching an fnmatch ``pattern``, in natural sort order.

    A bare family (``"titok"``, no dot, no wildcard) means every model of that family
    (``"titok.*"``); a former name (a card alias) gives the card it now names. ``kind`` and ``modality`` must be values cards use
    (:data:`zoo.cards.KINDS`, :data:`zoo.cards.MODALITIES`): a misspelling is an
    :class:`~zoo.errors.InputError` naming the valid ones. Does not import torch.

    Example:
        >>> list_models("no-such-family.*")
        []
        >>> list_models("one_d_piece")
        ['one_d_piece.b_256', 'one_d_piece.l_256', 'one_d_piece.s_256']
        >>> list_models(kind="tokenzer")  # doctest: +IGNORE_EXCEPTION_DETAIL
        Traceback (most recent call last):
        zoo.errors.InputError: unknown kind 'tokenzer'. Did you mean 'tokenizer'? Valid kinds: ...
    """
    if not isinstance(pattern, str):
        raise InputTypeError(f"list_models: pattern must be a string such as 'flextok.*' (use '*' for all), got {type(pattern).__name__}")
    _check_choice("kind", kind, KINDS)
    _check_choice("modality", modality, MODALITIES)
    cards = get_registry().cards.values()
    pattern = pattern.lower()
    if not any(ch in pattern for ch in "*?[.") and any(c.family == pattern for c in cards):
        pattern += ".*"  # a bare family: all of its models
    out = [
        c.name for c in cards
        if fnmatch.fnmatchcase(c.name, pattern)
        and (kind is None or c.kind == kind)
        and (modality is None or c.modality == modality)
        and (not with_weights or c.weights_available)
    ]
    if not out and pattern in get_registry().aliases:  # a former name: its card, with the rename note
        card = get_registry().find_card(pattern)[0]
        out = [card.name] if (kind is None or card.kind == kind) and (modality is None or card.modality == modality) else []
    return sorted(out, key=_natural_key)


def _check_choice(what: str, value: str | None, allowed: tuple[str, ...]) -> None:
    """Refuse a ``kind`` / ``modality`` no card can have, suggesting the closest valid value."""
    if value is None or value in allowed:
        return
    close = difflib.get_close_matches(str(value), allowed, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise InputError(f"unknown {what} {value!r}.{hint} Valid {what}s: {', '.join(allowed)}")


def get_card(name: str) -> ModelCard:
    """The :class:`~zoo.cards.ModelCard` a name refers to (family alone = its default)."""
    return get_registry().find_card(name)[0]


_NO_WEIGHTS = {  # license_summary for cards without weights (card_facts' "weights"), instead of the code's licence
    "none needed": "none (this model has no weights)",
    "none published": "none published",
}


def info(name: str) -> dict[str, Any]:
    """A JSON-able record of a model: its card, licence, where the weights come from, and the
    catalogue's facts (:func:`zoo.card_facts.card_facts`: ``parameters``, ``download_bytes``,
    ``research_only``, ``licence_label``, ``headline_metric``, ``parity_status``, ``weights``).
    ``license_summary`` gives the weights' licence (the code's when the card names none), or says
    there are none for a model without weights (``weights: none (this model has no weights)``).

    Example:
        >>> import json, zoo
        >>> all(json.dumps(zoo.info(n)) for n in zoo.list_models())
        True
    """
    registry = get_registry()
    card, revision = registry.find_card(name)
    record = card.to_dict()
    record["family"] = card.family
    record["registered_by"] = registry.card_owner(card.name)
    record["requested_revision"] = revision
    record["pinned"] = card.pinned  # a 40-hex commit; otherwise the repo's main branch
    record["revision_note"] = card.revision_note  # e.g. "follows the repository's main branch (not pinned)"
    record["revision_pinned"] = card.pinned  # older name of "pinned"
    record.update(card_facts(card))  # parameters, download size, research only, headline metric, parity status
    lic = card.license
    record["license_summary"] = (
        f"code: {lic.code}; weights: {lic.weights or _NO_WEIGHTS.get(record['weights'], lic.code)}"
        + ("; RESEARCH USE ONLY" if lic.research_only else "")
        + (f"; {lic.notes}" if lic.notes else "")
    )
    return record


def plugins() -> list[dict[str, Any]]:
    """Loaded plugins (and the ones that failed to load) with the hooks they implement."""
    return [p.to_dict() for p in get_registry().plugins()]


def download(name: str, *, revision: str | None = None, cache_dir: str | Path | None = None, force: bool = False) -> CheckpointFiles:
    """Fetch a model's files (and its dependencies') into the cache; returns their paths."""
    from zoo.hub import resolve_files

    registry = get_registry()
    card, name_revision = registry.find_card(name)
    return resolve_files(card, registry.cards, revision=revision or name_revision, cache_dir=cache_dir, force_download=force)


_WEIGHT_SUFFIXES = {".safetensors", ".bin", ".ckpt", ".pt", ".pth"}


def _local_files(card: ModelCard, weights: str | Path) -> CheckpointFiles:
    """The card's files found at ``weights``: a file, or a directory holding them.

    In a directory each file the card lists is taken by its name, or else by its suffix when the
    directory holds exactly one file with that suffix (so a WavTokenizer ``x.ckpt`` + ``x.yaml``
    under any names is enough); side files the card does not list (not weights, not a suffix the
    card lists) are passed on under their own names.
    A single file stands for the card's file with the same suffix (its first file otherwise).
    """
    path = Path(weights).expanduser()
    if path.is_dir():
        present = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
        if not card.files:
            return CheckpointFiles({p.name: p for p in present}, origin=f"local-dir:{path}")
        taken: dict[str, Path] = {n: path / n for n in card.files if (path / n).is_file()}
        missing = []
        for name in (n for n in card.files if n not in taken):
            suffix = Path(name).suffix
            same = [p for p in present if p.suffix == suffix and p not in taken.values()]
            if len(same) == 1:
                taken[name] = same[0]
            elif len(same) > 1:
                raise CheckpointError(
                    f"{path} holds {len(same)} {suffix} files ({[p.name for p in same]}) and none is named {name!r}, "
                    f"which {card.name} needs: keep one, or name it {name!r}"
                )
            else:
                missing.append(name)
        if missing:
            raise CheckpointError(f"{path} lacks {missing}, which {card.name} needs (its release files: {card.files}; "
                                  "a file with the same suffix under another name is accepted when it is the only one)")
        # side files the card does not list (a WavTokenizer yaml next to a ckpt-only card) come
        # along; more weights files, or more of a suffix the card lists, do not
        listed = {Path(n).suffix for n in card.files}
        extra = {p.name: p for p in present if p not in taken.values() and p.name not in taken
                 and p.suffix not in listed and p.suffix not in _WEIGHT_SUFFIXES}
        return CheckpointFiles({**taken, **extra}, origin=f"local-dir:{path}")
    if path.is_file():
        same = [n for n in card.files if Path(n).suffix == path.suffix]
        key = path.name if not card.files else (same[0] if same else card.files[0])
        return CheckpointFiles({key: path}, origin=f"local-file:{path}")
    raise CheckpointError(f"weights={str(weights)!r}: no such file or directory")


def _dependency_card(card: ModelCard, role: str, cards: Any) -> ModelCard:
    if role not in card.dependencies:
        raise ZooError(f"the builder of {card.name} asks for a dependency {role!r} the card does not name "
                       f"(its dependencies: {card.dependencies or 'none'}); fix the card or the builder")
    dep = card.dependencies[role]
    if dep not in cards:
        raise ZooError(f"{card.name} depends on {dep!r} ({role}), which is not in the catalogue")
    return cards[dep]


def _resolve_dtype(dtype: Any):
    """``None`` or a floating torch dtype from a dtype or its name (``"bf16"``); anything else is
    an :class:`~zoo.errors.InputError` (model weights are floats: ``torch.int64`` is refused)."""
    import torch

    if dtype is None:
        return dtype
    if isinstance(dtype, torch.dtype):
        if not dtype.is_floating_point:
            raise InputError(f"dtype={dtype} is not a floating dtype; model weights are floats: use one of "
                             f"{sorted(set(_DTYPES.values()))} (or None to keep the checkpoint's)")
        return dtype
    key = str(dtype).replace("torch.", "").lower()
    if key not in _DTYPES:
        raise InputError(f"unknown dtype {dtype!r}; use one of {sorted(set(_DTYPES))}")
    return getattr(torch, _DTYPES[key])


def _is_meta(device: Any) -> bool:
    return device is not None and str(device) == "meta"


def load(
    name: str,
    *,
    pretrained: bool = True,
    weights: str | Path | None = None,
    revision: str | None = None,
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
    attn_backend: str | None = None,
    cache_dir: str | Path | None = None,
    local_files_only: bool | None = None,
    **overrides: Any,
) -> Model:
    """Build a ready model from its card: files -> config -> module -> strict weights.

    Args:
        name: ``family.tag[@revision]``, a family (its default tag), or ``hf-hub:org/repo[@rev]``.
        pretrained: load weights; ``False`` builds the architecture randomly, no download.
        weights: a local file or directory in the model's original release format (no download
            of the model's own files; a dependency resolves from the cache/hub only when the
            builder needs it given these files, see ``ModelBuilder.needed_dependencies``).
        revision: overrides the card's revision (its pinned commit, or ``main`` when not pinned).
        device, dtype: where and in which precision to put the model (``"bf16"`` etc. accepted).
            ``device="meta"`` with ``pretrained=False`` builds shapes only (no memory, instant;
            ``num_parameters()`` works).
        attn_backend: ``"sdpa"``, ``"math"`` or ``"xformers"`` for every attention in the model.
        cache_dir, local_files_only: passed to every hub download (``HF_HUB_OFFLINE`` honoured).
        **overrides: config fields (a typo is an error naming the field).

    Returns:
        The model, typed :data:`zoo.interfaces.Model`: a tokenizer (``encode`` / ``decode``),
        generator (``generate``) or token reducer (``apply`` / ``reduce``), each with ``card``,
        ``config``, ``name`` (the card's name), ``num_parameters()``, ``module_tree()`` and a
        one-line ``repr``. Narrow the type with ``isinstance(model, zoo.interfaces.Tokenizer)``.

    Example:
        >>> import zoo
        >>> zoo.load("no_such_model")  # doctest: +IGNORE_EXCEPTION_DETAIL
        Traceback (most recent call last):
        zoo.errors.UnknownModelError: unknown model 'no_such_model'.
    """
    from zoo.config import check_overrides, merge_config
    from zoo.hub import resolve_files
    from zoo.nn.attention import resolve_backend, set_model_backend
    from zoo.weights import load_state_dict_strict, no_init

    registry = get_registry()
    card, name_revision = registry.find_card(name)
    builder = registry.builder_for(card)
    torch_dtype = _resolve_dtype(dtype)
    from zoo._valuetools import check_device  # imports torch: only when a model is built

    check_device(device)
    if not isinstance(pretrained, bool):
        from zoo.errors import InputTypeError

        raise InputTypeError(f"pretrained must be True or False, got {pretrained!r} ({type(pretrained).__name__})")
    if weights is not None and not (isinstance(weights, str) or hasattr(weights, "__fspath__")):
        from zoo.errors import InputTypeError

        raise InputTypeError(f"weights must be a path (str or pathlib.Path) to a file or folder, got {type(weights).__name__}")
    if revision is not None:
        from zoo.registry import check_revision

        check_revision(revision)

    files: CheckpointFiles | None = None
    if weights is not None:
        files = _local_files(card, weights)
    elif pretrained and (card.hub_repo or card.package_dir):
        files = resolve_files(card, registry.cards, revision=revision or name_revision, cache_dir=cache_dir,
                              local_files_only=local_files_only, dependencies=False)
    elif pretrained and card.weights_url:
        raise ZooError(f"{card.name}'s weights are published off the Hugging Face Hub: download "
                       f"{', '.join(card.files) or 'the weights'} from {card.weights_url} and load them with "
                       f"zoo.load({card.name!r}, weights=PATH)")
    elif pretrained and not card.weights_available:
        raise ZooError(f"{card.name} has no published weights; use zoo.load({card.name!r}, pretrained=False) for a randomly initialised model")
    if files is not None:  # dependencies on demand: only what the builder needs given these files
        for role in sorted(builder.needed_dependencies(files, card)):
            files.deps[role] = resolve_files(_dependency_card(card, role, registry.cards), registry.cards,
                                             cache_dir=cache_dir, local_files_only=local_files_only)

    checkpoint = builder.read_checkpoint(files) if files is not None else None
    if checkpoint is not None:
        check_overrides(checkpoint.config, overrides, source=f"checkpoint {files.origin}")
    config = merge_config(
        builder.config_class,
        [
            (f"card {card.name} ({card.source})", card.config),
            (f"checkpoint {files.origin}" if files else "checkpoint", checkpoint.config if checkpoint else None),
            ("overrides", overrides),
        ],
    )
    if checkpoint is not None:
        with no_init():
            model = builder.build(config)
        state = builder.convert(checkpoint.state_dict, config)
        load_state_dict_strict(model, state, what=f"{card.name} (from {files.origin})")
    elif _is_meta(device):  # shapes only, no memory: zoo.load(name, pretrained=False, device="meta")
        import torch

        with torch.device("meta"), no_init():
            model = builder.build(config)
    else:
        model = builder.build(config)
    model = builder.finalize(model, files, config)
    if hasattr(model, "to") and (device is not None or torch_dtype is not None):
        model = model.to(device=device, dtype=torch_dtype)
    if hasattr(model, "eval"):
        model.eval()
    if attn_backend is not None:
        set_model_backend(model, attn_backend)
        chosen = resolve_backend(attn_backend, device or "cpu")
        log.info("%s: attention backend %s (asked for %s)", card.name, chosen, attn_backend)
    model.card = card
    model.config = config
    return model
