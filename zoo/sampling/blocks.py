"""The block-wise autoregressive outer loop of continuous-token generators: each step fills a
BLOCK of positions of a ``[B, L, C]`` token tensor, conditioned on the positions known so far.

Block plans (which positions each step fills):

* :func:`masked_set_blocks` — MAR: random generation orders ``[B, L]`` and MaskGIT/MAGE's cosine
  mask schedule (:func:`masked_set_counts`); step ``i`` fills ``order[:, m_i : m_{i-1}]`` (the
  END of each order first), the last step everything left;
* :func:`cell_blocks` — xAR: fixed ``cell x cell`` cells of an ``h x w`` grid in raster order;
* :func:`range_blocks` / :func:`scale_blocks` — consecutive ranges, e.g. the scales ``1x1, 2x2,
  ...`` of FlowAR/VAR laid end to end.

:func:`generate_blocks` runs the plan: for each block it computes the CFG weight (a
:class:`~zoo.sampling.guidance.Guidance` schedule read by block index or by generated fraction,
:func:`~zoo.sampling.cfg.ramp_progress`), calls the plugin's ``predict(block, tokens, known, w)
-> [B, n, C]`` and writes the values at the block's positions (MAR, xAR, FlowAR and VAR run on
it). A plugin with a KV cache (xAR, FlowAR, VAR) writes the new block's keys/values and advances
the cache inside ``predict``; a :class:`~zoo.sampling.kv_cache.StaticKVCache` given as ``cache``
is reset first and checked to only grow. Nothing here draws random numbers: orders
come from :func:`random_orders` with the caller's ``torch.Generator`` (or are given).

Example (a toy "model" that writes the step number):
    >>> import torch
    >>> orders = torch.tensor([[3, 1, 0, 2]])
    >>> blocks = masked_set_blocks(orders, steps=2)
    >>> [b.positions.tolist() for b in blocks], [b.fraction for b in blocks]
    ([[[0, 2]], [[1, 3]]], [0.5, 0.75])
    >>> out = generate_blocks(lambda blk, tok, known, w: torch.full((1, 2, 1), float(blk.index + 1)),
    ...                       torch.zeros(1, 4, 1), blocks)
    >>> out[0, :, 0].tolist()
    [1.0, 2.0, 1.0, 2.0]
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Optional, Sequence, Union

import torch

from zoo.errors import InputError
from zoo.sampling.cfg import ramp_progress
from zoo.sampling.guidance import Guidance, as_guidance
from zoo.sampling.kv_cache import StaticKVCache
from zoo.sampling.progress import ProgressArg, progress_reporter

__all__ = ["Block", "masked_set_counts", "masked_set_blocks", "random_orders", "cell_blocks", "range_blocks",
           "scale_blocks", "generate_blocks"]


@dataclass(frozen=True)
class Block:
    """One step of a block plan: ``positions`` ``[B, n]`` (ascending per row) filled at step
    ``index`` of ``total``; ``fraction`` is the generated fraction after it as the plan counts
    it (MAR: ``(L - masked_after) / L`` with MAR's clamped count, which stays 1 at the end)."""

    index: int
    total: int
    positions: torch.Tensor
    fraction: float

    @property
    def size(self) -> int:
        return int(self.positions.shape[1])


def masked_set_counts(length: int, steps: int) -> list[int]:
    """MAR's masked counts after each step: ``max(1, min(left - 1, floor(L cos(pi/2 (i+1)/steps))))``
    with ``left`` the count before the step (``L`` at first). Step ``i`` fills ``left - m_i``
    positions, the last step all that are left (its ``m`` is 1 by the clamp, as in MAR).

    Example:
        >>> masked_set_counts(16, 4)
        [14, 11, 6, 1]
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= length:
        raise InputError(f"the number of steps must be a whole number in 1..{length} (one position at least per step), got {steps!r}")
    left, out = length, []
    for i in range(steps):
        ratio = math.cos(math.pi / 2.0 * (i + 1) / steps)
        m = max(1, min(left - 1, math.floor(length * ratio)))
        out.append(m)
        left = m
    return out


def random_orders(batch: int, length: int, generator: Optional[torch.Generator], device: Optional[torch.device | str] = None) -> torch.Tensor:
    """``[B, L]`` generation orders, one ``torch.randperm`` per row from ``generator``.

    Example:
        >>> random_orders(2, 4, torch.Generator().manual_seed(0)).shape
        torch.Size([2, 4])
    """
    if generator is None:
        raise InputError("random orders need the caller's torch.Generator (zoo never draws from the global RNG)")
    rows = [torch.randperm(length, generator=generator, device=generator.device) for _ in range(batch)]
    return torch.stack(rows).to(device if device is not None else generator.device)


def _check_orders(orders: torch.Tensor) -> None:
    if orders.dim() != 2 or orders.dtype not in (torch.int64, torch.int32):
        raise InputError(f"orders must be an integer [B, L] tensor, got {tuple(orders.shape)} {orders.dtype}")
    length = orders.shape[1]
    ref = torch.arange(length, device=orders.device)
    if not torch.equal(orders.sort(dim=1).values, ref.expand_as(orders)):
        raise InputError(f"each row of orders must be a permutation of 0..{length - 1}")


def masked_set_blocks(orders: torch.Tensor, steps: int) -> list[Block]:
    """MAR's plan from orders ``[B, L]`` (see module docstring and :func:`masked_set_counts`)."""
    _check_orders(orders)
    length = orders.shape[1]
    counts = masked_set_counts(length, steps)
    blocks, left = [], length
    for i, m in enumerate(counts):
        lo = 0 if i == steps - 1 else m
        pos = orders[:, lo:left].sort(dim=1).values
        blocks.append(Block(i, steps, pos, (length - m) / length))
        left = m
    return blocks


def range_blocks(sizes: Sequence[int], batch: int = 1, device: Optional[torch.device | str] = None) -> list[Block]:
    """Consecutive ranges of ``sizes`` (``[B, n]`` positions, the same for every row).

    Example:
        >>> [b.positions.tolist() for b in range_blocks([1, 2])]
        [[[0]], [[1, 2]]]
    """
    if not sizes or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in sizes):
        raise InputError(f"block sizes must be whole numbers >= 1, got {list(sizes)}")
    total, start, out = sum(sizes), 0, []
    for i, s in enumerate(sizes):
        pos = torch.arange(start, start + s, device=device).expand(batch, s)
        start += s
        out.append(Block(i, len(sizes), pos, start / total))
    return out


