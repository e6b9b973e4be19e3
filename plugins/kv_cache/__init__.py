"""KV-cache reducers for transformers language models: GEAR, GEAR-KCVT and KIVI as cache layers,
StreamingLLM and SnapKV as eviction hooks.

``zoo.load("gear").cache(model, bits=4, rank=2, outlier_ratio=0.02, streaming_gap=64)`` returns
a transformers ``Cache`` whose layers subclass transformers' ``QuantizedLayer``; pass it to
``model.generate(..., past_key_values=cache)``. ``zoo.load("snapkv").apply(model,
compression_ratio=0.5)`` hooks every attention layer and evicts cache entries after the prefill
(``handle.remove()`` restores). Needs the ``zoo[llm]`` extra; importing this module imports
neither torch nor transformers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from zoo.hookspecs import hookimpl

__all__ = ["register_builders"]


@hookimpl
def register_builders(register: Callable[[Any], None]) -> None:
    from .builder import KVCacheBuilder

    register(KVCacheBuilder())
