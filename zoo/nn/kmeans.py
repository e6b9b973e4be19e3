"""Nearest-centroid lookup over a fixed set of k-means centroids (DiGIT's tokenizer).

:class:`KMeansCodebook` holds the ``[K, D]`` centroids as a buffer (``centroids``) and maps feature
rows to the index of the nearest centroid by squared Euclidean distance, computed as
``|x|^2 + |c|^2 - 2 x.c`` (:func:`zoo.nn.quantize.squared_distances`, the expression the references
use) in the features' own dtype (float64 features search in float64). No training, no
re-initialisation: the centroids are data (e.g. ``km_8k.npy`` from faiss), loaded strictly.

Example:
    >>> import torch
    >>> km = KMeansCodebook(torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]]))
    >>> km.nearest(torch.tensor([[[9.0, 1.0], [1.0, 8.0]]])).tolist()
    [[1, 2]]
    >>> km(torch.tensor([2])).tolist()
    [[0.0, 10.0]]
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from zoo.errors import ConfigError, TokenError
from zoo.nn.quantize import check_token_ids

__all__ = ["KMeansCodebook"]


class KMeansCodebook(nn.Module):
    """``K`` fixed centroids of width ``D``: :meth:`nearest` (features -> ids), ``forward`` (ids -> centroids).

    Build it from a ``[K, D]`` tensor, or empty with ``KMeansCodebook.empty(K, D)`` for a checkpoint to
    fill. ``chunk`` bounds the rows searched at once (memory ``chunk x K`` distances).
    """

    def __init__(self, centroids: torch.Tensor, *, chunk: int = 4096):
        super().__init__()
        if not isinstance(centroids, torch.Tensor) or centroids.dim() != 2 or min(centroids.shape) < 1:
            shape = tuple(centroids.shape) if isinstance(centroids, torch.Tensor) else type(centroids).__name__
            raise ConfigError(f"k-means centroids must be a [K, D] tensor with K, D >= 1, got {shape}")
        if not centroids.is_floating_point():
            raise ConfigError(f"k-means centroids must be floating point, got {centroids.dtype}")
        self.register_buffer("centroids", centroids.detach().clone())
        self.chunk = int(chunk)

    @classmethod
    def empty(cls, num_centroids: int, dim: int, **kwargs: Any) -> KMeansCodebook:
        """Zero centroids of the given shape (a checkpoint's ``centroids`` replaces them)."""
        return cls(torch.zeros(int(num_centroids), int(dim)), **kwargs)

    @property
    def codebook_size(self) -> int:
        return int(self.centroids.shape[0])

    @property
    def dim(self) -> int:
        return int(self.centroids.shape[1])

    def nearest(self, x: torch.Tensor) -> torch.Tensor:
        """Features ``[..., D]`` -> ids ``[...]`` (int64) of the nearest centroids."""
        if x.shape[-1] != self.dim:
            raise TokenError(f"k-means lookup expects features of width {self.dim}, got {tuple(x.shape)}")
        lead = x.shape[:-1]
        flat = x.reshape(-1, self.dim)
        book = self.centroids.to(flat.dtype)
        book_sq = self._squared_norms(book)
        ids = []
        for part in flat.split(self.chunk):
            # squared_distances' |x|^2 + |c|^2 - 2 x.c with |c|^2 cached and the product added in place:
            # the same values, without a [K, D] temporary per call or a second [M, K] buffer
            dist = part.pow(2).sum(1, keepdim=True) + book_sq[None, :]
            ids.append(dist.addmm_(part, book.t(), alpha=-2.0).argmin(dim=-1))
        return (torch.cat(ids) if ids else flat.new_zeros(0, dtype=torch.long)).view(lead)

    def _squared_norms(self, book: torch.Tensor) -> torch.Tensor:
        """``|c|^2`` per centroid (``book.pow(2).sum(1)``, computed ``chunk`` rows at a time), kept while ``book`` is unchanged (same storage,
        dtype and in-place version; a checkpoint load bumps the version)."""
        key = (book.data_ptr(), book._version, book.dtype, book.device, tuple(book.shape))
        if getattr(self, "_sq_key", None) != key:
            self._sq = torch.cat([rows.pow(2).sum(1) for rows in book.split(self.chunk)])  # no [K, D] temporary
            self._sq_key = key
        return self._sq

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """Ids ``[...]`` -> centroids ``[..., D]`` (after :func:`~zoo.nn.quantize.check_token_ids`)."""
        check_token_ids(ids, self.codebook_size, what="k-means ids")
        return F.embedding(ids.long(), self.centroids)
