"""The few zoo core entry points this plugin uses, imported in one place."""

from __future__ import annotations

from zoo.errors import CheckpointError, ConfigError, InputError, InputTypeError, TokenError

__all__ = ["CheckpointError", "ConfigError", "InputError", "InputTypeError", "TokenError"]
