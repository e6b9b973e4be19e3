"""A shared-index dual codebook (TokenFlow): one id picks a pair of codewords, one from a
*semantic* codebook and one from a *pixel* codebook.

A vector ``z`` ``[..., Ds + Dp]`` is split into its semantic part (the first ``Ds`` channels) and
its pixel part; both parts and both codebooks are l2-normalised (``l2_norm=True``, as TokenFlow
trains them) and the id is the argmin of the *sum* of the two squared distances
(``d_sem + pixel_weight * d_pix``, computed as ``|z|^2 + |e|^2 - 2 z.e`` like the reference, so
near-ties fall the same way). The code of an id is the concatenation ``[e_sem | e_pix]`` of the
(normalised) codewords. Keys: ``semantic.weight`` ``[K, Ds]``, ``pixel.weight`` ``[K, Dp]``.

It is a drop-in codebook for :class:`zoo.nn.multiscale_vq.MultiScaleResidualVQ`
(``codebook=DualCodebook(...)``): calling it maps ids to codes, :meth:`nearest` maps vectors to ids.

Example:
    >>> import torch
    >>> cb = DualCodebook(16, 4, 2)
    >>> z = cb(torch.tensor([3, 7]))           # the codes of ids 3 and 7
    >>> z.shape, cb.nearest(z).tolist()
    (torch.Size([2, 6]), [3, 7])
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from zoo.errors import ConfigError

__all__ = ["DualCodebook"]


def _sq_dist(x: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
    return (x ** 2).sum(1, keepdim=True) + (e ** 2).sum(1) - 2 * (x @ e.t())


class DualCodebook(nn.Module):
    """``codebook_size`` shared ids over a semantic (``semantic_dim``) and a pixel (``pixel_dim``) codebook."""

    def __init__(self, codebook_size: int, semantic_dim: int, pixel_dim: int, *, l2_norm: bool = True,
                 pixel_weight: float = 1.0):
        super().__init__()
        if min(codebook_size, semantic_dim, pixel_dim) < 1:
            raise ConfigError(f"codebook_size, semantic_dim and pixel_dim must be >= 1, got "
                              f"{codebook_size}, {semantic_dim}, {pixel_dim}")
        self.codebook_size = int(codebook_size)
        self.semantic_dim, self.pixel_dim = int(semantic_dim), int(pixel_dim)
        self.dim = self.semantic_dim + self.pixel_dim
        self.l2_norm, self.pixel_weight = bool(l2_norm), float(pixel_weight)
        self.semantic = nn.Embedding(self.codebook_size, self.semantic_dim)
        self.pixel = nn.Embedding(self.codebook_size, self.pixel_dim)

    def codebooks(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The two codebooks as searched and looked up (normalised when ``l2_norm``)."""
        s, p = self.semantic.weight, self.pixel.weight
        if self.l2_norm:
            s, p = F.normalize(s, dim=-1), F.normalize(p, dim=-1)
        return s, p

    @property
    def weight(self) -> torch.Tensor:
        """The ``[K, Ds + Dp]`` table of codes (``[e_sem | e_pix]`` per id)."""
        return torch.cat(self.codebooks(), dim=-1)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """Ids ``[...]`` -> codes ``[..., Ds + Dp]``."""
        return F.embedding(ids.long(), self.weight)

    def nearest(self, z: torch.Tensor) -> torch.Tensor:
        """Rows ``z`` ``[M, Ds + Dp]`` -> ids ``[M]`` (argmin of the summed squared distances)."""
        if z.shape[-1] != self.dim:
            raise ConfigError(f"the dual codebook expects {self.dim} channels, got {z.shape[-1]}")
        zs, zp = z.split([self.semantic_dim, self.pixel_dim], dim=-1)
        if self.l2_norm:
            zs, zp = F.normalize(zs, dim=-1), F.normalize(zp, dim=-1)
        s, p = self.codebooks()
        d = _sq_dist(zs, s.to(zs.dtype)) + self.pixel_weight * _sq_dist(zp, p.to(zp.dtype))
        return torch.argmin(d, dim=1)
