"""GEAR / KIVI compression of one block of keys or values ``[B, H, T, D]``, in pure torch.

Three parts, each optional (GEAR, Kang et al. 2024):

* **group-wise uniform (asymmetric) quantization** to ``bits`` bits, either *per channel*
  (statistics over ``group_size`` consecutive tokens of each channel: KIVI's keys) or *per token*
  (statistics over ``group_size`` consecutive channels of the flattened ``H*D`` of each token:
  KIVI's values); codes are packed into bytes;
* **sparse outliers**: per row, the ``k`` smallest and ``k`` largest entries are taken out before
  quantization (replaced by the row mean) and stored exactly;
* **low-rank error**: a rank-``r`` approximation of the remaining quantization error per head,
  by power iteration from random bases drawn from a caller's ``torch.Generator``.

The arithmetic follows the official simulated functions (HaoKang-Timmy/GEAR,
``GEARLM/Simulated/compress_function.py``) step for step: ``(x - min) / scale``, ReLU, round;
outlier count ``int(int(numel * ratio) / B / T / 2)`` per row; the quantized part is rounded to
the cache dtype before the error is taken; power iteration with QR on the last loop, bases drawn
``P [B,H,D,r]`` then ``Q [B,H,T,r]``. Differences, on purpose: ``2**bits - 1`` levels where the
reference's GEAR path uses ``bits**2 - 1`` (equal at the published 2 and 4 bits); a group whose
entries are all equal dequantizes to itself (the reference divides by a zero scale); statistics
and low-rank factors are stored in the cache dtype (the simulated code keeps them in float32), which
moves a float16 result by about one float16 step.

Example:
    >>> import torch
    >>> x = torch.randn(1, 2, 8, 4)
    >>> c = compress(x, axis=-2, bits=4, group_size=4)
    >>> (c.dequantize() - x).abs().max() < 0.3, c.nbytes() < x.numel() * 4
    (tensor(True), True)
    >>> compress(x, axis=-1, bits=16).dequantize().equal(x)   # 16 bits: stored as is
    True
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from zoo.errors import ConfigError, InputError

__all__ = ["CompressedBlock", "compress", "outlier_count", "power_iteration", "quantize_groups"]

#: at this many bits or more a block is stored as is (no quantization)
RAW_BITS = 16


@dataclass
class _Quantized:
    """Group-wise quantized ``[B, T, C]`` (per token) or ``[B, C, T]`` (per channel) rows."""

    codes: torch.Tensor       # uint8, packed along the last axis when 8 % bits == 0
    scale: torch.Tensor       # [..., G, 1] in the cache dtype
    minimum: torch.Tensor     # [..., G, 1]
    bits: int
    width: int                # unpacked length of the last axis (= group_size)
    transposed: bool = False  # per-channel groups are quantized as [B, G, C, g]; values() gives [B, G, g, C]

    def values(self) -> torch.Tensor:
        codes = _unpack(self.codes, self.bits, self.width).float()
        v = codes * self.scale.float() + self.minimum.float()
        return v.transpose(-1, -2) if self.transposed else v

    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in (self.codes, self.scale, self.minimum))


def _pack(codes: torch.Tensor, bits: int) -> torch.Tensor:
    """uint8 codes ``< 2**bits`` -> bytes holding ``8 // bits`` codes each (last axis)."""
    if 8 % bits:
        return codes
    per = 8 // bits
    n = codes.shape[-1]
    pad = (-n) % per
    if pad:
        codes = torch.nn.functional.pad(codes, (0, pad))
    codes = codes.view(*codes.shape[:-1], -1, per)
    shifts = torch.arange(per, dtype=torch.uint8, device=codes.device) * bits
    return (codes << shifts).sum(-1, dtype=torch.uint8)


def _unpack(packed: torch.Tensor, bits: int, n: int) -> torch.Tensor:
    if 8 % bits:
        return packed
    per = 8 // bits
    shifts = torch.arange(per, dtype=torch.uint8, device=packed.device) * bits
    codes = (packed.unsqueeze(-1) >> shifts) & ((1 << bits) - 1)
    return codes.reshape(*packed.shape[:-1], -1)[..., :n]


def quantize_groups(rows: torch.Tensor, bits: int, dtype: torch.dtype) -> _Quantized:
    """Quantize each group (last axis) of float32 ``rows [..., G, g]`` to ``bits`` bits.

    Codes come from the float32 statistics (as in the reference); the scale and minimum are then
    stored in ``dtype`` (the cache dtype).

    Example:
        >>> q = quantize_groups(torch.tensor([[[0.0, 1.0, 2.0, 3.0]]]), 2, torch.float32)
        >>> q.values()
        tensor([[[0., 1., 2., 3.]]])
    """
    levels = 2**bits - 1
    mx = rows.amax(dim=-1, keepdim=True)
    mn = rows.amin(dim=-1, keepdim=True)
    scale = (mx - mn) / levels
    safe = torch.where(scale == 0, torch.ones_like(scale), scale)
    codes = torch.relu((rows - mn) / safe).round_().clamp_(max=levels).to(torch.uint8)
    return _Quantized(_pack(codes, bits), scale.to(dtype), mn.to(dtype), bits, rows.shape[-1])


