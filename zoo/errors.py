"""zoo's exception types: each names the problem and the fix.

Every error zoo raises on purpose derives from :class:`ZooError`, so ``except zoo.ZooError``
catches them all. Where callers traditionally catch a builtin, the builtin is a second base
(``except ValueError`` still catches a bad token id, ``except KeyError`` an unknown model).

::

    ZooError
    ├── UnknownModelError (KeyError)     a name no card matches, a malformed name
    ├── CardError (ValueError)           a model card that does not fit the schema
    ├── PluginError                      a plugin that failed to load, or two that clash
    ├── ConfigError (ValueError)         an unknown / mistyped / contradicting config field
    ├── CheckpointError                  weights that do not fit: keys, shapes, dtypes, corrupt file
    ├── HubError                         a file the hub or the cache could not provide
    └── InputError (ValueError)          a value passed to a model or a command that it cannot take
        ├── InputTypeError (TypeError)   ... of the wrong type or dtype
        ├── MediaError                   an image / audio file or array (not an image, NaN pixels)
        ├── TokenError                   token ids / latents (range, foreign tokenizer, length)
        └── ReducerError                 a token reducer's tokens or r / keep

Example:
    >>> from zoo.errors import TokenError, ZooError
    >>> try:
    ...     raise TokenError("token ids lie in [0, 70000] but the codebook has 64000 entries")
    ... except ValueError as exc:  # a TokenError is also a ValueError
    ...     isinstance(exc, ZooError)
    True
"""

from __future__ import annotations

__all__ = [
    "CardError",
    "CheckpointError",
    "ConfigError",
    "HubError",
    "InputError",
    "InputTypeError",
    "MediaError",
    "PluginError",
    "ReducerError",
    "TokenError",
    "UnknownModelError",
    "ZooError",
]


class ZooError(Exception):
    """Base class of every error zoo raises on purpose."""


class UnknownModelError(ZooError, KeyError):
    """A model name that no card matches (the message lists the closest names), or a malformed name."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class CardError(ZooError, ValueError):
    """A model card (registry.yaml or a plugin's) that does not fit the schema."""


class PluginError(ZooError):
    """A plugin that failed to load, or two plugins that clash."""


class ConfigError(ZooError, ValueError):
    """A config field that is unknown, of the wrong type, missing, or contradicts the checkpoint."""


class CheckpointError(ZooError):
    """Weights that do not fit the model: missing/unexpected keys, shapes, dtypes, a corrupt file."""


class HubError(ZooError):
    """A file that could not be resolved from the hub or the local cache."""


class InputError(ZooError, ValueError):
    """A value given to a model, a function or a command that it cannot take (shape, range, size,
    NaN, an argument out of range); raised before any long computation."""


class InputTypeError(InputError, TypeError):
    """An input of the wrong Python type or tensor dtype (also a ``TypeError``)."""


class MediaError(InputError):
    """An image or audio file or array zoo cannot read or use (not an image, NaN/Inf pixels, a size
    the model cannot take)."""


class TokenError(InputError):
    """Token ids or latents that do not fit the model: out of the codebook, another tokenizer's,
    too long, empty, wrong layout."""


class ReducerError(InputError):
    """A token reducer given tokens or a schedule (``r``, ``keep``) it cannot work with."""
