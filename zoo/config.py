"""Typed configs: OmegaConf structured merge with errors that name the bad field and its source.

Merge order (later wins): dataclass defaults < card ``config`` < config stored in the checkpoint
< user overrides. A key the dataclass does not have is an error, wherever it comes from.

Config values are data: strings are taken literally, so a ``${oc.env:SECRET}`` (or any other
OmegaConf interpolation) in a card, in a downloaded file's metadata or in an override is never
resolved; it stays the string it is. An override that contradicts what the checkpoint itself
states (:func:`check_overrides`) is a :class:`~zoo.errors.ConfigError` naming both values.

Example:
    >>> from dataclasses import dataclass
    >>> @dataclass
    ... class Cfg:
    ...     width: int = 8
    ...     depth: int = 2
    >>> merge_config(Cfg, [("card", {"depth": 4}), ("overrides", {"width": 16})])
    Cfg(width=16, depth=4)
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from collections.abc import Iterable, Mapping
from typing import Any

from zoo.errors import ConfigError

__all__ = ["check_overrides", "literal", "merge_config"]

_INTERPOLATION = re.compile(r"(\\*)\$\{")


def literal(value: Any) -> Any:
    """``value`` with every string escaped so that OmegaConf keeps it verbatim (no ``${...}``
    interpolation or resolver runs); dicts, lists and tuples are walked.

    Example:
        >>> literal({"path": "${oc.env:HOME}/x", "n": [1, "a${b}"]})
        {'path': '\\\\${oc.env:HOME}/x', 'n': [1, 'a\\\\${b}']}
    """
    if isinstance(value, str):
        return _INTERPOLATION.sub(lambda m: m.group(1) * 2 + "\\${", value)
    if isinstance(value, Mapping):
        return {k: literal(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [literal(v) for v in value]
    return value


def _flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(_flatten(value, name + "."))
        else:
            out[name] = value
    return out


def _normal(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    if isinstance(value, (list, tuple)):
        return [_normal(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _normal(v) for k, v in value.items()}
    return value


def check_overrides(checkpoint_config: Mapping[str, Any] | None, overrides: Mapping[str, Any] | None, *, source: str = "the checkpoint") -> None:
    """Raise :class:`~zoo.errors.ConfigError` when a user override contradicts a value the
    checkpoint's own config states (the weights were made for the checkpoint's value, so the
    override would build a model that silently disagrees with them). Equal values pass.

    Example:
        >>> check_overrides({"levels": [8, 5, 5, 5], "dim": 6}, {"levels": [8, 5, 5, 5]})
        >>> check_overrides({"levels": [8, 5, 5, 5]}, {"levels": [8, 8, 8]})  # doctest: +IGNORE_EXCEPTION_DETAIL
        Traceback (most recent call last):
        zoo.errors.ConfigError: override levels=[8, 8, 8] contradicts the checkpoint's levels=[8, 5, 5, 5]
    """
    if not checkpoint_config or not overrides:
        return
    stated = _flatten(_normal(dict(checkpoint_config)))
    asked = _flatten(_normal(dict(overrides)))
    clashes = [f"{k}={asked[k]!r} contradicts the checkpoint's {k}={stated[k]!r}"
               for k in sorted(set(stated) & set(asked)) if asked[k] != stated[k]]
    if clashes:
        raise ConfigError(
            f"override {'; '.join(clashes)} (stated by {source}). The weights were made for the checkpoint's "
            "value: drop the override, load a checkpoint made with that value (weights=...), or build a fresh "
            "model with pretrained=False"
        )


def _field_names(cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)] if dataclasses.is_dataclass(cls) else []


def merge_config(config_class: type, layers: Iterable[tuple[str, Mapping[str, Any] | None]]) -> Any:
    """Merge named layers of overrides onto ``config_class``'s defaults; return an instance.

    Args:
        config_class: a dataclass (nested dataclasses allowed), or ``dict`` for untyped configs.
        layers: ``(source_name, mapping)`` pairs in increasing priority; the name appears in errors.
    """
    from omegaconf import OmegaConf
    from omegaconf.errors import ConfigKeyError, OmegaConfBaseException, ValidationError

    if config_class is dict:  # untyped: plain values, no OmegaConf involved
        out: dict[str, Any] = {}
        for _, layer in layers:
            out.update(layer or {})
        return out
    base = OmegaConf.structured(config_class)
    for source, layer in layers:
        if not layer:
            continue
        try:
            base = OmegaConf.merge(base, OmegaConf.create(literal(dict(layer))))
        except ConfigKeyError as exc:
            key = str(getattr(exc, "full_key", "") or getattr(exc, "key", "") or exc)
            leaf = key.rsplit(".", 1)[-1]
            close = difflib.get_close_matches(leaf, _field_names(config_class), n=3)
            hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            raise ConfigError(
                f"unknown config field {key!r} in {source} for {config_class.__name__}{hint} "
                f"(known fields: {', '.join(_field_names(config_class))})"
            ) from None
        except ValidationError as exc:
            key = getattr(exc, "full_key", "?")
            raise ConfigError(f"bad value for config field {key!r} in {source}: {str(exc.msg).splitlines()[0]}") from None
        except OmegaConfBaseException as exc:
            raise ConfigError(f"config from {source} could not be merged: {exc}") from None
    try:
        return OmegaConf.to_object(base)
    except OmegaConfBaseException as exc:
        raise ConfigError(f"incomplete or mistyped config for {config_class.__name__}: {exc}") from None