def outlier_count(shape: torch.Size | tuple[int, ...], ratio: float) -> int:
    """Outliers taken at *each end* of every row: the reference's ``int(int(numel * ratio) / B / T / 2)``.

    Example:
        >>> outlier_count((1, 32, 64, 128), 0.02)   # 2% of a 32-head, 128-dim block: 40 per row and end
        40
    """
    b, _, t, _ = shape
    numel = 1
    for s in shape:
        numel *= s
    return int(int(numel * ratio) / b / t / 2)


def power_iteration(error: torch.Tensor, rank: int, loop: int, generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Rank-``rank`` factors ``Q [B,H,T,r]``, ``P [B,H,D,r]`` with ``error ≈ Q @ P^T`` (float32 in and out).

    ``loop`` power iterations from uniform random bases drawn from ``generator`` (``P`` first, then
    an unused ``Q``, as the reference draws them from the global RNG); QR on the last iteration.

    Example:
        >>> e = torch.randn(1, 1, 6, 2) @ torch.randn(1, 1, 2, 5)     # exactly rank 2
        >>> q, p = power_iteration(e, 2, 3, torch.Generator().manual_seed(0))
        >>> torch.allclose(q @ p.transpose(2, 3), e, atol=1e-4)
        True
    """
    if loop < 1:
        raise ConfigError(f"power iteration needs loop >= 1 (got {loop}); the published GEAR settings use loop=3")
    b, h, t, d = error.shape
    p = torch.rand(b, h, d, rank, generator=generator, device=error.device)
    torch.rand(b, h, t, rank, generator=generator, device=error.device)  # the reference's unused Q base
    q = p
    for i in range(loop):
        if i == loop - 1:
            p = torch.linalg.qr(p).Q
        q = error @ p
        if i == loop - 1:
            q = torch.linalg.qr(q).Q
        p = error.transpose(2, 3) @ q
    return q, p


@dataclass
class CompressedBlock:
    """One compressed ``[B, H, T, D]`` block: quantized part, outliers, low-rank factors.

    ``axis=-2``: per-channel statistics (over tokens); ``axis=-1``: per-token statistics (over
    channels). ``dequantize()`` rebuilds the block in its dtype; ``nbytes()`` is what it stores.
    """

    shape: tuple[int, int, int, int]
    dtype: torch.dtype
    axis: int
    raw: torch.Tensor | None = None              # bits >= 16: the block itself
    quantized: _Quantized | None = None
    tail: torch.Tensor | None = None             # per-channel: the T % group_size last tokens, as is
    outlier_index: torch.Tensor | None = None    # [B, rows, 2k]: smallest k then largest k
    outlier_value: torch.Tensor | None = None
    lowrank_q: torch.Tensor | None = None        # [B, H, T, r]
    lowrank_p: torch.Tensor | None = None        # [B, H, D, r]

    def _rows(self, x: torch.Tensor) -> torch.Tensor:
        """``[B,H,T,D]`` -> the outlier rows: ``[B, H*D, T]`` per channel, ``[B, T, H*D]`` per token."""
        b, h, t, d = self.shape
        if self.axis == -2:
            return x.permute(0, 1, 3, 2).reshape(b, h * d, t)
        return x.permute(0, 2, 1, 3).reshape(b, t, h * d)

    def _unrows(self, rows: torch.Tensor) -> torch.Tensor:
        b, h, t, d = self.shape
        if self.axis == -2:
            return rows.view(b, h, d, t).permute(0, 1, 3, 2)
        return rows.view(b, t, h, d).permute(0, 2, 1, 3)

    def _quantized_part(self) -> torch.Tensor:
        """float32 ``[B, H, T, D]``: dequantized values with the outliers put back."""
        b, h, t, d = self.shape
        q = self.quantized.values()
        if self.axis == -2:  # [B, G, g, C] -> [B, G*g, C] (+ tail) -> [B, H, T, D]
            flat = q.reshape(b, -1, h * d)
            if self.tail is not None:
                flat = torch.cat([flat, self.tail.float()], dim=1)
        else:                # [B, T, C/g, g] -> [B, T, C]
            flat = q.reshape(b, t, h * d)
        x = flat.view(b, t, h, d).permute(0, 2, 1, 3)
        if self.outlier_index is not None:
            rows = self._rows(x).contiguous()
            rows.scatter_(-1, self.outlier_index.long(), self.outlier_value.float())
            x = self._unrows(rows)
        return x

    def dequantize(self) -> torch.Tensor:
        if self.raw is not None:
            return self.raw
        x = self._quantized_part().to(self.dtype)
        if self.lowrank_q is not None:
            x = (x.float() + self.lowrank_q.float() @ self.lowrank_p.float().transpose(2, 3)).to(self.dtype)
        return x

    def nbytes(self) -> int:
        tensors = [self.raw, self.tail, self.outlier_index, self.outlier_value, self.lowrank_q, self.lowrank_p]
        n = sum(t.numel() * t.element_size() for t in tensors if t is not None)
        return n + (self.quantized.nbytes() if self.quantized is not None else 0)

    def index_select(self, index: torch.Tensor) -> CompressedBlock:
        """The same block for batch rows ``index`` (beam search reordering)."""
        out = CompressedBlock((len(index), *self.shape[1:]), self.dtype, self.axis)
        for name in ("raw", "tail", "outlier_index", "outlier_value", "lowrank_q", "lowrank_p"):
            t = getattr(self, name)
            setattr(out, name, None if t is None else t.index_select(0, index))
        if self.quantized is not None:
            q = self.quantized
            out.quantized = _Quantized(q.codes.index_select(0, index), q.scale.index_select(0, index),
                                       q.minimum.index_select(0, index), q.bits, q.width, q.transposed)
        return out


def compress(x: torch.Tensor, axis: int, bits: int, group_size: int | None = None, outlier_ratio: float = 0.0,
             rank: int = 0, loop: int = 3, generator: torch.Generator | None = None) -> CompressedBlock:
    """Compress keys or values ``x [B, H, T, D]`` (see the module docstring).

    ``axis=-2`` quantizes per channel in groups of ``group_size`` tokens (None: all ``T`` tokens,
    KCVT's keys); ``axis=-1`` per token in groups of ``group_size`` channels of ``H*D`` (None: all
    of them, KCVT's values). ``bits >= 16`` stores ``x`` unchanged.
    """
    if x.dim() != 4:
        raise InputError(f"keys/values must be [B, H, T, D]; got shape {tuple(x.shape)}")
    if axis not in (-1, -2):
        raise ConfigError(f"axis must be -2 (per-channel, keys) or -1 (per-token, values); got {axis}")
    b, h, t, d = x.shape
    block = CompressedBlock((b, h, t, d), x.dtype, axis)
    if bits >= RAW_BITS:
        block.raw = x
        return block
    if not 1 <= bits <= 8:
        raise ConfigError(f"bits must be 1..8 (or 16 for no quantization); got {bits}")
    xf = x.float()
    rows = block._rows(xf).contiguous()
    k = min(outlier_count(x.shape, outlier_ratio), rows.shape[-1] // 2) if outlier_ratio > 0 else 0
    if k > 0:
        small_v, small_i = torch.topk(rows, k, dim=-1, largest=False)
        large_v, large_i = torch.topk(rows, k, dim=-1, largest=True)
        mean = rows.mean(dim=-1, keepdim=True).expand_as(rows)
        rows.scatter_(-1, small_i, mean.gather(-1, small_i))
        rows.scatter_(-1, large_i, mean.gather(-1, large_i))
        index_dtype = torch.int16 if rows.shape[-1] <= torch.iinfo(torch.int16).max else torch.int32
        block.outlier_index = torch.cat([small_i, large_i], dim=-1).to(index_dtype)
        block.outlier_value = torch.cat([small_v, large_v], dim=-1).to(x.dtype)
    filled = block._unrows(rows).permute(0, 2, 1, 3).reshape(b, t, h * d)  # [B, T, C]
    if axis == -2:
        g = t if group_size is None else group_size
        n = (t // g) * g
        groups = filled[:, :n].reshape(b, n // g, g, h * d).transpose(2, 3)  # [B, G, C, g]
        block.quantized = quantize_groups(groups, bits, x.dtype)
        block.quantized.transposed = True
        if n < t:
            block.tail = filled[:, n:].to(x.dtype)
    else:
        g = h * d if group_size is None else group_size
        if (h * d) % g:
            raise ConfigError(f"per-token groups of {g} channels must divide H*D = {h * d}")
        block.quantized = quantize_groups(filled.reshape(b, t, (h * d) // g, g), bits, x.dtype)
    if rank > 0:
        error = xf - block._quantized_part().to(x.dtype).float()
        q, p = power_iteration(error, rank, loop, generator)
        block.lowrank_q, block.lowrank_p = q.to(x.dtype), p.to(x.dtype)
    return block

