"""DiT's sinusoidal timestep embedding and ``TimestepEmbedder`` (GLIDE/DiT/SiT; MAR's diffusion
head, LightningDiT, FlowAR and xAR copy it unchanged): ``[cos(t f) | sin(t f)]`` with
``f_i = exp(-ln(max_period) i / half)`` in float32, then ``mlp.0 -> SiLU -> mlp.2`` (the
releases' key names).

Example:
    >>> import torch
    >>> timestep_embedding(torch.tensor([0.0]), 4).tolist()
    [[1.0, 1.0, 0.0, 0.0]]
    >>> sorted(TimestepEmbedder(8, frequency_embedding_size=4).state_dict())
    ['mlp.0.bias', 'mlp.0.weight', 'mlp.2.bias', 'mlp.2.weight']
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["timestep_embedding", "TimestepEmbedder"]


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """``[N] -> [N, dim]`` sinusoidal features of (possibly fractional) timesteps, computed as DiT
    does (float32 frequencies, ``cos`` half first, a zero column for odd ``dim``)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(start=0, end=half, dtype=torch.float32) / half).to(t.device)
    args = t[:, None].float() * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        emb = torch.cat([emb, torch.zeros_like(emb[:, :1])], dim=-1)
    return emb


class TimestepEmbedder(nn.Module):
    """``mlp(timestep_embedding(t))`` with ``mlp = Linear(freq, hidden), SiLU, Linear(hidden, hidden)``."""

    def __init__(self, hidden_size: int, frequency_embedding_size: int = 256):
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Linear(frequency_embedding_size, hidden_size, bias=True),
            nn.SiLU(),
            nn.Linear(hidden_size, hidden_size, bias=True),
        )
        self.frequency_embedding_size = frequency_embedding_size

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        emb = timestep_embedding(t, self.frequency_embedding_size)  # float32, as DiT
        return self.mlp(emb.to(self.mlp[0].weight.dtype))
