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

from zoo.errors import ConfigError, ReducerError
from zoo.interfaces import ReducedTokens
from zoo.model import ZooModel

from .cache import CompressionSpec, check_transformers
from .compress import CompressedBlock, compress

__all__ = ["METHODS", "PRESSES", "EvictionReducer", "GenerateHandle", "KVCacheReducer"]


class GenerateHandle:
    """Returned by :meth:`KVCacheReducer.apply`: ``model.generate`` gets a fresh compressed cache
    whenever the caller passes none; ``remove()`` (or leaving a ``with`` block) restores it."""

    def __init__(self, model: Any, make_cache: Any):
        self.model = model
        had_own = "generate" in vars(model)
        self._saved = vars(model)["generate"] if had_own else None
        self._had_own = had_own
        original = model.generate

        def generate(*args: Any, **kwargs: Any) -> Any:
            if kwargs.get("past_key_values") is None and kwargs.get("cache") is None:
                kwargs["past_key_values"] = make_cache()
            return original(*args, **kwargs)

        model.generate = generate

    def remove(self) -> None:
        if self._had_own:
            self.model.generate = self._saved
        else:
            vars(self.model).pop("generate", None)

    def __enter__(self) -> GenerateHandle:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.remove()

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

    def apply(self, model: Any, *, generator: torch.Generator | None = None, seed: int = 0, **overrides: Any) -> GenerateHandle:
        """Make every later ``model.generate(...)`` that passes no ``past_key_values`` use a fresh
        compressed cache (:meth:`cache` with these settings); ``handle.remove()`` (or ``with``) restores.

        Without ``generator`` each call's cache is seeded with ``seed``, so repeated calls give the
        same tokens; with one, its state advances from call to call.
        """
        self.cache(model, generator=generator, seed=seed, **overrides)  # refuse bad settings now, not at the first call
        return GenerateHandle(model, lambda: self.cache(model, generator=generator, seed=seed, **overrides))

    def reduce(self, tokens: torch.Tensor, kind: str = "keys", generator: torch.Generator | None = None,
               **overrides: Any) -> ReducedTokens:
        """What the cache keeps of one ``[B, H, T, D]`` block, read back: every position stays (a KV
        quantizer shrinks bytes, not the token count), ``tokens`` is the dequantized block.

        Example:
            >>> r = KVCacheReducer("kivi", bits=4, group_size=8)
            >>> out = r.reduce(torch.randn(1, 2, 16, 8))
            >>> out.tokens.shape, bool((out.sizes == 1).all())
            (torch.Size([1, 2, 16, 8]), True)
        """
        if tokens.dim() != 4:
            raise ReducerError(f"{self.method} reduces a KV block [B, H, T, D]; got shape {tuple(tokens.shape)}")
        block = self.compress(tokens, kind=kind, generator=generator, **overrides)
        b, h, t, _ = tokens.shape
        indices = torch.arange(t, device=tokens.device).expand(b, h, t)
        return ReducedTokens(block.dequantize().to(tokens.dtype), indices, torch.ones(b, h, t, device=tokens.device))


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

    def reduce(self, tokens: torch.Tensor, queries: torch.Tensor | None = None, **overrides: Any) -> ReducedTokens:
        """The positions of one layer's cached keys ``tokens [B, H_kv, T, D]`` that eviction keeps, and
        those keys (in score order, as the hook keeps them). SnapKV scores with the prompt's last
        ``window_size`` queries ``[B, H, window_size, D]`` (RoPE applied, as the layer computes them).

        Example:
            >>> r = EvictionReducer("streamingllm", compression_ratio=0.5, n_sink=2)
            >>> r.reduce(torch.randn(1, 1, 8, 4)).indices.sort().values.tolist()
            [[[0, 1, 6, 7]]]
        """
        from .eviction import SnapKVPress

        if tokens.dim() != 4:
            raise ReducerError(f"{self.method} reduces cached keys [B, H_kv, T, D]; got shape {tuple(tokens.shape)}")
        press = self.press(**overrides)
        b, h, t, d = tokens.shape
        if isinstance(press, SnapKVPress):
            if queries is None or queries.dim() != 4 or queries.shape[0] != b or queries.shape[-1] != d or queries.shape[1] % h:
                raise ReducerError(f"snapkv scores with the last window's queries [B, H, window_size, D] = [{b}, k*{h}, "
                                   f"{press.window_size}, {d}]: pass queries=...; got "
                                   f"{None if queries is None else tuple(queries.shape)}")
            scores = press.scores_from_queries(queries, tokens)
        else:
            scores = press.score(None, tokens, tokens, tokens, {})
        n_kept = t if press.compression_ratio == 0 else int(t * (1 - press.compression_ratio))
        indices = scores.topk(n_kept, dim=-1).indices
        kept = tokens.gather(2, indices.unsqueeze(-1).expand(-1, -1, -1, d))
        return ReducedTokens(kept, indices, torch.ones(b, h, n_kept, device=tokens.device))
