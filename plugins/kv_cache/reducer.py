"""The objects ``zoo.load("gear" | "gear.kcvt" | "kivi")`` returns: a factory of compressed KV caches.

``reducer.cache(model, bits=..., rank=..., outlier_ratio=..., streaming_gap=...)`` returns a
transformers ``Cache`` (one :class:`~zoo_plugins.kv_cache.cache.GEARLayer` per decoder layer)
to pass to ``model.generate(..., past_key_values=cache)`` (``cache=cache`` in transformers 5).
The card's settings are the defaults; keyword arguments override them.

Example:
    >>> import torch
    >>> gear = KVCacheReducer("gear", bits=2, group_size=4, outlier_ratio=0.02, rank=2, streaming_gap=8)
    >>> block = gear.compress(torch.randn(1, 2, 8, 16), "keys", generator=torch.Generator().manual_seed(0))
    >>> block.dequantize().shape
    torch.Size([1, 2, 8, 16])
    >>> KVCacheReducer("kivi", bits=2, group_size=32).spec(rank=2)
    Traceback (most recent call last):
    ...
    zoo.errors.ConfigError: kivi quantizes only (no low-rank error, no outliers); rank=2 is GEAR's: use zoo.load('gear')
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

import torch

from zoo.errors import ConfigError
from zoo.model import ZooModel

from .cache import CompressionSpec, check_transformers
from .compress import CompressedBlock, compress

__all__ = ["METHODS", "PRESSES", "EvictionReducer", "KVCacheReducer"]

#: method -> what it fixes: KIVI has no outliers / low rank; KCVT groups over the whole block
METHODS = {
    "gear": {},
    "gear_kcvt": {"group_size": None},
    "kivi": {"rank": 0, "rank_v": 0, "prefill_rank": 0, "prefill_rank_v": 0, "outlier_ratio": 0.0},
}
_SPEC_FIELDS = {f.name for f in fields(CompressionSpec)}


class KVCacheReducer(ZooModel):
    """GEAR, GEAR-KCVT or KIVI KV-cache compression with the card's settings as defaults."""

    in_model = True
    needs = ("keys", "values")
    training = "training-free"

    def __init__(self, method: str = "gear", **defaults: Any):
        if method not in METHODS:
            raise ConfigError(f"unknown KV-cache method {method!r}; known: {sorted(METHODS)}")
        self.method = method
        self.defaults = {k: v for k, v in defaults.items() if v is not None or k in ("group_size",)}

    # the generic loader's courtesy methods (zoo.load calls .to / .eval when present)
    def to(self, *args: Any, **kwargs: Any) -> KVCacheReducer:
        return self

    def eval(self) -> KVCacheReducer:
        return self

    def describe_facts(self) -> dict[str, Any]:
        return {"method": self.method, **{k: v for k, v in self.defaults.items() if k in ("bits", "rank", "outlier_ratio", "streaming_gap")}}

    def spec(self, **overrides: Any) -> CompressionSpec:
        """The per-layer settings: card defaults < ``overrides`` (None leaves a default alone)."""
        unknown = set(overrides) - _SPEC_FIELDS
        if unknown:
            raise ConfigError(f"unknown {self.method} option(s) {sorted(unknown)}; known: {sorted(_SPEC_FIELDS)}")
        settings = {**self.defaults, **{k: v for k, v in overrides.items() if v is not None}}
        for key, fixed in METHODS[self.method].items():
            if key in overrides and overrides[key] is not None and overrides[key] != fixed:
                other = "zoo.load('gear')" if self.method == "kivi" else "zoo.load('gear') (group_size=...)"
                what = "quantizes only (no low-rank error, no outliers)" if self.method == "kivi" else "groups keys over the whole block and values over all channels"
                raise ConfigError(f"{self.method} {what}; {key}={overrides[key]} is GEAR's: use {other}")
            settings[key] = fixed
        return CompressionSpec(**settings)

    def compress(self, x: torch.Tensor, kind: str = "keys", generator: torch.Generator | None = None, prefill: bool = True,
                 **overrides: Any) -> CompressedBlock:
        """Compress one block of ``kind`` ("keys": per channel, "values": per token) ``[B, H, T, D]``."""
        if kind not in ("keys", "values"):
            raise ConfigError(f"kind must be 'keys' or 'values'; got {kind!r}")
        s = self.spec(**overrides)
        k_rank, v_rank = s.ranks(prefill)
        return compress(x, axis=-2 if kind == "keys" else -1, bits=s.bits, group_size=s.group_size,
                        outlier_ratio=s.outlier_ratio, rank=k_rank if kind == "keys" else v_rank, loop=s.loop,
                        generator=generator)

    def cache(self, model: Any, *, generator: torch.Generator | None = None, seed: int = 0, **overrides: Any) -> Any:
        """A transformers ``Cache`` for ``model`` (a transformers causal LM or its config).

        ``generator`` draws the low-rank bases (default: a fresh one seeded with ``seed``, so runs
        repeat). Keyword arguments: ``bits``, ``group_size``, ``rank``, ``rank_v``,
        ``prefill_rank``, ``prefill_rank_v``, ``outlier_ratio``, ``loop``, ``streaming_gap``.
        """
        check_transformers()
        from . import cache as cache_module

        spec = self.spec(**overrides)
        config = getattr(model, "config", model)
        text = config.get_text_config(decoder=True) if hasattr(config, "get_text_config") else config
        num_layers = getattr(text, "num_hidden_layers", None)
        if not isinstance(num_layers, int):
            raise ConfigError(f"{type(model).__name__} is not a transformers causal LM (its config has no num_hidden_layers)")
        layer_types = getattr(text, "layer_types", None) or []
        other = sorted(set(layer_types) - {"full_attention"})
        if other:
            raise ConfigError(f"{self.method} compresses full-attention layers only; this model also has {other} layers "
                              "(set sliding_window=None in its config, or use a DynamicCache)")
        heads = getattr(text, "num_attention_heads", None)
        kv_heads = getattr(text, "num_key_value_heads", None) or heads
        head_dim = getattr(text, "head_dim", None) or (text.hidden_size // heads if heads else None)
        if spec.group_size is not None and spec.bits < 16 and kv_heads and head_dim and (kv_heads * head_dim) % spec.group_size:
            raise ConfigError(f"group_size {spec.group_size} must divide the {kv_heads} KV heads x {head_dim} channels = "
                              f"{kv_heads * head_dim} of a token (values are grouped over them): pass group_size=...")
        if generator is None:
            generator = torch.Generator().manual_seed(seed)
        return cache_module.GEARCache(num_layers, spec, generator)


#: eviction method -> its press options (kvpress's defaults)
PRESSES = {
    "streamingllm": {"compression_ratio": 0.5, "n_sink": 4},
    "snapkv": {"compression_ratio": 0.5, "window_size": 64, "kernel_size": 5},
}


class EvictionReducer(ZooModel):
    """StreamingLLM or SnapKV eviction: ``apply(model, compression_ratio=...)`` hooks the model's attention.

    Example:
        >>> r = EvictionReducer("streamingllm", compression_ratio=0.5, n_sink=4)
        >>> r.press(compression_ratio=0.25)
        StreamingLLMPress(compression_ratio=0.25, n_sink=4)
    """

    in_model = True
    needs = ("keys", "values")
    training = "training-free"

    def __init__(self, method: str = "streamingllm", **defaults: Any):
        if method not in PRESSES:
            raise ConfigError(f"unknown eviction method {method!r}; known: {sorted(PRESSES)}")
        self.method = method
        self.defaults = {k: v for k, v in defaults.items() if k in PRESSES[method] and v is not None}

    def to(self, *args: Any, **kwargs: Any) -> EvictionReducer:
        return self

    def eval(self) -> EvictionReducer:
        return self

    def describe_facts(self) -> dict[str, Any]:
        return {"method": self.method, **self.defaults}

    def press(self, **overrides: Any) -> Any:
        """The kvpress-style press with the card's defaults < ``overrides``."""
        from .eviction import SnapKVPress, StreamingLLMPress

        unknown = set(overrides) - set(PRESSES[self.method])
        if unknown:
            raise ConfigError(f"unknown {self.method} option(s) {sorted(unknown)}; known: {sorted(PRESSES[self.method])}")
        settings = {**PRESSES[self.method], **self.defaults, **{k: v for k, v in overrides.items() if v is not None}}
        return (StreamingLLMPress if self.method == "streamingllm" else SnapKVPress)(**settings)

    def apply(self, model: Any, **overrides: Any) -> Any:
        """Hook the press onto ``model``'s attention layers; returns the handle (``handle.remove()``, or ``with``).

        Every later prefill (``model(...)`` or ``model.generate(...)`` with a ``DynamicCache``) keeps
        ``1 - compression_ratio`` of the prompt's cache entries; ``compression_ratio=0`` changes nothing.
        """
        from .eviction import apply_press

        return apply_press(model, self.press(**overrides))
