"""The ModelBuilder protocol: how a plugin turns release files + config into a module.

Example (a builder whose release format is one safetensors file):
    >>> from dataclasses import dataclass
    >>> @dataclass
    ... class TinyConfig:
    ...     width: int = 8
    >>> class TinyBuilder(ModelBuilder):
    ...     name = "tiny"
    ...     config_class = TinyConfig
    ...     def build(self, config):
    ...         import torch
    ...         return torch.nn.Linear(config.width, config.width)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

if TYPE_CHECKING:  # torch is imported lazily
    import torch

    from zoo.cards import ModelCard

__all__ = ["CheckpointFiles", "Checkpoint", "ModelBuilder", "weights_file"]


@dataclass
class CheckpointFiles:
    """Local paths of a card's files, keyed by the file names the card lists.

    ``deps`` holds the resolved files of the card's dependencies by role (e.g. ``"vae"``).
    ``primary`` is the first file of the card.
    """

    paths: dict[str, Path]
    deps: dict[str, "CheckpointFiles"] = field(default_factory=dict)
    origin: str = ""

    def __getitem__(self, name: str) -> Path:
        try:
            return self.paths[name]
        except KeyError:
            raise KeyError(f"no file {name!r} among {sorted(self.paths)} ({self.origin})") from None

    @property
    def primary(self) -> Path:
        return next(iter(self.paths.values()))


@dataclass
class Checkpoint:
    """What a builder read from the release files: the raw state dict (original key layout) and
    the config stored inside the files (already mapped onto the builder's config fields)."""

    state_dict: Mapping[str, "torch.Tensor"]
    config: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


class ModelBuilder:
    """Base class for builders; plugins override what differs.

    The default ``read_checkpoint`` reads the primary file (safetensors, or a pickle loaded with
    ``weights_only=True``) and its safetensors metadata is ignored; ``convert`` is the identity.
    """

    name: str = ""
    config_class: type = dict

    def needed_dependencies(self, files: CheckpointFiles, card: "ModelCard") -> set[str]:
        """The roles of ``card.dependencies`` this builder needs, given the model's own ``files``.

        ``zoo.load`` resolves (downloads) only these, so a self-contained file loads offline.
        Default: every dependency the card names. Override when the release file can carry
        what a dependency would supply (e.g. FlexTok files that hold their VAE).
        """
        return set(card.dependencies)

    def read_checkpoint(self, files: CheckpointFiles) -> Checkpoint:
        from zoo.weights import load_weights_file

        state, _meta = load_weights_file(files.primary)
        return Checkpoint(state_dict=state)

    def build(self, config: Any) -> "torch.nn.Module":
        raise NotImplementedError(f"builder {self.name!r} does not implement build()")

    def convert(self, state_dict: Mapping[str, "torch.Tensor"], config: Any) -> Mapping[str, "torch.Tensor"]:
        return state_dict

    def finalize(self, model: "torch.nn.Module", files: CheckpointFiles | None, config: Any) -> "torch.nn.Module":
        """Hook after weights are loaded (e.g. attach a dependency such as a VAE); default: no-op."""
        return model


def weights_file(files: CheckpointFiles, what: str, suffixes: Sequence[str], *,
                 read_pickle: Callable[[Path], Mapping[str, Any]], expected: str = "") -> tuple[Path, dict[str, Any]]:
    """``(path, state_dict)`` of the first of ``files`` whose suffix is in ``suffixes``.

    A ``.safetensors`` file is read with :func:`zoo.weights.load_safetensors`, anything else
    with ``read_pickle`` (the plugin's weights-only reader, usually built on
    :func:`zoo.weights.load_checkpoint`); a Lightning-style ``{"state_dict": ...}`` wrapper is
    unwrapped. No matching file is a :class:`~zoo.errors.CheckpointError` naming the files
    given and what was ``expected``.

    Example:
        >>> import os, tempfile, torch
        >>> path = Path(tempfile.mkdtemp()) / "demo.ckpt"
        >>> torch.save({"state_dict": {"w": torch.zeros(1)}, "epoch": 3}, path)
        >>> found, state = weights_file(CheckpointFiles({"demo.ckpt": path}), "Demo", (".ckpt",),
        ...                             read_pickle=lambda p: torch.load(p, weights_only=True))
        >>> found.name, list(state)
        ('demo.ckpt', ['w'])
        >>> weights_file(CheckpointFiles({"a.txt": path}), "Demo", (".ckpt",), read_pickle=print, expected="a .ckpt")
        ... # doctest: +IGNORE_EXCEPTION_DETAIL
        Traceback (most recent call last):
        zoo.errors.CheckpointError: no Demo weights among ['a.txt'] (); expected a .ckpt
    """
    from zoo.errors import CheckpointError  # noqa: PLC0415

    weights = [p for n, p in files.paths.items() if Path(n).suffix in suffixes]
    if not weights:
        raise CheckpointError(f"no {what} weights among {sorted(files.paths)} ({files.origin}); "
                              f"expected {expected or 'one of ' + ', '.join(suffixes)}")
    path = weights[0]
    if path.suffix == ".safetensors":
        from zoo.weights import load_safetensors  # noqa: PLC0415

        state: Mapping[str, Any] = load_safetensors(path)[0]
    else:
        state = read_pickle(path)
    inner = state.get("state_dict")
    return path, dict(inner if isinstance(inner, Mapping) else state)
