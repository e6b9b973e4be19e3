"""Residual vector quantizers of audio codecs (inference paths; training state is kept only so
official checkpoints load strictly).

* :class:`EuclideanCodebook` / :class:`ResidualVQ` — EnCodec's RVQ as SpeechTokenizer and
  DM-Codec ship it: ``n_q`` layers ``layers.{i}._codebook.embed`` with the EMA/k-means buffers
  (``inited``, ``cluster_size``, ``embed_avg``) as unused buffers; nearest codeword by Euclidean
  distance, residual subtracted level by level. Decoding fewer levels sums only those.
* :class:`FactorizedVQ` / :class:`MultiScaleRVQ` — SNAC's (and DAC's) factorised VQ: a 1x1 conv
  projects to a small codebook space, search is on L2-normalised vectors, the unnormalised
  codeword is projected back; SNAC runs each level at its own stride (average-pooled in,
  repeated out), giving one id tensor per level at its own rate.

Example:
    >>> import torch
    >>> rvq = ResidualVQ(dim=4, codebook_size=8, num_quantizers=3)
    >>> for i, layer in enumerate(rvq.layers):
    ...     _ = layer._codebook.embed.copy_(torch.randn(8, 4, generator=torch.Generator().manual_seed(i)))
    >>> codes = rvq.encode(torch.randn(2, 4, 5))
    >>> codes.shape, rvq.decode(codes[:, :2]).shape   # [B, Q, T]; decode the first 2 levels
    (torch.Size([2, 3, 5]), torch.Size([2, 4, 5]))
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from zoo.errors import TokenError

__all__ = ["EuclideanCodebook", "VectorQuantization", "ResidualVQ", "MaskedChannelRVQ", "FactorizedVQ", "MultiScaleRVQ"]


class EuclideanCodebook(nn.Module):
    """``embed`` ``[K, D]`` with EnCodec's training buffers (kept for strict loading, unused here)."""

    def __init__(self, dim: int, codebook_size: int):
        super().__init__()
        self.register_buffer("inited", torch.ones(1))
        self.register_buffer("cluster_size", torch.zeros(codebook_size))
        self.register_buffer("embed", torch.zeros(codebook_size, dim))
        self.register_buffer("embed_avg", torch.zeros(codebook_size, dim))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """``[..., D]`` -> ids ``[...]``: argmax of ``-(|x|^2 - 2 x.e + |e|^2)`` (the reference's form,
        so near-ties break the same way)."""
        flat = x.reshape(-1, x.shape[-1])
        embed = self.embed.t()
        dist = -(flat.pow(2).sum(1, keepdim=True) - 2 * flat @ embed + embed.pow(2).sum(0, keepdim=True))
        return dist.max(dim=-1).indices.view(x.shape[:-1])

    def decode(self, ids: torch.Tensor) -> torch.Tensor:
        """Ids ``[...]`` -> codewords ``[..., D]``."""
        return F.embedding(ids, self.embed)


