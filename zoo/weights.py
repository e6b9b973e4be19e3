"""Reading weight files and loading them strictly, with errors that say what to fix.

Example:
    >>> import torch, tempfile, os
    >>> from safetensors.torch import save_file
    >>> path = os.path.join(tempfile.mkdtemp(), "w.safetensors")
    >>> save_file({"weight": torch.zeros(2, 2)}, path, metadata={"k": "v"})
    >>> sd, meta = load_weights_file(path)
    >>> list(sd), meta
    (['weight'], {'k': 'v'})
"""

from __future__ import annotations

import contextlib
import zipfile
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from zoo.errors import CheckpointError

__all__ = ["load_checkpoint", "load_pickle", "load_safetensors", "load_state_dict_strict", "load_weights_file", "no_init"]


def load_safetensors(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """``(state_dict, metadata)`` of a safetensors file; a corrupt file is a CheckpointError."""
    from safetensors import safe_open

    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = dict(f.metadata() or {})
            return {k: f.get_tensor(k) for k in f.keys()}, meta
    except FileNotFoundError:
        raise CheckpointError(f"weights file not found: {path}") from None
    except Exception as exc:  # SafetensorError and friends: truncated, bad header, ...
        raise CheckpointError(
            f"{path} is not a readable safetensors file ({exc}). If it came from the hub, "
            "re-download it with `zoo download NAME --force`."
        ) from exc


def load_pickle(path: str | Path) -> dict[str, torch.Tensor]:
    """Load a pickled checkpoint with ``weights_only=True`` (no code runs from the file)."""
    path = Path(path)
    try:
        return torch.load(str(path), map_location="cpu", weights_only=True, mmap=False)
    except FileNotFoundError:
        raise CheckpointError(f"weights file not found: {path}") from None
    except Exception as exc:
        raise CheckpointError(
            f"{path} could not be read as a weights-only pickle ({type(exc).__name__}: {exc}). "
            "zoo never unpickles arbitrary objects; convert it with `zoo convert` or re-download it."
        ) from exc


_REDOWNLOAD = "re-download it (a truncated download is the usual cause)"


def _inert_for(name: str) -> type:
    """A stand-in for a class a checkpoint names but zoo does not import.

    Calling or instantiating it (pickle REDUCE / NEWOBJ) returns an empty ``OrderedDict`` tagged
    with ``name`` (``_zoo_inert``) and the call's arguments (``_args``): the unpickler may then
    fill it (SETITEMS) or set its attributes (BUILD), both of which torch's weights-only
    unpickler allows for OrderedDict. No code from the file runs.
    """

    def make(*args: Any, **kwargs: Any) -> OrderedDict:
        out: OrderedDict = OrderedDict()
        out.__dict__.update(_zoo_inert=name, _args=args)
        return out

    return type(f"Inert[{name}]", (), {"__new__": staticmethod(lambda cls, *a, **k: make(*a, **k)), "__module__": __name__})


def load_checkpoint(path: str | Path, *, what: str, inert_unknown: bool = False, allow: Sequence[type] = (),
                    mmap: bool = True, fix: str = _REDOWNLOAD) -> dict[str, Any]:
    """The whole mapping of a pickled checkpoint, read with ``torch.load(weights_only=True)``.

    No code from the file ever runs. ``allow`` adds classes to torch's weights-only allowlist
    (e.g. ``argparse.Namespace``). ``inert_unknown`` maps every other class the file names
    (Lightning's ``AttributeDict``, ``pathlib`` paths in trainer state, ...) to an inert
    placeholder: an ``OrderedDict`` holding only the data the file gives it, tagged
    ``_zoo_inert=<class name>``. ``mmap`` memory-maps zip checkpoints (legacy non-zip pickles
    are read without it). ``what`` names the model in errors; ``fix`` is the advice a file that
    cannot be read gets. Every failure is a :class:`~zoo.errors.CheckpointError`.

    Example:
        >>> import argparse, os, tempfile
        >>> path = os.path.join(tempfile.mkdtemp(), "release.pt")
        >>> torch.save({"model": {"w": torch.ones(2)}, "args": argparse.Namespace(lr=0.1)}, path)
        >>> ckpt = load_checkpoint(path, what="Demo", allow=[argparse.Namespace])
        >>> ckpt["model"]["w"].tolist(), ckpt["args"].lr
        ([1.0, 1.0], 0.1)
        >>> load_checkpoint(path, what="Demo", inert_unknown=True)["args"]._zoo_inert
        'argparse.Namespace'
        >>> load_checkpoint(path, what="Demo")  # doctest: +IGNORE_EXCEPTION_DETAIL
        Traceback (most recent call last):
        zoo.errors.CheckpointError: ... could not be read as a weights-only Demo checkpoint ...
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{what} checkpoint not found: {path}")
    allowed: list[Any] = list(allow)
    if inert_unknown:
        try:
            unsafe = torch.serialization.get_unsafe_globals_in_checkpoint(str(path))
        except Exception as exc:  # noqa: BLE001 -- not a zip pickle at all
            raise CheckpointError(f"{path} is not a torch checkpoint ({type(exc).__name__}: {exc}); {fix}") from exc
        known = {f"{c.__module__}.{c.__qualname__}" for c in allow}
        allowed += [(_inert_for(name), name) for name in unsafe if name not in known]
    try:
        with torch.serialization.safe_globals(allowed):
            obj = torch.load(str(path), map_location="cpu", weights_only=True, mmap=mmap and zipfile.is_zipfile(path))
    except Exception as exc:  # noqa: BLE001 -- UnpicklingError, truncated zip, EOFError, ...
        raise CheckpointError(f"{path} could not be read as a weights-only {what} checkpoint "
                              f"({type(exc).__name__}: {exc}); {fix}") from exc
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{path}: expected a {what} checkpoint mapping, got {type(obj).__name__}; {fix}")
    return dict(obj)


def load_weights_file(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Read safetensors (with metadata) or a weights-only pickle (``.bin``, ``.pt``, ``.ckpt``)."""
    path = Path(path)
    if path.suffix == ".safetensors":
        return load_safetensors(path)
    return load_pickle(path), {}


def load_state_dict_strict(module: torch.nn.Module, state_dict: Mapping[str, torch.Tensor], *, what: str = "model") -> None:
    """``module.load_state_dict(state_dict, strict=True)`` with one error listing every missing
    key, unexpected key, shape mismatch and dtype-kind mismatch (an integer or bool tensor where
    the model holds floats, a float where it holds integers: torch would cast them silently).

    Example:
        >>> m = torch.nn.Linear(2, 2)
        >>> load_state_dict_strict(m, {"weight": torch.ones(2, 2, dtype=torch.int64), "bias": torch.zeros(2)})
        ... # doctest: +IGNORE_EXCEPTION_DETAIL
        Traceback (most recent call last):
        zoo.errors.CheckpointError: weights do not fit model: dtype mismatches (1): weight: checkpoint torch.int64 vs model torch.float32
    """
    own = module.state_dict()
    missing = sorted(set(own) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(own))
    shapes = [
        f"{k}: checkpoint {tuple(state_dict[k].shape)} vs model {tuple(own[k].shape)}"
        for k in sorted(set(own) & set(state_dict))
        if tuple(own[k].shape) != tuple(state_dict[k].shape)
    ]
    kinds = [
        f"{k}: checkpoint {state_dict[k].dtype} vs model {own[k].dtype}"
        for k in sorted(set(own) & set(state_dict))
        if isinstance(state_dict[k], torch.Tensor) and _kind(state_dict[k].dtype) != _kind(own[k].dtype)
    ]
    if missing or unexpected or shapes or kinds:
        lines = [f"weights do not fit {what}:"]
        for title, items in (("missing keys", missing), ("unexpected keys", unexpected), ("shape mismatches", shapes),
                             ("dtype mismatches (integer/bool vs float)", kinds)):
            if items:
                shown = ", ".join(items[:12]) + (f", ... ({len(items) - 12} more)" if len(items) > 12 else "")
                lines.append(f"  {title} ({len(items)}): {shown}")
        lines.append("  Check that the weights belong to this card (or its config overrides match the file).")
        raise CheckpointError("\n".join(lines))
    module.load_state_dict(state_dict, strict=True)


def _kind(dtype: torch.dtype) -> str:
    """float / complex / integral (bool counts as integral: uint8 and bool masks interchange)."""
    if dtype.is_floating_point:
        return "float"
    return "complex" if dtype.is_complex else "integral"


_INIT_FUNCS = (
    "uniform_", "normal_", "trunc_normal_", "constant_", "ones_", "zeros_", "xavier_uniform_",
    "xavier_normal_", "kaiming_uniform_", "kaiming_normal_", "orthogonal_",
)


@contextlib.contextmanager
def no_init() -> Iterator[None]:
    """Skip random initialisation while building a module whose weights are loaded next.

    Parameters are allocated but ``torch.nn.init`` functions become no-ops, so building a large
    model costs no RNG time. Deterministic buffers computed in ``__init__`` are unaffected.
    """
    saved = {name: getattr(torch.nn.init, name) for name in _INIT_FUNCS}
    try:
        for name in _INIT_FUNCS:
            setattr(torch.nn.init, name, lambda tensor, *a, **k: tensor)
        yield
    finally:
        for name, fn in saved.items():
            setattr(torch.nn.init, name, fn)
