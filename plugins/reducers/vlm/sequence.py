"""Rebuild a multimodal prompt with fewer visual tokens: embeddings, attention mask, positions.

A VLM prompt is a ``[B, L]`` sequence where each image occupies a contiguous run of placeholder
tokens, filled (in row-major order) by that image's ``n_i`` visual features. After a reducer kept
``k_i`` of them, :func:`shrink_sequence` replaces each run by the kept tokens (in the order the
reducer gives), keeps every text and padding token, and left-pads rows that became shorter than
the longest one. ``source`` records, for every new token, its position in the full sequence, so
positions computed on the full sequence can be subset (:func:`subset_positions`, Qwen2-VL's 3-D
rotary ids) or recomputed on the kept tokens (:func:`compact_positions`).

Example:
    >>> import torch
    >>> ids = torch.tensor([[1, 9, 9, 9, 9, 2]])                # one image of 4 tokens
    >>> slots = locate_images(ids == 9, [4])
    >>> kept = [Kept(torch.zeros(2, 3), torch.tensor([0, 3]))]  # keep its tokens 0 and 3
    >>> seq = shrink_sequence(torch.zeros(1, 6, 3), None, slots, kept)
    >>> seq.source.tolist(), seq.mask.tolist()
    ([[0, 1, 4, 5]], [[1, 1, 1, 1]])
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..types import ReducerError

__all__ = ["ImageSlot", "Kept", "Shrunk", "compact_positions", "locate_images", "shrink_sequence", "subset_positions"]


@dataclass
class ImageSlot:
    """Where one image's placeholder run sits: batch ``row``, first position ``start``, ``length`` tokens."""

    row: int
    start: int
    length: int


@dataclass
class Kept:
    """What a reducer keeps of one image: ``tokens`` ``[k, D]`` in sequence order and ``source``
    ``[k]`` (each token's position among the image's ``n`` tokens; for a merge, its representative)."""

    tokens: torch.Tensor
    source: torch.Tensor


@dataclass
class Shrunk:
    """The rebuilt prompt: ``embeds`` ``[B, L', D]``, ``mask`` ``[B, L']`` (0 = padding),
    ``source`` ``[B, L']`` (full-sequence position of each token, -1 for padding) and
    ``added`` ``[B]`` (left padding per row)."""

    embeds: torch.Tensor
    mask: torch.Tensor
    source: torch.Tensor
    added: torch.Tensor


def locate_images(image_mask: torch.Tensor, sizes: list[int]) -> list[ImageSlot]:
    """Split the placeholder positions ``image_mask`` ``[B, L]`` into one contiguous run per image,
    images consumed in row-major order (the order transformers scatters features in)."""
    slots: list[ImageSlot] = []
    it = iter(sizes)
    total = int(image_mask.sum())
    if total != sum(sizes):
        raise ReducerError(f"the prompt holds {total} image placeholder tokens but the images have {sum(sizes)} features "
                           "(pass the processor's input_ids unchanged)")
    for b in range(image_mask.shape[0]):
        pos = image_mask[b].nonzero()[:, 0]
        i = 0
        while i < pos.numel():
            n = next(it)
            run = pos[i:i + n]
            if run.numel() != n or int(run[-1] - run[0]) != n - 1:
                raise ReducerError(f"image {len(slots)}: its {n} placeholder tokens are not one contiguous run in row {b} "
                                   "(an image may not span rows or be interleaved with text)")
            slots.append(ImageSlot(b, int(run[0]), n))
            i += n
    return slots


def shrink_sequence(embeds: torch.Tensor, mask: torch.Tensor | None, slots: list[ImageSlot], kept: list[Kept]) -> Shrunk:
    """Replace each image run of ``embeds`` ``[B, L, D]`` by its kept tokens; drop padding (``mask``
    0) and left-pad every row to the longest."""
    b, length, d = embeds.shape
    if mask is None:
        mask = torch.ones(b, length, dtype=torch.long, device=embeds.device)
    rows_e, rows_m, rows_s = [], [], []
    by_row: dict[int, list[tuple[ImageSlot, Kept]]] = {}
    for slot, k in zip(slots, kept):
        by_row.setdefault(slot.row, []).append((slot, k))
    for r in range(b):
        e, m, s, cursor = [], [], [], 0
        for slot, k in by_row.get(r, []):
            e.append(embeds[r, cursor:slot.start])
            m.append(mask[r, cursor:slot.start])
            s.append(torch.arange(cursor, slot.start, device=embeds.device))
            src = slot.start + k.source.to(embeds.device)
            e.append(k.tokens.to(embeds.dtype))
            m.append(mask[r, src])
            s.append(src)
            cursor = slot.start + slot.length
        e.append(embeds[r, cursor:])
        m.append(mask[r, cursor:])
        s.append(torch.arange(cursor, length, device=embeds.device))
        m_row = torch.cat(m)
        real = m_row != 0                              # the prompt's own padding is dropped, rows re-padded below
        rows_e.append(torch.cat(e)[real])
        rows_m.append(m_row[real])
        rows_s.append(torch.cat(s)[real])
    new_len = max(x.shape[0] for x in rows_e)
    added = torch.tensor([new_len - x.shape[0] for x in rows_e], device=embeds.device)
    out_e = embeds.new_zeros(b, new_len, d)
    out_m = mask.new_zeros(b, new_len)
    out_s = torch.full((b, new_len), -1, dtype=torch.long, device=embeds.device)
    for r in range(b):
        a = int(added[r])
        out_e[r, a:] = rows_e[r]
        out_m[r, a:] = rows_m[r]
        out_s[r, a:] = rows_s[r]
    return Shrunk(out_e, out_m, out_s, added)


def compact_positions(mask: torch.Tensor) -> torch.Tensor:
    """``0, 1, 2, ...`` over the real tokens of each row of ``mask`` ``[B, L]`` (padding: 0), the
    positions a freshly built shorter prompt gets (LLaVA's own pipelines after pruning).

    Example:
        >>> import torch
        >>> compact_positions(torch.tensor([[0, 1, 1, 1]])).tolist()
        [[0, 0, 1, 2]]
    """
    pos = mask.long().cumsum(-1) - 1
    return pos.masked_fill(mask == 0, 0)


def subset_positions(full: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
    """Position ids computed on the full sequence (``[B, L]`` or ``[R, B, L]``, e.g. Qwen2-VL's
    3-D rotary ids) taken at the kept tokens ``source`` ``[B, L']`` (added padding gets 0).

    Example:
        >>> import torch
        >>> full = torch.arange(6).view(1, 1, 6).expand(3, 1, 6)
        >>> subset_positions(full, torch.tensor([[-1, 0, 4, 5]]))[0].tolist()
        [[0, 0, 4, 5]]
    """
    idx = source.clamp(min=0)
    if full.dim() == 2:
        return full.gather(1, idx).masked_fill(source < 0, 0)
    out = full.gather(2, idx[None].expand(full.shape[0], -1, -1))
    return out.masked_fill((source < 0)[None], 0)
