"""Multi-codebook VQ: the channels are split into ``G`` equal groups, each quantised by its own
codebook (MedITok's ``VectorQuantizerM``: 8 sub-codebooks of 4096 over 64 channels).

Each group searches its own ``[K, D/G]`` codebook (``codebooks.{g}.weight``). With ``l2_norm``
(MedITok) features and codewords are L2-normalised and the id is the argmax of their dot product
(``search="cosine"``, the reference's expression); ``search="l2"`` takes the argmin of the squared
distance instead. Ids are ``[..., G]`` (group last); codes of ids are the concatenated
(normalised) codewords ``[..., D]``.

Example:
    >>> import torch
    >>> vq = MultiCodebookVQ(num_codebooks=2, codebook_size=16, dim=8)
    >>> ids = torch.tensor([[3, 7], [0, 15]])
    >>> z = vq(ids)                           # codes [2, 8]
    >>> vq.nearest(z).tolist()
    [[3, 7], [0, 15]]
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from zoo.errors import ConfigError, TokenError
from zoo.nn.quantize import check_token_ids, squared_distances

__all__ = ["MultiCodebookVQ"]

_SEARCHES = ("cosine", "l2")


class MultiCodebookVQ(nn.Module):
    """``num_codebooks`` codebooks of ``codebook_size`` entries over ``dim / num_codebooks`` channels each."""

    def __init__(self, num_codebooks: int, codebook_size: int, dim: int, *, l2_norm: bool = True,
                 search: str = "cosine"):
        super().__init__()
        if min(num_codebooks, codebook_size, dim) < 1 or dim % num_codebooks:
            raise ConfigError(f"multi-codebook VQ: dim {dim} must be a positive multiple of num_codebooks "
                              f"{num_codebooks}, and codebook_size {codebook_size} >= 1")
        if search not in _SEARCHES:
            raise ConfigError(f"search must be one of {_SEARCHES}, got {search!r}")
        if search == "cosine" and not l2_norm:
            raise ConfigError("search='cosine' compares normalised vectors: use l2_norm=True, or search='l2'")
        self.num_codebooks, self.codebook_size, self.dim = int(num_codebooks), int(codebook_size), int(dim)
        self.group_dim = self.dim // self.num_codebooks
        self.l2_norm, self.search = bool(l2_norm), search
        self.codebooks = nn.ModuleList(nn.Embedding(self.codebook_size, self.group_dim) for _ in range(self.num_codebooks))

    def codebook(self, g: int) -> torch.Tensor:
        """Group ``g``'s codebook as searched and looked up (normalised when ``l2_norm``)."""
        w = self.codebooks[g].weight
        return F.normalize(w, dim=1) if self.l2_norm else w

    def nearest(self, z: torch.Tensor) -> torch.Tensor:
        """Features ``[..., dim]`` -> ids ``[..., num_codebooks]`` (int64)."""
        if z.shape[-1] != self.dim:
            raise TokenError(f"multi-codebook VQ expects {self.dim} channels, got {tuple(z.shape)}")
        lead = z.shape[:-1]
        flat = z.reshape(-1, self.dim)
        ids = []
        for g, part in enumerate(flat.split(self.group_dim, dim=-1)):
            book = self.codebook(g).to(part.dtype)
            if self.l2_norm:
                part = F.normalize(part, dim=-1)
            if self.search == "cosine":
                ids.append((part @ book.t()).argmax(dim=1))
            else:
                ids.append(squared_distances(part, book).argmin(dim=1))
        return torch.stack(ids, dim=-1).view(*lead, self.num_codebooks)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """Ids ``[..., num_codebooks]`` -> codes ``[..., dim]``."""
        if ids.dim() < 1 or ids.shape[-1] != self.num_codebooks:
            raise TokenError(f"multi-codebook ids must end in a group axis of {self.num_codebooks}, got {tuple(ids.shape)}")
        check_token_ids(ids, self.codebook_size, what="multi-codebook ids")
        return torch.cat([F.embedding(ids[..., g].long(), self.codebook(g)) for g in range(self.num_codebooks)], dim=-1)
