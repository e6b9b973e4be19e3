"""The ``reducers`` builder: turns a reducer card into a reducer object (no weights)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from zoo.builders import Checkpoint, CheckpointFiles, ModelBuilder

__all__ = ["ReducerConfig", "ReducersBuilder"]


@dataclass
class ReducerConfig:
    """Card config of a reducer: which method, what it needs, how it was trained."""

    policy: str = "tome"
    prop_attn: bool = True
    needs: list[str] = field(default_factory=list)
    training: str = "training-free"


class ReducersBuilder(ModelBuilder):
    """Builds ToMe / DiffRate / EViT / MCTF / DivPrune / MMTok / HiPrune / DyMU reducer objects from their cards."""

    name = "reducers"
    config_class = ReducerConfig

    def read_checkpoint(self, files: CheckpointFiles) -> Checkpoint:
        return Checkpoint(state_dict={})

    def build(self, config: Any) -> Any:
        from zoo.errors import ConfigError

        from .reducers import REDUCERS

        policy = config.policy
        if policy not in REDUCERS:
            raise ConfigError(f"unknown reducer policy {policy!r}; known: {sorted(REDUCERS)}")
        if policy == "tome":
            return REDUCERS[policy](prop_attn=bool(config.prop_attn))
        return REDUCERS[policy]()
