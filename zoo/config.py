"""Typed configs: OmegaConf structured merge with errors that name the bad field and its source.

Merge order (later wins): dataclass defaults < card ``config`` < config stored in the checkpoint
< user overrides. A key the dataclass does not have is an error, wherever it comes from.

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
from typing import Any, Iterable, Mapping

from zoo.errors import ConfigError

__all__ = ["merge_config"]


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

    if config_class is dict:
        out: dict[str, Any] = {}
        for _, layer in layers:
            out.update(layer or {})
        return out
    base = OmegaConf.structured(config_class)
    for source, layer in layers:
        if not layer:
            continue
        try:
            base = OmegaConf.merge(base, OmegaConf.create(dict(layer)))
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
        raise ConfigError(f"incomplete config for {config_class.__name__}: {exc}") from None
