"""TiTok's vector quantizer (optionally L2-normalised) and the VAE posterior mean.

Example:
    >>> import torch
    >>> vq = VectorQuantizer(16, 4, use_l2_norm=True)
    >>> z = torch.randn(2, 4, 1, 8)
    >>> ids = vq.encode(z)
    >>> ids.shape, vq.decode(ids).shape
    (torch.Size([2, 8]), torch.Size([2, 4, 1, 8]))
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["VectorQuantizer", "gaussian_mean"]


class VectorQuantizer(nn.Module):
    """Nearest-codeword quantizer over ``embedding.weight`` [K, C].

    With ``use_l2_norm`` latents and codewords are L2-normalised before the search and the
    decoded codewords are normalised too (as the reference does). The search runs in float32.
    """

    def __init__(self, codebook_size: int, token_size: int, use_l2_norm: bool = False):
        super().__init__()
        self.codebook_size = codebook_size
        self.token_size = token_size
        self.use_l2_norm = use_l2_norm
        self.embedding = nn.Embedding(codebook_size, token_size)
        self.embedding.weight.data.uniform_(-1.0 / codebook_size, 1.0 / codebook_size)

    def codebook(self) -> torch.Tensor:
        """Codewords as the search sees them ([K, C], float32)."""
        e = self.embedding.weight.float()
        return F.normalize(e, dim=-1) if self.use_l2_norm else e

    def distances(self, z: torch.Tensor) -> torch.Tensor:
        """Squared distances [B, N, K] of latents ``z`` [B, C, 1, N] to the codewords
        (same expression and operand layout as the reference, on a [B*N, C] matrix)."""
        b, c, _, n = z.shape
        x = z.float().permute(0, 2, 3, 1).reshape(-1, c)  # [B*N, C]
        if self.use_l2_norm:
            x = F.normalize(x, dim=-1)
        e = self.codebook()
        d = torch.sum(x**2, dim=1, keepdim=True) + torch.sum(e**2, dim=1) - 2 * torch.einsum("bd,dn->bn", x, e.T)
        return d.view(b, n, -1)

    def encode(self, z: torch.Tensor) -> torch.Tensor:
        """Latents [B, C, 1, N] -> ids [B, N] (int64)."""
        return self.distances(z).argmin(-1)

    def decode(self, ids: torch.Tensor) -> torch.Tensor:
        """Ids [B, n] -> latents [B, C, 1, n] (normalised codewords with ``use_l2_norm``)."""
        if ids.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8):
            raise TypeError(f"token ids must be an integer tensor, got {ids.dtype}")
        if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= self.codebook_size):
            raise ValueError(
                f"token ids must be in [0, {self.codebook_size}), got range [{int(ids.min())}, {int(ids.max())}]"
            )
        z = F.embedding(ids.long(), self.embedding.weight)
        if self.use_l2_norm:
            z = F.normalize(z, dim=-1)
        return z.transpose(1, 2).unsqueeze(2)


def gaussian_mean(params: torch.Tensor) -> torch.Tensor:
    """Posterior mean of a diagonal Gaussian whose parameters are ``[mean | logvar]`` on dim 1.

    Example:
        >>> gaussian_mean(torch.arange(4.).view(1, 4, 1, 1)).flatten().tolist()
        [0.0, 1.0]
    """
    return params.float().chunk(2, dim=1)[0]
