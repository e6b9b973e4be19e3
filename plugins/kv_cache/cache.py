"""GEAR / KIVI as transformers cache layers: ``GEARLayer`` subclasses transformers' ``QuantizedLayer``.

Streaming as in GEAR's ``--streaming --stream_grouping`` mode: the newest tokens stay in full
precision until ``streaming_gap`` of them have gathered; then they are compressed as one block
(the prefill compresses its largest multiple of ``streaming_gap`` tokens at once, with the prefill
ranks). The step that completes a block still attends to it in full precision, as in the
reference. Each block is kept compressed (codes, statistics, outliers, low-rank factors) and
dequantized when attention needs it; blocks are never re-quantized.

Example:
    >>> import torch
    >>> from zoo_plugins.kv_cache.cache import CompressionSpec, GEARLayer
    >>> layer = GEARLayer(CompressionSpec(bits=4, group_size=4, streaming_gap=4))
    >>> k = v = torch.randn(1, 2, 6, 8)
    >>> keys, values = layer.update(k, v)
    >>> keys.equal(k), layer.get_seq_length(), len(layer.blocks), layer.keys.shape[-2]   # 4 compressed, 2 kept
    (True, 6, 1, 2)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from zoo.errors import ConfigError, ZooError

from .compress import CompressedBlock, compress

__all__ = ["MIN_TRANSFORMERS", "CompressionSpec", "check_transformers"]  # GEARLayer, GEARCache: built on first use (module __getattr__)

#: transformers' first release with per-layer caches (``CacheLayerMixin``, ``QuantizedLayer``,
#: ``Cache(layers=...)``); 4.55 had ``QuantizedCacheProcessor`` instead.
MIN_TRANSFORMERS = "4.56.0"


def check_transformers(version: str | None = None) -> Any:
    """``import transformers`` if it has the cache-layer API, else a :class:`~zoo.errors.ZooError` naming the fix.

    Example:
        >>> check_transformers("4.55.4")
        Traceback (most recent call last):
        ...
        zoo.errors.ZooError: transformers 4.55.4 has no cache layers (QuantizedLayer); KV-cache reducers need transformers>=4.56.0: `pip install -U 'transformers>=4.56.0'`
    """
    from packaging.version import Version

    from zoo.compat.torchvision import ensure_torchvision

    ensure_torchvision()
    try:
        import transformers
    except ModuleNotFoundError:
        raise ZooError(f"KV-cache reducers run on transformers, which is not installed: `pip install 'zoo[llm]'` "
                       f"(transformers>={MIN_TRANSFORMERS})") from None
    version = version or transformers.__version__
    if Version(version.split("+")[0]) < Version(MIN_TRANSFORMERS):
        raise ZooError(f"transformers {version} has no cache layers (QuantizedLayer); KV-cache reducers need "
                       f"transformers>={MIN_TRANSFORMERS}: `pip install -U 'transformers>={MIN_TRANSFORMERS}'`")
    return transformers


@dataclass(frozen=True)
class CompressionSpec:
    """What one GEAR / KIVI layer does to a block of keys and values.

    ``group_size`` None: KCVT grouping (keys per channel over the whole block, values per token
    over all ``H*D`` channels). ``rank``/``rank_v``: low-rank of the error for streamed blocks,
    ``prefill_rank``/``prefill_rank_v`` for the prefill block (None: ``rank``/``rank_v``).
    ``bits=16``: no quantization (the layer then behaves as a ``DynamicLayer``).
    """

    bits: int = 4
    group_size: int | None = 64
    outlier_ratio: float = 0.0
    rank: int = 0
    rank_v: int | None = None
    prefill_rank: int | None = None
    prefill_rank_v: int | None = None
    loop: int = 3
    streaming_gap: int = 64

    def __post_init__(self) -> None:
        if not (1 <= self.bits <= 8 or self.bits == 16):
            raise ConfigError(f"bits must be 1..8, or 16 for no quantization; got {self.bits}")
        if self.streaming_gap < 1:
            raise ConfigError(f"streaming_gap must be >= 1 tokens; got {self.streaming_gap}")
        if self.group_size is not None and (self.group_size < 1 or self.streaming_gap % self.group_size):
            raise ConfigError(f"group_size {self.group_size} must divide streaming_gap {self.streaming_gap}: every "
                              "compressed block is a multiple of streaming_gap tokens and keys are grouped over tokens")
        if not 0.0 <= self.outlier_ratio < 1.0:
            raise ConfigError(f"outlier_ratio must lie in [0, 1); got {self.outlier_ratio} (GEAR uses 0.02)")
        ranks = (self.rank, self.rank_v, self.prefill_rank, self.prefill_rank_v)
        if any(r is not None and r < 0 for r in ranks):
            raise ConfigError(f"ranks must be >= 0; got {ranks}")

    def ranks(self, prefill: bool) -> tuple[int, int]:
        """``(key rank, value rank)`` for a prefill block or a streamed one."""
        rank_v = self.rank if self.rank_v is None else self.rank_v
        if not prefill:
            return self.rank, rank_v
        return (self.rank if self.prefill_rank is None else self.prefill_rank,
                rank_v if self.prefill_rank_v is None else self.prefill_rank_v)


def _quantized_layer_class() -> type:
    return check_transformers().cache_utils.QuantizedLayer


def _make_layer_class() -> type:
    base = _quantized_layer_class()

    class GEARLayer(base):  # type: ignore[misc,valid-type]
        """One decoder layer's GEAR / KIVI cache (keys per channel, values per token)."""

        is_croppable = False

        def __init__(self, spec: CompressionSpec, generator: torch.Generator | None = None):
            super().__init__(nbits=spec.bits, axis_key=-2, axis_value=-1, q_group_size=spec.group_size or 0,
                             residual_length=spec.streaming_gap)
            self.spec = spec
            self.generator = generator
            self.blocks: list[tuple[CompressedBlock, CompressedBlock]] = []
            self._rank: int = 0
            self._prefill = True

        # -- QuantizedLayer's two hooks
        def _quantize(self, tensor: torch.Tensor, axis: int) -> CompressedBlock:
            return compress(tensor, axis=axis, bits=self.spec.bits, group_size=self.spec.group_size,
                            outlier_ratio=self.spec.outlier_ratio, rank=self._rank, loop=self.spec.loop,
                            generator=self.generator)

        def _dequantize(self, q_tensor: CompressedBlock) -> torch.Tensor:
            return q_tensor.dequantize()

        # -- cache protocol
        def _start(self, key_states: torch.Tensor) -> None:
            self.dtype, self.device = key_states.dtype, key_states.device
            self.keys = key_states[:, :, :0]
            self.values = key_states[:, :, :0]
            self.is_initialized = True

        def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any, **kwargs: Any) -> tuple[torch.Tensor, torch.Tensor]:
            """Append the new states; compress every full ``streaming_gap`` of the full-precision
            tail; return all keys and values (this step sees its own tokens in full precision)."""
            if not getattr(self, "is_initialized", False) or self.keys is None:
                self._start(key_states)
            self.cumulative_length += key_states.shape[-2]
            tail_k = torch.cat([self.keys, key_states], dim=-2)
            tail_v = torch.cat([self.values, value_states], dim=-2)
            old_k = [k.dequantize() for k, _ in self.blocks]
            old_v = [v.dequantize() for _, v in self.blocks]
            keys = torch.cat([*old_k, tail_k], dim=-2) if old_k else tail_k
            values = torch.cat([*old_v, tail_v], dim=-2) if old_v else tail_v
            gap = self.spec.streaming_gap
            n = (tail_k.shape[-2] // gap) * gap
            if n:
                k_rank, v_rank = self.spec.ranks(prefill=self._prefill)
                self._rank = k_rank
                ck = self._quantize(tail_k[:, :, :n].contiguous(), axis=self.axis_key)
                self._rank = v_rank
                cv = self._quantize(tail_v[:, :, :n].contiguous(), axis=self.axis_value)
                self.blocks.append((ck, cv))
                tail_k, tail_v = tail_k[:, :, n:], tail_v[:, :, n:]
            self._prefill = False
            self.keys, self.values = tail_k, tail_v
            return keys, values

        def get_seq_length(self, *args: Any) -> int:
            return self.cumulative_length

        def nbytes(self) -> int:
            """Bytes this layer holds: compressed blocks plus the full-precision tail."""
            n = sum(k.nbytes() + v.nbytes() for k, v in self.blocks)
            for t in (self.keys, self.values):
                if t is not None:
                    n += t.numel() * t.element_size()
            return n

        def reorder_cache(self, beam_idx: torch.LongTensor) -> None:
            self._select(beam_idx)

        def batch_select_indices(self, indices: torch.Tensor) -> None:
            self._select(torch.as_tensor(indices, device=self.device).flatten())

        def batch_repeat_interleave(self, repeats: int) -> None:
            if self.is_initialized:
                self._select(torch.arange(self.keys.shape[0], device=self.device).repeat_interleave(repeats))

        def _select(self, index: torch.Tensor) -> None:
            if not getattr(self, "is_initialized", False) or self.keys is None:
                return
            index = index.to(self.device)
            self.blocks = [(k.index_select(index), v.index_select(index)) for k, v in self.blocks]
            self.keys, self.values = self.keys.index_select(0, index), self.values.index_select(0, index)

        def reset(self) -> None:
            self.blocks = []
            self._prefill = True
            self.keys = self.values = None
            self.is_initialized = False
            self.cumulative_length = 0

    return GEARLayer


_CLASSES: dict[str, type] = {}


def __getattr__(name: str) -> type:
    """``GEARLayer`` / ``GEARCache`` are built on first use (they subclass transformers' classes)."""
    if name == "GEARLayer":
        if name not in _CLASSES:
            _CLASSES[name] = _make_layer_class()
        return _CLASSES[name]
    if name == "GEARCache":
        if name not in _CLASSES:
            _CLASSES[name] = _make_cache_class()
        return _CLASSES[name]
    raise AttributeError(name)


def _make_cache_class() -> type:
    transformers = check_transformers()

    class GEARCache(transformers.Cache):
        """A transformers ``Cache`` of :class:`GEARLayer` (one per decoder layer); ``nbytes()`` is its memory."""

        def __init__(self, num_layers: int, spec: CompressionSpec, generator: torch.Generator | None = None):
            layer_class = __getattr__("GEARLayer")
            super().__init__(layers=[layer_class(spec, generator) for _ in range(num_layers)])
            self.spec = spec

        def nbytes(self) -> int:
            return sum(layer.nbytes() for layer in self.layers)

    return GEARCache
