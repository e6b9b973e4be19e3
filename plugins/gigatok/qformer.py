"""GigaTok's Q-Former stages: 2D feature map -> 1D tokens (encoder) and back (decoder).

Both stages are stacks of DETR's pre-norm decoder layer (:class:`QFormerLayer`): self-attention
over the queries, cross-attention from the queries to a memory, a GELU MLP, each a residual
branch after its own LayerNorm; positional embeddings are added to queries and keys, never to
values. Parameter names are the reference's (``torch.nn.MultiheadAttention``'s ``in_proj_weight`` /
``out_proj``, ``linear1`` / ``linear2``, ``norm1..3``), so the official weights load unchanged;
the attention itself runs through :func:`zoo.nn.attention.attention`, batch first.

* :class:`QFormerEncoder` -- the CNN's ``[B, z, g, g]`` map is LayerNorm-ed and embedded as
  memory; the 256 queries are a multi-level average pooling of that memory
  (:func:`multi_level_queries`: 1, 1, 2, 4, ..., 128 regions, rows split first) through
  ``global_proj``; output ``[B, z, 1, N]``.
* :class:`QFormerDecoder` -- the ``N`` tokens are LayerNorm-ed and embedded as memory; the
  ``g*g`` queries all start as the first token; output ``[B, z, g, g]`` after a 3x3 conv.

Example:
    >>> x = torch.arange(16.).view(1, 1, 4, 4)
    >>> multi_level_queries(x, 3)[0, :, 0].tolist()
    [7.5, 7.5, 6.5, 8.5, 2.5, 4.5, 10.5, 12.5]
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from zoo.nn.attention import attention

__all__ = ["QFormerLayer", "QFormerEncoder", "QFormerDecoder", "multi_level_queries"]


def multi_level_queries(x: torch.Tensor, n_level: int) -> torch.Tensor:
    """``[B, C, H, W]`` -> ``[B, 2**n_level, C]``: average pools over 1, 1, 2, 4, ... regions
    (level ``l`` splits the width ``2**((l+1)//2)`` and the height ``2**(l//2)`` times), row-major."""
    _, _, h, w = x.shape
    groups = []
    for i in range(n_level + 1):
        level = max(i - 1, 0)
        kernel = (h // 2 ** (level // 2), w // 2 ** ((level + 1) // 2))
        groups.append(F.avg_pool2d(x, kernel_size=kernel).flatten(2).transpose(1, 2))
    return torch.cat(groups, dim=1)


class _MultiheadAttention(nn.Module):
    """``torch.nn.MultiheadAttention``'s parameters (packed ``in_proj``), batch-first forward."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.in_proj_weight = nn.Parameter(torch.empty(3 * dim, dim))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * dim))
        self.out_proj = nn.Linear(dim, dim)

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        wq, wk, wv = self.in_proj_weight.chunk(3)
        bq, bk, bv = self.in_proj_bias.chunk(3)
        b, lq, d = q.shape
        h = self.heads

        def split(t: torch.Tensor) -> torch.Tensor:
            return t.view(b, t.shape[1], h, d // h).transpose(1, 2)

        out = attention(split(F.linear(q, wq, bq)), split(F.linear(k, wk, bk)), split(F.linear(v, wv, bv)))
        return self.out_proj(out.transpose(1, 2).reshape(b, lq, d))


class QFormerLayer(nn.Module):
    """DETR's ``TransformerDecoderLayer`` with ``normalize_before=True`` (GELU MLP, ratio 4)."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float = 4.0):
        super().__init__()
        self.self_attn = _MultiheadAttention(dim, heads)
        self.multihead_attn = _MultiheadAttention(dim, heads)
        self.linear1 = nn.Linear(dim, int(dim * mlp_ratio))
        self.linear2 = nn.Linear(int(dim * mlp_ratio), dim)
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.norm3 = nn.LayerNorm(dim)

    def forward(self, tgt: torch.Tensor, memory: torch.Tensor, pos: torch.Tensor, query_pos: torch.Tensor,
                memory_keys: torch.Tensor | None = None) -> torch.Tensor:
        """``tgt`` ``[B, Lq, D]``, ``memory`` ``[B, Lm, D]``; ``memory_keys`` = ``memory + pos``
        when the caller has it already (it is the same for every layer)."""
        t = self.norm1(tgt)
        qk = t + query_pos
        tgt = tgt + self.self_attn(qk, qk, t)
        t = self.norm2(tgt)
        keys = memory_keys if memory_keys is not None else memory + pos
        tgt = tgt + self.multihead_attn(t + query_pos, keys, memory)
        t = self.norm3(tgt)
        return tgt + self.linear2(F.gelu(self.linear1(t)))


class QFormerEncoder(nn.Module):
    """2D map ``[B, z, g, g]`` -> 1D latents ``[B, z, 1, N]`` (the reference's ``s2to1encoder``)."""

    def __init__(self, z_channels: int, width: int, layers: int, heads: int, grid: int, num_tokens: int):
        super().__init__()
        self.num_tokens = num_tokens
        self.n_level = num_tokens.bit_length() - 1
        self.encoder_embed = nn.Linear(z_channels, width)
        self.ln_pre = nn.LayerNorm(z_channels)
        self.positional_embedding = nn.Parameter(torch.zeros(grid * grid, 1, width))
        self.latent_token_positional_embedding = nn.Parameter(torch.zeros(num_tokens, 1, width))
        self.global_proj = nn.Linear(width, width)
        self.transformer = nn.ModuleList(QFormerLayer(width, heads) for _ in range(layers))
        self.ln_post = nn.LayerNorm(width)
        self.conv_out = nn.Conv2d(width, z_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, g, _ = x.shape
        memory = self.encoder_embed(self.ln_pre(x.flatten(2).transpose(1, 2)))  # [B, g*g, D]
        grid = memory.transpose(1, 2).reshape(b, -1, g, g)
        queries = self.global_proj(multi_level_queries(grid, self.n_level))  # [B, N, D]
        pos = self.positional_embedding[:, 0][None].to(memory.dtype)
        query_pos = self.latent_token_positional_embedding[:, 0][None].to(memory.dtype)
        keys = memory + pos
        for layer in self.transformer:
            queries = layer(queries, memory, pos, query_pos, memory_keys=keys)
        out = self.ln_post(queries).transpose(1, 2).unsqueeze(2)  # [B, D, 1, N]
        return self.conv_out(out)


class QFormerDecoder(nn.Module):
    """1D latents ``[B, z, 1, N]`` -> 2D map ``[B, z, g, g]`` (the reference's ``s1to2decoder``)."""

    def __init__(self, z_channels: int, width: int, layers: int, heads: int, grid: int, num_tokens: int):
        super().__init__()
        self.grid = grid
        self.decoder_embed = nn.Linear(z_channels, width)
        self.ln_pre = nn.LayerNorm(z_channels)
        self.positional_embedding = nn.Parameter(torch.zeros(grid * grid, 1, width))
        self.latent_token_positional_embedding = nn.Parameter(torch.zeros(num_tokens, 1, width))
        self.transformer = nn.ModuleList(QFormerLayer(width, heads) for _ in range(layers))
        self.ln_post = nn.LayerNorm(width)
        self.conv_out = nn.Conv2d(width, z_channels, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        b, c, h, n = z.shape
        memory = self.decoder_embed(self.ln_pre(z.reshape(b, c * h, n).transpose(1, 2)))  # [B, N, D]
        g = self.grid
        queries = memory[:, :1].expand(b, g * g, memory.shape[-1])
        query_pos = self.positional_embedding[:, 0][None].to(memory.dtype)
        pos = self.latent_token_positional_embedding[:n, 0][None].to(memory.dtype)
        keys = memory + pos
        for layer in self.transformer:
            queries = layer(queries, memory, pos, query_pos, memory_keys=keys)
        out = self.ln_post(queries).transpose(1, 2).reshape(b, -1, g, g)
        return self.conv_out(out.contiguous())
