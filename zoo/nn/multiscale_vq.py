"""Multi-scale residual vector quantisation (VAR's ``VectorQuantizer2``; TokenFlow and XQ-GAN
reuse the scheme).

A feature map ``f`` ``[B, C, H, W]`` is quantised coarse to fine over a *scale schedule*
``scales`` (``(1, 2, 3, 4, 5, 6, 8, 10, 13, 16)`` for VAR at 256x256; ints are square, pairs are
``(h, w)``; the last scale is the full map). At scale ``k`` the residual ``f - f_hat`` is
downsampled to ``scales[k]`` (``down_mode``, ``area`` in VAR), each position takes its nearest
codeword, the codes are upsampled back to ``H x W`` (``up_mode``, ``bicubic``) and refined by a
convolution ``phi`` (``phi(h) = (1 - r) h + r conv3x3(h)``, ``r = phi_ratio``), then added to
``f_hat``. Decoding sums the upsampled, refined codes of every scale.

``phi`` convs may be

* ``phi_sharing=0`` — one per scale (``phi_count`` of them; 0 = one per scale), keys
  ``quant_resi.{i}.weight``;
* ``phi_sharing=1`` — one shared by every scale, keys ``quant_resi.qresi.weight``;
* ``phi_sharing=K > 1`` — ``K`` convs partially shared (VAR: 4), keys
  ``quant_resi.qresi_ls.{i}.weight``.

Scale ``k`` of ``n`` uses the conv whose tick is nearest to ``k / (n - 1)``; the ticks are
``linspace(1/3K, 1 - 1/3K, K)`` for ``K == 4`` and ``linspace(1/2K, 1 - 1/2K, K)`` otherwise, as in
the reference (so the same weights serve schedules of other lengths). ``phi_ratio == 0`` means
no conv at all (identity, no parameters). Parameter names are the reference's, so official
checkpoints load unchanged; ``embedding.weight`` is the ``[K, C]`` codebook.

Example:
    >>> import torch
    >>> q = MultiScaleResidualVQ(16, 4, scales=(1, 2, 4)).eval()
    >>> f = torch.randn(2, 4, 4, 4)
    >>> ids = q.encode(f)
    >>> [tuple(i.shape) for i in ids]
    [(2, 1), (2, 4), (2, 16)]
    >>> q.decode(ids).shape
    torch.Size([2, 4, 4, 4])
    >>> [q.phi_index(k, 3) for k in range(3)], len(q.quant_resi.qresi_ls)
    ([0, 2, 3], 4)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from zoo.errors import ConfigError, TokenError
from zoo.nn.quantize import check_token_ids, nearest_code

__all__ = ["MultiScaleResidualVQ", "Phi", "PhiNonShared", "PhiPartiallyShared", "PhiShared", "Scale", "as_scales",
           "phi_ticks", "scale_lengths"]

Scale = tuple[int, int]


def as_scales(scales: Sequence[int | Sequence[int]]) -> tuple[Scale, ...]:
    """A schedule of ints (square) or ``(h, w)`` pairs -> ``((h, w), ...)``, checked.

    Example:
        >>> as_scales([1, (2, 3)])
        ((1, 1), (2, 3))
    """
    if isinstance(scales, (str, bytes)) or not isinstance(scales, Sequence) or not scales:
        raise ConfigError(f"a scale schedule is a non-empty list of ints or (h, w) pairs, got {scales!r}")
    out = []
    for s in scales:
        hw = (s, s) if isinstance(s, (int, np.integer)) and not isinstance(s, bool) else tuple(s)
        if len(hw) != 2 or any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1 for v in hw):
            raise ConfigError(f"scale {s!r} is not a positive int or an (h, w) pair of them (schedule {list(scales)})")
        out.append((int(hw[0]), int(hw[1])))
    return tuple(out)


def scale_lengths(scales: Sequence[int | Sequence[int]]) -> list[int]:
    """Tokens per scale (``h * w``).

    Example:
        >>> scale_lengths((1, 2, 3))
        [1, 4, 9]
    """
    return [h * w for h, w in as_scales(scales)]


def phi_ticks(count: int) -> np.ndarray:
    """The positions in [0, 1] of ``count`` partially shared / per-scale phi convs (the reference's)."""
    k = count
    return np.linspace(1 / 3 / k, 1 - 1 / 3 / k, k) if k == 4 else np.linspace(1 / 2 / k, 1 - 1 / 2 / k, k)


class Phi(nn.Conv2d):
    """``(1 - r) h + r conv(h)``: the residual refinement of one scale's upsampled codes."""

    def __init__(self, dim: int, ratio: float, kernel_size: int = 3):
        super().__init__(dim, dim, kernel_size=kernel_size, stride=1, padding=kernel_size // 2)
        self.resi_ratio = abs(ratio)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h.mul(1 - self.resi_ratio) + super().forward(h).mul_(self.resi_ratio)


class PhiShared(nn.Module):
    """One phi for every scale (keys ``qresi.*``)."""

    def __init__(self, qresi: nn.Module):
        super().__init__()
        self.qresi = qresi

    def pick(self, at: float) -> nn.Module:
        return self.qresi


class PhiPartiallyShared(nn.Module):
    """``K`` phis, scale at ``at`` in [0, 1] takes the one with the nearest tick (keys ``qresi_ls.{i}.*``)."""

    def __init__(self, qresi_ls: nn.ModuleList):
        super().__init__()
        self.qresi_ls = qresi_ls
        self.ticks = phi_ticks(len(qresi_ls))

    def index(self, at: float) -> int:
        return int(np.argmin(np.abs(self.ticks - at)).item())

    def pick(self, at: float) -> nn.Module:
        return self.qresi_ls[self.index(at)]


class PhiNonShared(nn.ModuleList):
    """One phi per tick (keys ``{i}.*``); picks like :class:`PhiPartiallyShared`."""

    def __init__(self, qresi: list[nn.Module]):
        super().__init__(qresi)
        self.ticks = phi_ticks(len(qresi))

    def index(self, at: float) -> int:
        return int(np.argmin(np.abs(self.ticks - at)).item())

    def pick(self, at: float) -> nn.Module:
        return self[self.index(at)]


class MultiScaleResidualVQ(nn.Module):
    """Multi-scale residual VQ over ``[B, C, H, W]`` maps (see the module docstring).

    ``scales`` is the default schedule; every method takes ``scales=`` to use another one whose
    last scale is the map's size. ``l2_norm`` searches codewords by cosine similarity (VAR's
    ``using_znorm``); the codes added to ``f_hat`` are the raw codewords either way.
    """

    def __init__(self, codebook_size: int, dim: int, scales: Sequence[int | Sequence[int]], *,
                 phi_ratio: float = 0.5, phi_sharing: int = 4, phi_count: int = 0, phi_kernel: int = 3,
                 l2_norm: bool = False, down_mode: str = "area", up_mode: str = "bicubic",
                 codebook: nn.Module | None = None):
        super().__init__()
        if phi_sharing < 0 or phi_count < 0:
            raise ConfigError(f"phi_sharing and phi_count must be >= 0, got {phi_sharing}, {phi_count}")
        self.codebook_size, self.dim = int(codebook_size), int(dim)
        self.scales = as_scales(scales)
        self.phi_ratio, self.phi_sharing = float(phi_ratio), int(phi_sharing)
        self.l2_norm, self.down_mode, self.up_mode = bool(l2_norm), down_mode, up_mode

        def make() -> nn.Module:
            return Phi(dim, phi_ratio, phi_kernel) if abs(phi_ratio) > 1e-6 else nn.Identity()

        if phi_sharing == 0:
            self.quant_resi: nn.Module = PhiNonShared([make() for _ in range(phi_count or len(self.scales))])
        elif phi_sharing == 1:
            self.quant_resi = PhiShared(make())
        else:
            self.quant_resi = PhiPartiallyShared(nn.ModuleList([make() for _ in range(phi_sharing)]))
        # ``codebook``: any module mapping ids -> codes with a ``nearest(rows) -> ids`` method (e.g.
        # zoo.nn.dual_codebook.DualCodebook); its keys live under ``embedding.``.
        if codebook is not None and (getattr(codebook, "codebook_size", None), getattr(codebook, "dim", None)) != (
                self.codebook_size, self.dim):
            raise ConfigError(f"codebook holds {getattr(codebook, 'codebook_size', '?')} x {getattr(codebook, 'dim', '?')} "
                              f"codes, the quantizer was built for {self.codebook_size} x {self.dim}")
        self.embedding = codebook if codebook is not None else nn.Embedding(self.codebook_size, self.dim)

    # ------------------------------------------------------------------ pieces
    def _scales(self, scales: Sequence[int | Sequence[int]] | None) -> tuple[Scale, ...]:
        return self.scales if scales is None else as_scales(scales)

    @staticmethod
    def _at(k: int, n: int) -> float:
        return k / (n - 1) if n > 1 else 0.0

    def phi(self, k: int, n: int) -> nn.Module:
        """The phi of scale ``k`` of ``n``."""
        return self.quant_resi.pick(self._at(k, n))

    def phi_index(self, k: int, n: int) -> int:
        """Which phi (0-based) scale ``k`` of ``n`` uses (0 when they are shared)."""
        q = self.quant_resi
        return q.index(self._at(k, n)) if hasattr(q, "index") else 0

    def _resize(self, x: torch.Tensor, size: Scale, mode: str) -> torch.Tensor:
        return F.interpolate(x, size=size, mode=mode)

    def _nearest(self, z: torch.Tensor) -> torch.Tensor:
        if hasattr(self.embedding, "nearest"):  # a custom codebook searches itself
            return self.embedding.nearest(z)
        if self.l2_norm:  # the reference's argmax of cosine similarity
            z = F.normalize(z, dim=-1)
            return torch.argmax(z @ F.normalize(self.embedding.weight.T, dim=0), dim=1)
        return nearest_code(z, self.embedding.weight)

    def lookup(self, ids: torch.Tensor, hw: Scale) -> torch.Tensor:
        """Ids ``[B, h*w]`` -> codes ``[B, C, h, w]`` (ids checked against the codebook)."""
        check_token_ids(ids, self.codebook_size, what="multi-scale token ids")
        b = ids.shape[0]
        return self.embedding(ids.long()).transpose(1, 2).reshape(b, self.dim, hw[0], hw[1])

    def upsampled_code(self, k: int, codes: torch.Tensor, scales: Sequence[int | Sequence[int]] | None = None) -> torch.Tensor:
        """Scale ``k``'s codes ``[B, C, h, w]`` upsampled to the full map and refined by its phi."""
        sc = self._scales(scales)
        n = len(sc)
        if k != n - 1:
            codes = self._resize(codes, sc[-1], self.up_mode)
        return self.phi(k, n)(codes)

    # ------------------------------------------------------------------ encode / decode
    @torch.no_grad()
    def quantize(self, f: torch.Tensor, scales: Sequence[int | Sequence[int]] | None = None
                 ) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Map ``f`` ``[B, C, H, W]`` -> ``(ids per scale [B, h*w], f_hat [B, C, H, W])``."""
        sc = self._scales(scales)
        b, c, h, w = f.shape
        if c != self.dim:
            raise TokenError(f"multi-scale VQ expects {self.dim} channels, got {c}")
        if sc[-1] != (h, w):
            raise TokenError(f"the last scale {sc[-1]} must be the feature map's size ({h}, {w})")
        n = len(sc)
        f_rest = f.detach().clone()
        f_hat = torch.zeros_like(f_rest)
        ids_out = []
        for k, (ph, pw) in enumerate(sc):
            z = self._resize(f_rest, (ph, pw), self.down_mode) if k != n - 1 else f_rest
            ids = self._nearest(z.permute(0, 2, 3, 1).reshape(-1, c))
            hk = self.upsampled_code(k, self.embedding(ids.view(b, ph, pw)).permute(0, 3, 1, 2).contiguous(), sc)
            f_hat.add_(hk)
            f_rest.sub_(hk)
            ids_out.append(ids.reshape(b, ph * pw))
        return ids_out, f_hat

    def encode(self, f: torch.Tensor, scales: Sequence[int | Sequence[int]] | None = None) -> list[torch.Tensor]:
        """Ids per scale ``[B, h_k * w_k]`` for ``f`` ``[B, C, H, W]``."""
        return self.quantize(f, scales)[0]

    def codes_to_fhat(self, codes: Sequence[torch.Tensor], scales: Sequence[int | Sequence[int]] | None = None,
                      *, cumulative: bool = False) -> torch.Tensor | list[torch.Tensor]:
        """Codes per scale ``[B, C, h_k, w_k]`` -> ``f_hat`` (the sum of every upsampled, refined
        scale); ``cumulative=True`` returns the partial sums after each scale."""
        sc = self._scales(scales)
        if len(codes) > len(sc):
            raise TokenError(f"{len(codes)} scales of codes but the schedule has {len(sc)}")
        b = codes[0].shape[0]
        # accumulate in float32 at least (float64 codes stay float64)
        f_hat = codes[0].new_zeros(b, self.dim, *sc[-1], dtype=torch.promote_types(codes[0].dtype, torch.float32))
        partial = []
        for k, h in enumerate(codes):
            f_hat.add_(self.upsampled_code(k, h, sc))
            if cumulative:
                partial.append(f_hat.clone())
        return partial if cumulative else f_hat

    def decode(self, ids: Sequence[torch.Tensor], scales: Sequence[int | Sequence[int]] | None = None) -> torch.Tensor:
        """Ids per scale (as :meth:`encode` returns them; a prefix of the scales is allowed) -> ``f_hat``."""
        sc = self._scales(scales)
        if not len(ids) or len(ids) > len(sc):
            raise TokenError(f"expected ids for 1..{len(sc)} scales, got {len(ids)}")
        codes = []
        for k, i in enumerate(ids):
            if i.dim() != 2 or i.shape[1] != sc[k][0] * sc[k][1]:
                raise TokenError(f"scale {k} holds {sc[k][0]}x{sc[k][1]} ids, got shape {tuple(i.shape)}")
            codes.append(self.lookup(i, sc[k]))
        return self.codes_to_fhat(codes, sc)

    # ------------------------------------------------------------------ next-scale AR
    def next_input(self, k: int, f_hat: torch.Tensor, codes: torch.Tensor,
                   scales: Sequence[int | Sequence[int]] | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Add scale ``k``'s codes to ``f_hat`` (in place) and return ``(f_hat, next scale's input)``:
        ``f_hat`` downsampled to scale ``k + 1`` (``None`` after the last scale). The AR loop of
        next-scale prediction (VAR's ``get_next_autoregressive_input``)."""
        sc = self._scales(scales)
        f_hat.add_(self.upsampled_code(k, codes, sc))
        if k == len(sc) - 1:
            return f_hat, None
        return f_hat, self._resize(f_hat, sc[k + 1], self.down_mode)

    def teacher_inputs(self, ids: Sequence[torch.Tensor], scales: Sequence[int | Sequence[int]] | None = None) -> torch.Tensor:
        """Teacher-forcing inputs of a next-scale model: for every scale after the first, ``f_hat``
        of the scales before it downsampled to it, flattened -> ``[B, L - L_0, C]``."""
        sc = self._scales(scales)
        b = ids[0].shape[0]
        f_hat = ids[0].new_zeros(b, self.dim, *sc[-1], dtype=torch.float32)
        out = []
        for k in range(len(sc) - 1):
            f_hat, nxt = self.next_input(k, f_hat, self.lookup(ids[k], sc[k]), sc)
            out.append(nxt.reshape(b, self.dim, -1).transpose(1, 2))
        return torch.cat(out, dim=1)
