"""The ``kv_cache`` builder: a GEAR / GEAR-KCVT / KIVI card -> a :class:`~zoo_plugins.kv_cache.reducer.KVCacheReducer` (no weights)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, is_dataclass
from typing import Any

from zoo.builders import Checkpoint, CheckpointFiles, ModelBuilder

__all__ = ["KVCacheBuilder", "KVCacheConfig"]


@dataclass
class KVCacheConfig:
    """Card config: the method and its default settings (see ``CompressionSpec``)."""

    method: str = "gear"
    bits: int = 4
    group_size: int | None = 64
    outlier_ratio: float = 0.0
    rank: int = 0
    rank_v: int | None = None
    prefill_rank: int | None = None
    prefill_rank_v: int | None = None
    loop: int = 3
    streaming_gap: int = 64


class KVCacheBuilder(ModelBuilder):
    """Builds GEAR / GEAR-KCVT / KIVI cache factories from their cards."""

    name = "kv_cache"
    config_class = KVCacheConfig

    def read_checkpoint(self, files: CheckpointFiles) -> Checkpoint:
        return Checkpoint(state_dict={})

    def build(self, config: Any) -> Any:
        from .reducer import KVCacheReducer

        settings = asdict(config) if is_dataclass(config) else dict(config)
        method = settings.pop("method")
        return KVCacheReducer(method, **settings)
