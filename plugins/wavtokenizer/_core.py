"""The few zoo core entry points this plugin uses, imported in one place."""

from __future__ import annotations

from zoo.errors import CheckpointError, ConfigError, ZooError
from zoo.interfaces import Tokens, as_tokens
from zoo.nn.attention import attention

__all__ = ["attention", "CheckpointError", "ConfigError", "ZooError", "Tokens", "as_tokens"]