class VectorQuantization(nn.Module):
    """One RVQ level on ``[B, D, T]`` (``project_in``/``project_out`` are identities: codebook dim = D)."""

    def __init__(self, dim: int, codebook_size: int):
        super().__init__()
        self._codebook = EuclideanCodebook(dim, codebook_size)

    def encode(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return self._codebook.encode(x.transpose(1, 2))

    def decode(self, ids: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return self._codebook.decode(ids).transpose(1, 2)


class ResidualVQ(nn.Module):
    """EnCodec-style residual VQ: ``layers.{i}._codebook.*``; codes are ``[B, Q, T]``."""

    def __init__(self, dim: int, codebook_size: int, num_quantizers: int):
        super().__init__()
        self.codebook_size = codebook_size
        self.layers = nn.ModuleList([VectorQuantization(dim, codebook_size) for _ in range(num_quantizers)])

    @property
    def num_quantizers(self) -> int:
        return len(self.layers)

    def encode(self, x: torch.Tensor, n_q: int | None = None) -> torch.Tensor:
        """Latents ``[B, D, T]`` -> codes ``[B, n_q, T]`` (all levels by default)."""
        residual = x
        codes = []
        for layer in self.layers[: n_q or len(self.layers)]:
            ids = layer.encode(residual)
            residual = residual - layer.decode(ids)
            codes.append(ids)
        return torch.stack(codes, dim=1)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes ``[B, q, T]`` (the first ``q`` levels, ``q`` <= ``num_quantizers``) -> ``[B, D, T]``."""
        if codes.shape[1] > len(self.layers):
            raise TokenError(f"{codes.shape[1]} codebook levels given; this quantizer has {len(self.layers)}")
        out = self.layers[0].decode(codes[:, 0])
        for i in range(1, codes.shape[1]):
            out = out + self.layers[i].decode(codes[:, i])
        return out


class MaskedChannelRVQ(ResidualVQ):
    """Language-Codec's masked-channel RVQ (``LanguageVectorQuantization``, its inference path).

    The first three levels each see one third of the channels of the latent (``[0, D//3)``,
    ``[D//3, 2D//3)``, ``[2D//3, D)``; the other channels zeroed) and quantize it with a full
    ``D``-dim codebook; level 3 quantizes ``x - q0 - q1 - q2`` and every later level the residual
    of the one before, as in plain RVQ. Same parameters and key layout as :class:`ResidualVQ`;
    decoding sums the codewords of the levels given.

    Example:
        >>> import torch
        >>> rvq = MaskedChannelRVQ(dim=6, codebook_size=8, num_quantizers=4)
        >>> for i, layer in enumerate(rvq.layers):
        ...     _ = layer._codebook.embed.copy_(torch.randn(8, 6, generator=torch.Generator().manual_seed(i)))
        >>> x = torch.randn(1, 6, 5)
        >>> codes = rvq.encode(x)
        >>> masked = x.clone(); masked[:, 2:] = 0       # level 0 sees channels [0, 2) only
        >>> bool((codes[:, 0] == rvq.layers[0].encode(masked)).all()), rvq.encode(x, n_q=2).shape
        (True, torch.Size([1, 2, 5]))
    """

    def encode(self, x: torch.Tensor, n_q: int | None = None) -> torch.Tensor:
        """Latents ``[B, D, T]`` -> codes ``[B, n_q, T]`` (all levels by default)."""
        d = x.shape[1]
        bounds = (0, d // 3, 2 * d // 3, d)
        n_q = n_q or len(self.layers)
        codes, residual = [], x
        for i, layer in enumerate(self.layers[:n_q]):
            if i < 3:
                part = torch.zeros_like(x)
                part[:, bounds[i] : bounds[i + 1]] = x[:, bounds[i] : bounds[i + 1]]
                ids = layer.encode(part)
                residual = residual - layer.decode(ids)  # x - q0 - q1 - q2, in the reference's order
            else:
                ids = layer.encode(residual)
                residual = residual - layer.decode(ids)
            codes.append(ids)
        return torch.stack(codes, dim=1)


class FactorizedVQ(nn.Module):
    """A factorised VQ level (ViT-VQGAN / DAC / SNAC): ``in_proj`` (1x1) to ``codebook_dim``,
    cosine search over ``codebook.weight``, ``out_proj`` back; ``stride`` > 1 average-pools the input
    and repeats the output (SNAC). The 1x1 convs are plain (weight norm folded at load)."""

    def __init__(self, input_dim: int, codebook_size: int, codebook_dim: int, stride: int = 1):
        super().__init__()
        self.stride = stride
        self.in_proj = nn.Conv1d(input_dim, codebook_dim, 1)
        self.out_proj = nn.Conv1d(codebook_dim, input_dim, 1)
        self.codebook = nn.Embedding(codebook_size, codebook_dim)

    def encode(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``[B, D, T]`` -> (quantized ``[B, D, T]`` at full rate, ids ``[B, T / stride]``)."""
        if self.stride > 1:
            z = F.avg_pool1d(z, self.stride, self.stride)
        z_e = self.in_proj(z)
        enc = F.normalize(z_e.transpose(1, 2).reshape(-1, z_e.shape[1]))
        book = F.normalize(self.codebook.weight)
        dist = enc.pow(2).sum(1, keepdim=True) - 2 * enc @ book.t() + book.pow(2).sum(1, keepdim=True).t()
        ids = (-dist).max(1)[1].view(z.shape[0], -1)
        return self.decode(ids), ids

    def decode(self, ids: torch.Tensor) -> torch.Tensor:
        """Ids ``[B, T / stride]`` -> ``[B, D, T]``."""
        z_q = self.out_proj(F.embedding(ids, self.codebook.weight).transpose(1, 2))
        return z_q.repeat_interleave(self.stride, dim=-1) if self.stride > 1 else z_q


class MultiScaleRVQ(nn.Module):
    """SNAC's residual VQ with one stride per level (``quantizers.{i}``); level ``i`` emits
    ``T / vq_strides[i]`` ids. Decoding the first ``q`` levels sums only those."""

    def __init__(self, input_dim: int, codebook_size: int, codebook_dim: int, vq_strides: Sequence[int]):
        super().__init__()
        self.vq_strides = tuple(vq_strides)
        self.codebook_size = codebook_size
        self.quantizers = nn.ModuleList([FactorizedVQ(input_dim, codebook_size, codebook_dim, s) for s in vq_strides])

    def encode(self, z: torch.Tensor) -> list[torch.Tensor]:
        """Latents ``[B, D, T]`` (``T`` a multiple of every stride) -> ids per level ``[B, T / s_l]``."""
        residual = z
        codes = []
        for quantizer in self.quantizers:
            z_q, ids = quantizer.encode(residual)
            residual = residual - z_q
            codes.append(ids)
        return codes

    def decode(self, codes: Sequence[torch.Tensor]) -> torch.Tensor:
        """Ids of the first ``q`` levels -> latents ``[B, D, T]``."""
        if not 1 <= len(codes) <= len(self.quantizers):
            raise TokenError(f"{len(codes)} codebook levels given; this quantizer has {len(self.quantizers)}")
        out = self.quantizers[0].decode(codes[0])
        for quantizer, ids in zip(self.quantizers[1:], codes[1:]):
            out = out + quantizer.decode(ids)
        return out
