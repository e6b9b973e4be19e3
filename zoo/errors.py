"""zoo's exception types: each names the problem and the fix."""

from __future__ import annotations

__all__ = [
    "ZooError",
    "UnknownModelError",
    "CardError",
    "PluginError",
    "ConfigError",
    "CheckpointError",
    "HubError",
]


class ZooError(Exception):
    """Base class of every error zoo raises on purpose."""


class UnknownModelError(ZooError, KeyError):
    """A model name that no card matches; the message lists the closest names."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class CardError(ZooError, ValueError):
    """A model card (registry.yaml or a plugin's) that does not fit the schema."""


class PluginError(ZooError):
    """A plugin that failed to load, or two plugins that clash."""


class ConfigError(ZooError, ValueError):
    """A config field that is unknown, of the wrong type, or missing."""


class CheckpointError(ZooError):
    """Weights that do not fit the model: missing/unexpected keys, shapes, a corrupt file."""


class HubError(ZooError):
    """A file that could not be resolved from the hub or the local cache."""
