"""The few zoo core entry points this plugin uses, imported in one place."""

from __future__ import annotations

from zoo.errors import CheckpointError, ConfigError, ZooError
from zoo.nn.attention import attention

__all__ = ["attention", "CheckpointError", "ConfigError", "TokenizerInputError"]


class TokenizerInputError(ZooError, ValueError):
    """Images or tokens a TiTok-family model cannot take (shape, range, ids, prefix length)."""
