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
from torch import nn

from zoo.nn.quantize import lookup_codes, nearest_code

__all__ = ["VectorQuantizer", "gaussian_mean"]


class VectorQuantizer(nn.Module):
    """Nearest-codeword quantizer over ``embedding.weight`` [K, C].

    With ``use_l2_norm`` latents and codewords are L2-normalised before the search and the
    decoded codewords are normalised too (as the reference does). The arithmetic is core's
    :mod:`zoo.nn.quantize`; this module only owns the parameter (``embedding.weight``).
    """

    def __init__(self, codebook_size: int, token_size: int, use_l2_norm: bool = False):
        super().__init__()
        self.codebook_size = codebook_size
        self.token_size = token_size
        self.use_l2_norm = use_l2_norm
        self.embedding = nn.Embedding(codebook_size, token_size)
        self.embedding.weight.data.uniform_(-1.0 / codebook_size, 1.0 / codebook_size)

    def encode(self, z: torch.Tensor) -> torch.Tensor:
        """Latents [B, C, 1, N] -> ids [B, N] (int64)."""
        return nearest_code(z.squeeze(2).transpose(1, 2), self.embedding.weight, l2_norm=self.use_l2_norm)

    def decode(self, ids: torch.Tensor) -> torch.Tensor:
        """Ids [B, n] -> latents [B, C, 1, n] (normalised codewords with ``use_l2_norm``)."""
        return lookup_codes(ids, self.embedding.weight, l2_norm=self.use_l2_norm).transpose(1, 2).unsqueeze(2)


def gaussian_mean(params: torch.Tensor) -> torch.Tensor:
    """Posterior mean of a diagonal Gaussian whose parameters are ``[mean | logvar]`` on dim 1.

    Example:
        >>> gaussian_mean(torch.arange(4.).view(1, 4, 1, 1)).flatten().tolist()
        [0.0, 1.0]
    """
    return params.float().chunk(2, dim=1)[0]
