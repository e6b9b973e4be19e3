"""KV-cache eviction after prefill, the pattern of NVIDIA's kvpress: a forward hook on every
attention layer of a transformers decoder edits that layer's cache once the prompt has been read.

A *press* scores every cached position per key-value head (``score -> [B, H_kv, T]``) and the
hook keeps the ``int(T * (1 - compression_ratio))`` best per head (kvpress's ``ScorerPress``).
The kept entries go into an :class:`EvictedLayer` that still counts every token seen, so the
positions of later tokens (RoPE) and the attention mask stay right in ``model.generate``.

Two methods:

* ``streamingllm`` (Xiao et al. 2024, StreamingLLM): keep ``n_sink`` first tokens (attention
  sinks) and the most recent ones; a position-only baseline that needs no attention scores;
* ``snapkv`` (Li et al. 2024, SnapKV): score each position by the attention the last
  ``window_size`` prompt tokens pay to it (recomputed from the layer's own query projection and
  RoPE), smoothed by an average pool of ``kernel_size``, averaged over the query heads of each KV
  head; the observation window itself is always kept.

Both follow kvpress (``StreamingLLMPress``, ``SnapKVPress``) line by line. Prompts of a batch must
have equal length (no padding): eviction keeps the same count for every row.

Example:
    >>> import torch
    >>> press = StreamingLLMPress(compression_ratio=0.5, n_sink=2)
    >>> keys = torch.randn(1, 2, 10, 4)
    >>> press.score(None, None, keys, keys, {})[0, 0].tolist()
    [1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0]
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from zoo.errors import ConfigError, ReducerError

from .cache import check_transformers

__all__ = ["EvictionHandle", "Press", "SnapKVPress", "StreamingLLMPress", "apply_press", "decoder_attention_layers"]


@dataclass
class Press:
    """Scores cached positions; the hook keeps the best ``1 - compression_ratio`` of them."""

    compression_ratio: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.compression_ratio < 1.0:
            raise ConfigError(f"compression_ratio is the fraction of cached tokens to drop, in [0, 1); got {self.compression_ratio}")

    def score(self, module: Any, hidden_states: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, kwargs: dict) -> torch.Tensor:
        raise NotImplementedError

    def compress(self, module: Any, hidden_states: torch.Tensor, keys: torch.Tensor, values: torch.Tensor,
                 kwargs: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """``keys``/``values [B, H_kv, T, D]`` -> the kept ``[B, H_kv, n_kept, D]`` (in score order, as kvpress)."""
        if self.compression_ratio == 0:
            return keys, values
        scores = self.score(module, hidden_states, keys, values, kwargs)
        n_kept = int(keys.shape[2] * (1 - self.compression_ratio))
        index = scores.topk(n_kept, dim=-1).indices.unsqueeze(-1).expand(-1, -1, -1, keys.shape[-1])
        return keys.gather(2, index).contiguous(), values.gather(2, index).contiguous()


@dataclass
class StreamingLLMPress(Press):
    """Window + attention sinks: drop the oldest tokens after the first ``n_sink``."""

    n_sink: int = 4

    def score(self, module: Any, hidden_states: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, kwargs: dict) -> torch.Tensor:
        k_len = keys.shape[2]
        if k_len <= self.n_sink:
            raise ReducerError(f"streamingllm: the prompt has {k_len} tokens, not more than n_sink={self.n_sink}")
        n_pruned = k_len - int(k_len * (1 - self.compression_ratio))
        scores = torch.ones_like(keys[..., 0])
        scores[:, :, self.n_sink:self.n_sink + n_pruned] = 0
        return scores


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    x1, x2 = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


@dataclass
class SnapKVPress(Press):
    """Keep what the prompt's last ``window_size`` tokens attend to (pooled over ``kernel_size``)."""

    window_size: int = 64
    kernel_size: int = 5

    def window_queries(self, module: Any, hidden_states: torch.Tensor, head_dim: int, position_embeddings: Any) -> torch.Tensor:
        """The last ``window_size`` queries ``[B, H, window, D]`` of ``module``, RoPE applied."""
        b, w = hidden_states.shape[0], self.window_size
        num_heads = module.config.num_attention_heads
        q = module.q_proj(hidden_states[:, -w:]).view(b, w, num_heads, head_dim).transpose(1, 2)
        if hasattr(module, "q_norm"):  # Qwen3-style QK norm
            q = module.q_norm(q)
        cos, sin = position_embeddings
        cos, sin = cos[:, -w:], sin[:, -w:]
        return q * cos.unsqueeze(1) + _rotate_half(q) * sin.unsqueeze(1)

    def scores_from_queries(self, queries: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        """Scores ``[B, H_kv, T]`` of ``keys [B, H_kv, T, D]``: the attention of the window's
        ``queries [B, H, window, D]`` over the earlier keys, averaged over the window, pooled over
        ``kernel_size`` and over each KV head's query group; the window itself always scores highest."""
        b, h_kv, k_len, head_dim = keys.shape
        num_heads, w = queries.shape[1], queries.shape[2]
        if k_len <= w:
            raise ReducerError(f"snapkv: the prompt has {k_len} tokens, not more than window_size={w}")
        k = keys.repeat_interleave(num_heads // h_kv, dim=1)
        attn = queries @ k.transpose(2, 3) / math.sqrt(head_dim)
        mask = torch.triu(torch.full_like(attn, float("-inf")), diagonal=k_len - w + 1)
        attn = F.softmax(attn + mask, dim=-1, dtype=torch.float32).to(queries.dtype)[..., :-w]
        scores = attn.mean(dim=-2)
        scores = F.avg_pool1d(scores, kernel_size=self.kernel_size, padding=self.kernel_size // 2, stride=1)
        scores = scores.view(b, h_kv, num_heads // h_kv, k_len - w).mean(2)
        return F.pad(scores, (0, w), value=scores.max().item() + 1)

    def score(self, module: Any, hidden_states: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, kwargs: dict) -> torch.Tensor:
        if hidden_states.shape[1] <= self.window_size:
            raise ReducerError(f"snapkv: the prompt has {hidden_states.shape[1]} tokens, not more than window_size={self.window_size}")
        position_embeddings = kwargs.get("position_embeddings")
        if position_embeddings is None:
            raise ReducerError("snapkv needs the layer's rotary position embeddings (position_embeddings=); this model's "
                               "attention does not receive them")
        queries = self.window_queries(module, hidden_states, keys.shape[-1], position_embeddings)
        return self.scores_from_queries(queries, keys)


def decoder_attention_layers(model: Any) -> list[Any]:
    """The self-attention module of every decoder layer of a transformers causal LM (Llama-like)."""
    inner = getattr(model, "model", model)
    inner = getattr(inner, "language_model", inner)
    layers = getattr(inner, "layers", None)
    if layers is None or not all(hasattr(layer, "self_attn") for layer in layers):
        raise ReducerError(f"{type(model).__name__} is not a Llama-like transformers decoder (model.model.layers[i].self_attn); "
                           "KV-cache eviction hooks its attention layers")
    return [layer.self_attn for layer in layers]


def _evicted_layer_class() -> type:
    base = check_transformers().cache_utils.DynamicLayer

    class EvictedLayer(base):  # type: ignore[misc,valid-type]
        """A DynamicLayer that lost some prompt entries: counts every token seen (positions), masks what it holds."""

        def __init__(self, keys: torch.Tensor, values: torch.Tensor, seen: int):
            super().__init__()
            self.keys, self.values = keys, values
            self.dtype, self.device = keys.dtype, keys.device
            self.is_initialized = True
            self.cumulative_length = seen

        def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any, **kwargs: Any) -> tuple[torch.Tensor, torch.Tensor]:
            self.cumulative_length += key_states.shape[-2]
            self.keys = torch.cat([self.keys, key_states], dim=-2)
            self.values = torch.cat([self.values, value_states], dim=-2)
            return self.keys, self.values

        def get_seq_length(self, *args: Any) -> int:
            return self.cumulative_length

        def get_mask_sizes(self, query: Any, *args: Any) -> tuple[int, int]:
            q = query.shape[0] if isinstance(query, torch.Tensor) else int(query)  # transformers 4.x passes cache_position
            held = self.keys.shape[-2]
            return held + q, self.cumulative_length - held

        def crop(self, tokens_to_remove: int) -> None:
            raise ReducerError("an evicted cache cannot be cropped (assisted decoding / rollback): generate without eviction")

    return EvictedLayer


_CLASSES: dict[str, type] = {}


def evicted_layer(keys: torch.Tensor, values: torch.Tensor, seen: int) -> Any:
    if "EvictedLayer" not in _CLASSES:
        _CLASSES["EvictedLayer"] = _evicted_layer_class()
    return _CLASSES["EvictedLayer"](keys, values, seen)


class EvictionHandle:
    """What ``apply`` returns: the hooks on the model's attention layers; ``remove()`` takes them off."""

    def __init__(self, press: Press, hooks: list[Any]):
        self.press = press
        self._hooks = hooks
        self.evicted: list[tuple[int, int]] = []  # (layer, kept) of the last prefill, for inspection

    def remove(self) -> None:
        for h in self._hooks:
            h.remove()
        self._hooks = []

    def __enter__(self) -> EvictionHandle:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.remove()


def _cache_of(kwargs: dict) -> Any:
    for name in ("cache", "past_key_values", "past_key_value"):  # transformers 5 / 4.5x names
        if kwargs.get(name) is not None:
            return kwargs[name]
    return None


def apply_press(model: Any, press: Press) -> EvictionHandle:
    """Hook ``press`` onto every attention layer of ``model``; the cache is edited after the prefill.

    The prefill is the forward that fills an empty layer (its cache then holds exactly the
    forward's tokens); later forwards (decoding) pass through untouched.
    """
    check_transformers()
    modules = decoder_attention_layers(model)
    handle = EvictionHandle(press, [])

    def hook(module: Any, args: tuple, kwargs: dict, output: Any) -> Any:
        hidden_states = kwargs.get("hidden_states", args[0] if args else None)
        cache = _cache_of(kwargs)
        if cache is None or hidden_states is None or press.compression_ratio == 0:
            return output
        idx = module.layer_idx
        layer = cache.layers[idx]
        q_len = hidden_states.shape[1]
        if layer.get_seq_length() != q_len or type(layer).__name__ == "EvictedLayer":
            return output  # not the prefill of this layer
        if type(layer).__name__ != "DynamicLayer":
            raise ReducerError(f"KV-cache eviction edits DynamicCache layers; layer {idx} is a {type(layer).__name__} "
                               "(use a plain DynamicCache, or a quantized cache without eviction)")
        keys, values = press.compress(module, hidden_states, layer.keys, layer.values, kwargs)
        cache.layers[idx] = evicted_layer(keys, values, q_len)
        if idx == 0:
            handle.evicted.clear()
        handle.evicted.append((idx, keys.shape[-2]))
        return output

    handle._hooks = [m.register_forward_hook(hook, with_kwargs=True) for m in modules]
    return handle
