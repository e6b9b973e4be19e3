"""The ``kv_cache`` builder: a GEAR / GEAR-KCVT / KIVI card -> a :class:`~zoo_plugins.kv_cache.reducer.KVCacheReducer`, a
StreamingLLM / SnapKV card -> an :class:`~zoo_plugins.kv_cache.reducer.EvictionReducer` (no weights)."""

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
    # eviction methods (streamingllm, snapkv)
    compression_ratio: float | None = None
    n_sink: int | None = None
    window_size: int | None = None
    kernel_size: int | None = None


class KVCacheBuilder(ModelBuilder):
    """Builds GEAR / GEAR-KCVT / KIVI cache factories from their cards."""

    name = "kv_cache"
    config_class = KVCacheConfig

    def read_checkpoint(self, files: CheckpointFiles) -> Checkpoint:
        return Checkpoint(state_dict={})

    def build(self, config: Any) -> Any:
        from .reducer import PRESSES, EvictionReducer, KVCacheReducer

        settings = asdict(config) if is_dataclass(config) else dict(config)
        method = settings.pop("method")
        if method in PRESSES:
            return EvictionReducer(method, **settings)
        for key in ("compression_ratio", "n_sink", "window_size", "kernel_size"):
            settings.pop(key)
        return KVCacheReducer(method, **settings)