def scale_blocks(scales: Sequence[Union[int, tuple[int, int]]], batch: int = 1, device: Optional[torch.device | str] = None) -> list[Block]:
    """Scales ``k`` (``k x k``) or ``(h, w)`` laid end to end (VAR/FlowAR's multi-scale sequence).

    Example:
        >>> [b.size for b in scale_blocks([1, 2, (2, 3)])]
        [1, 4, 6]
    """
    sizes = []
    for s in scales:
        h, w = (s, s) if isinstance(s, int) else s
        sizes.append(int(h) * int(w))
    return range_blocks(sizes, batch, device)


def cell_blocks(height: int, width: int, cell: int, batch: int = 1, device: Optional[torch.device | str] = None) -> list[Block]:
    """``cell x cell`` cells of a row-major ``height x width`` grid, in raster order of cells
    (positions within a cell ascending).

    Example:
        >>> [b.positions.tolist()[0] for b in cell_blocks(2, 4, 2)]
        [[0, 1, 4, 5], [2, 3, 6, 7]]
    """
    if cell < 1 or height % cell or width % cell:
        raise InputError(f"a {height}x{width} grid does not split into {cell}x{cell} cells")
    grid = torch.arange(height * width, device=device).reshape(height, width)
    cells = []
    for r in range(0, height, cell):
        for c in range(0, width, cell):
            cells.append(grid[r:r + cell, c:c + cell].reshape(-1))
    n = len(cells)
    return [Block(i, n, p.expand(batch, p.numel()), (i + 1) / n) for i, p in enumerate(cells)]


@torch.no_grad()
def generate_blocks(
    predict: Callable[[Block, torch.Tensor, torch.Tensor, float], torch.Tensor],
    tokens: torch.Tensor,
    blocks: Sequence[Block],
    *,
    guidance: Union[Guidance, float, None] = None,
    ramp: str = "block",
    cache: Optional[StaticKVCache] = None,
    progress: ProgressArg = None,
) -> torch.Tensor:
    """Fill ``tokens`` ``[B, L, C]`` block by block and return it (a new tensor).

    Args:
        predict: ``predict(block, tokens, known, w) -> [B, n, C]``: the values of the block's
            positions given the current ``tokens`` and ``known`` ``[B, L]`` (bool) and the CFG
            weight ``w`` for this block (1.0 without guidance; the plugin runs ``2B`` rows).
        guidance: CFG weight or schedule, read at :func:`ramp_progress` ``(ramp, ...)``.
        ramp: ``"block"``, ``"block_end"`` or ``"fraction"``.
        cache: reset before the first block; it must never shrink between blocks.
    """
    if tokens.dim() != 3:
        raise InputError(f"tokens must be [B, L, C], got {tuple(tokens.shape)}")
    b, length, _ = tokens.shape
    g = as_guidance(guidance)
    out = tokens.clone()
    known = torch.zeros(b, length, dtype=torch.bool, device=tokens.device)
    if cache is not None:
        cache.reset()
    report = progress_reporter(progress, len(blocks), "blocks")
    rows = torch.arange(b, device=tokens.device)[:, None]
    try:
        for blk in blocks:
            if blk.positions.shape[0] != b:
                raise InputError(f"block {blk.index} has positions for {blk.positions.shape[0]} rows, tokens have {b}")
            w = g.weight_at(ramp_progress(ramp, blk.index, blk.total, blk.fraction)) if g.active else 1.0
            before = cache.length if cache is not None else 0
            vals = predict(blk, out, known, w)
            if vals.shape[:2] != blk.positions.shape:
                raise InputError(f"predict returned {tuple(vals.shape)} for block {blk.index} of {tuple(blk.positions.shape)} positions")
            if cache is not None and cache.length < before:
                raise InputError("the KV cache shrank during a block (a block may only append keys/values)")
            out[rows, blk.positions.to(tokens.device)] = vals.to(out.dtype)
            known[rows, blk.positions.to(tokens.device)] = True
            report(blk.index + 1)
    finally:
        report.close()
    return out
