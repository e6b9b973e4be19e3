"""SEANet encoder (EnCodec layout, :mod:`zoo.nn.seanet`, re-exported here) with its 2-layer LSTM, and
WavTokenizer's single-VQ codebook.

Weight norm is folded at load time (``w = g * v / ||v||``), so the convolutions are plain
``Conv1d`` layers. Layer indices follow the official ``encoder.model.N`` numbering so the
converter is a rename:

    0 conv(1->32, k7) | [1 resblock, 2 ELU, 3 down conv(k=2r, stride r)] x 4 | 13 LSTM | 14 ELU | 15 conv(k7)

Every convolution is "same"-padded by reflection, with extra right padding so the last window
is full: ``L`` samples give ``ceil(L / hop)`` frames.

Example:
    >>> import torch
    >>> enc = SEANetEncoder(ratios=[8, 5, 4, 2], n_filters=4, dimension=8)
    >>> enc(torch.zeros(1, 1, 700)).shape
    torch.Size([1, 8, 3])
"""

from __future__ import annotations


import torch
from torch import nn

from zoo.nn.quantize import lookup_codes, nearest_code
from zoo.nn.seanet import PaddedConv1d, SEANetEncoder, SEANetResBlock, SkipLSTM, receptive_field

__all__ = ["PaddedConv1d", "SEANetResBlock", "SEANetEncoder", "SkipLSTM", "Codebook", "receptive_field"]


class Codebook(nn.Module):
    """Nearest-neighbour VQ on a fixed codebook (the EMA/k-means training state is dropped).

    The search and lookup are core's :mod:`zoo.nn.quantize`; this module owns the buffer
    (``embed``) under the checkpoint's name.
    """

    def __init__(self, size: int = 4096, dim: int = 512):
        super().__init__()
        self.register_buffer("embed", torch.zeros(size, dim))

    @property
    def size(self) -> int:
        return self.embed.shape[0]

    def encode(self, z: torch.Tensor) -> torch.Tensor:
        """Latents ``[B, D, T]`` -> ids ``[B, T]`` (int64)."""
        return nearest_code(z.transpose(1, 2), self.embed)

    def decode(self, ids: torch.Tensor) -> torch.Tensor:
        """Ids ``[B, T]`` -> features ``[B, D, T]``."""
        return lookup_codes(ids, self.embed, what="WavTokenizer ids").transpose(1, 2)
