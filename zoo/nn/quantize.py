"""Quantizers shared by the tokenizer plugins: finite scalar quantisation and codebook search.

* :class:`FSQ` — finite scalar quantisation (Mentzer et al. 2023), no parameters (FlexTok).
* :func:`nearest_code` / :func:`lookup_codes` — nearest-codeword search and lookup over a
  ``[K, D]`` codebook, optionally L2-normalised (TiTok, MaskGIT-VQGAN, WavTokenizer). The
  plugins keep their own parameter names (``embedding.weight``, ``embed``) so official
  checkpoints load unchanged, and call these for the arithmetic.
* :class:`LFQ` — lookup-free quantisation with optional groups (Open-MAGVIT2, WeTok), no
  parameters; the reference's bit order (first channel of a group = least significant bit).
* :class:`VectorQuantizer` — a learned ``[K, D]`` codebook (``embedding.weight``) over
  channel-first feature maps, optionally L2-normalised (LlamaGen VQ and the VQGANs copied from
  it), with the reference's ``get_codebook_entry``.
* :func:`check_token_ids` — the one error users see for ids of the wrong dtype or range.

Example:
    >>> import torch
    >>> book = torch.eye(4)
    >>> nearest_code(torch.tensor([[0.1, 0.9, 0.0, 0.0]]), book).tolist()
    [1]
    >>> lookup_codes(torch.tensor([2]), book).tolist()
    [[0.0, 0.0, 1.0, 0.0]]
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from zoo.errors import InputTypeError, TokenError

__all__ = ["FSQ", "LFQ", "VectorQuantizer", "check_token_ids", "lookup_codes", "nearest_code", "squared_distances"]

_INT_DTYPES = (torch.int64, torch.int32, torch.int16, torch.uint8)


def check_token_ids(ids: torch.Tensor, codebook_size: int, *, what: str = "token ids") -> None:
    """Raise :class:`~zoo.errors.InputTypeError` (a ``TypeError``) for non-integer ids and
    :class:`~zoo.errors.TokenError` (a ``ValueError``) for ids outside ``[0, codebook_size)``,
    naming the range found, the one expected and the fix.

    Example:
        >>> check_token_ids(torch.tensor([0, 3]), 4)
        >>> check_token_ids(torch.tensor([4]), 4)
        Traceback (most recent call last):
        ...
        zoo.errors.TokenError: token ids must be in [0, 4) (the codebook has 4 entries), got range [4, 4]; pass ids this model's encode made (ids of another tokenizer or codebook do not fit)
    """
    if not isinstance(ids, torch.Tensor) or ids.dtype not in _INT_DTYPES:
        got = ids.dtype if isinstance(ids, torch.Tensor) else type(ids).__name__
        raise InputTypeError(f"{what} must be an integer tensor (int64/int32), got {got}; convert with torch.as_tensor(ids).long()")
    if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= codebook_size):
        raise TokenError(
            f"{what} must be in [0, {codebook_size}) (the codebook has {codebook_size} entries), "
            f"got range [{int(ids.min())}, {int(ids.max())}]; pass ids this model's encode made "
            "(ids of another tokenizer or codebook do not fit)"
        )


def squared_distances(x: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    """``|x|^2 + |e|^2 - 2 x.e`` for rows ``x`` ``[M, D]`` against codewords ``[K, D]`` -> ``[M, K]``.

    This is the expression the reference implementations use (not ``cdist``), so the argmin
    agrees with them wherever the gap between the two nearest codewords exceeds float rounding.
    """
    if x.dim() != 2 or codebook.dim() != 2 or x.shape[1] != codebook.shape[1]:
        raise ValueError(f"squared_distances expects x [M, D] and codebook [K, D], got {tuple(x.shape)} and {tuple(codebook.shape)}")
    base = x.pow(2).sum(1, keepdim=True) + codebook.pow(2).sum(1)[None, :]
    return torch.addmm(base, x, codebook.t(), alpha=-2.0)


def nearest_code(x: torch.Tensor, codebook: torch.Tensor, *, l2_norm: bool = False) -> torch.Tensor:
    """Index of the nearest codeword for every row of ``x`` ``[..., D]`` -> ids ``[...]`` (int64).

    The search runs in float32; with ``l2_norm`` both sides are L2-normalised first (cosine
    search, as TiTok's quantizer does).
    """
    lead = x.shape[:-1]
    flat = x.reshape(-1, x.shape[-1]).float()
    book = codebook.float()
    if l2_norm:
        flat, book = F.normalize(flat, dim=-1), F.normalize(book, dim=-1)
    return squared_distances(flat, book).argmin(dim=-1).view(lead)


def lookup_codes(ids: torch.Tensor, codebook: torch.Tensor, *, l2_norm: bool = False,
                 what: str = "token ids") -> torch.Tensor:
    """Codewords for ``ids`` ``[...]`` -> ``[..., D]``, after :func:`check_token_ids` (``what``
    names the ids in its error)."""
    check_token_ids(ids, codebook.shape[0], what=what)
    z = F.embedding(ids.long(), codebook)
    return F.normalize(z, dim=-1) if l2_norm else z


class FSQ(nn.Module):
    """Finite scalar quantisation: ``z [..., d] -> (codes in [-1, 1] [..., d], ids [...])``
    with ``d = len(levels)`` and a codebook of ``prod(levels)`` implicit entries.

    Example:
        >>> fsq = FSQ([8, 8, 8, 5, 5, 5])
        >>> fsq.codebook_size
        64000
        >>> codes, ids = fsq(torch.randn(2, 7, 6))
        >>> bool((fsq.indices_to_codes(ids) == codes).all())
        True
    """

    def __init__(self, levels: Sequence[int], eps: float = 1e-3):
        super().__init__()
        levels_t = torch.tensor([int(x) for x in levels], dtype=torch.int32)
        self.register_buffer("_levels", levels_t, persistent=False)
        basis = torch.cumprod(torch.tensor([1] + [int(x) for x in levels[:-1]]), dim=0, dtype=torch.int32)
        self.register_buffer("_basis", basis, persistent=False)
        self.eps = eps
        self.dim = len(levels)
        self.codebook_size = math.prod(int(x) for x in levels)

    def bound(self, z: torch.Tensor) -> torch.Tensor:
        """Squash ``z`` so that rounding lands on the level grid."""
        half_l = (self._levels - 1) * (1 + self.eps) / 2
        offset = torch.where(self._levels % 2 == 0, 0.5, 0.0)
        shift = (offset / half_l).atanh()
        return (z + shift).tanh() * half_l - offset

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if z.shape[-1] != self.dim:
            raise ValueError(f"FSQ expects a last dimension of {self.dim} (one per level), got {tuple(z.shape)}")
        half_width = self._levels // 2
        codes = self.bound(z.float()).round() / half_width
        ids = ((codes * half_width + half_width) * self._basis).sum(dim=-1).to(torch.int32).long()
        return codes, ids

    def indices_to_codes(self, ids: torch.Tensor) -> torch.Tensor:
        """Token ids ``[...]`` -> codes ``[..., d]`` in [-1, 1]."""
        check_token_ids(ids, self.codebook_size)
        half_width = self._levels // 2
        digits = (ids.long()[..., None] // self._basis) % self._levels
        return (digits - half_width) / half_width


class LFQ(nn.Module):
    """Lookup-free quantisation (Yu et al. 2023), optionally in groups: ``z [..., G*K]`` ->
    ``(codes in {-1, +1} [..., G*K], ids [..., G])``, ``G = groups``, ``K = bits`` per group,
    ``2**K`` implicit codes per group. No parameters (the codebook is the set of sign vectors).

    Bit order (Open-MAGVIT2 / WeTok ``LFQ``/``GFQ``): channel ``g*K + k`` is bit ``k`` of group
    ``g``'s id, **channel ``g*K`` the least significant**; a channel quantises to ``+1`` (bit 1)
    when it is strictly positive, else to ``-1`` (0 itself gives ``-1``). Group ``g`` of a
    position is ``ids[..., g]``; the reference flattens ``[B, H*W, G]`` in that order.

    Example:
        >>> lfq = LFQ(bits=3, groups=2)
        >>> codes, ids = lfq(torch.tensor([[0.5, -1.0, 2.0, -0.1, 0.0, 3.0]]))
        >>> codes.tolist(), ids.tolist()
        ([[1.0, -1.0, 1.0, -1.0, -1.0, 1.0]], [[5, 4]])
        >>> lfq.indices_to_codes(ids).tolist() == codes.tolist()
        True
        >>> lfq.codes_to_indices(codes).tolist()
        [[5, 4]]
    """

    def __init__(self, bits: int, groups: int = 1):
        super().__init__()
        if int(bits) < 1 or int(groups) < 1:
            raise ValueError(f"LFQ needs bits >= 1 and groups >= 1, got bits={bits}, groups={groups}")
        if int(bits) > 62:
            raise ValueError(f"LFQ ids are int64: at most 62 bits per group, got {bits}")
        self.bits, self.groups = int(bits), int(groups)
        self.dim = self.bits * self.groups
        self.codebook_size = 2**self.bits  # per group
        self.register_buffer("_weights", 2 ** torch.arange(self.bits, dtype=torch.long), persistent=False)

    def _check_dim(self, x: torch.Tensor, what: str) -> None:
        if x.shape[-1] != self.dim:
            raise ValueError(f"LFQ({self.bits} bits x {self.groups} groups) expects {what} with a last dimension "
                             f"of {self.dim}, got {tuple(x.shape)}")

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self._check_dim(z, "latents")
        positive = z > 0
        codes = torch.where(positive, 1.0, -1.0).to(z.dtype if z.is_floating_point() else torch.float32)
        return codes, self._bits_to_ids(positive)

    def _bits_to_ids(self, positive: torch.Tensor) -> torch.Tensor:
        grouped = positive.reshape(*positive.shape[:-1], self.groups, self.bits).long()
        return (grouped * self._weights).sum(-1)

    def codes_to_indices(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes (any real values; the sign decides) ``[..., G*K]`` -> ids ``[..., G]``."""
        self._check_dim(codes, "codes")
        return self._bits_to_ids(codes > 0)

    def indices_to_codes(self, ids: torch.Tensor) -> torch.Tensor:
        """Ids ``[..., G]`` in ``[0, 2**K)`` -> codes ``[..., G*K]`` in {-1, +1} (float32)."""
        check_token_ids(ids, self.codebook_size)
        if ids.dim() == 0 or ids.shape[-1] != self.groups:
            raise ValueError(f"LFQ ids must end in one id per group ({self.groups}), got {tuple(ids.shape)}")
        bits = (ids.long()[..., None] & self._weights) != 0
        return (bits.float() * 2.0 - 1.0).reshape(*ids.shape[:-1], self.dim)


class VectorQuantizer(nn.Module):
    """Nearest-codeword quantisation of feature maps ``[B, D, H, W]`` over ``embedding.weight`` ``[K, D]``.

    With ``l2_norm`` (LlamaGen's ``codebook_l2_norm=True``) features and codewords are
    L2-normalised before the search and the normalised codeword is returned, as the reference
    does. Ids come out ``[B, H, W]`` (row-major over the grid); :meth:`get_codebook_entry`
    turns ids back into ``[B, D, H, W]`` codes.

    Example:
        >>> vq = VectorQuantizer(4, 2, l2_norm=True)
        >>> _ = vq.embedding.weight.data.copy_(torch.tensor([[1.0, 0], [0, 1], [-1, 0], [0, -1]]))
        >>> codes, ids = vq(torch.tensor([[[[3.0, -0.1]], [[0.2, -5.0]]]]))  # [1, 2, 1, 2]
        >>> ids.tolist(), codes.shape
        ([[[0, 3]]], torch.Size([1, 2, 1, 2]))
        >>> bool(torch.equal(vq.get_codebook_entry(ids.flatten(), (1, 2, 1, 2)), codes))
        True
    """

    def __init__(self, codebook_size: int, dim: int, *, l2_norm: bool = False):
        super().__init__()
        self.codebook_size, self.dim, self.l2_norm = int(codebook_size), int(dim), bool(l2_norm)
        self.embedding = nn.Embedding(self.codebook_size, self.dim)

    def codebook(self) -> torch.Tensor:
        """The codewords as the search sees them (L2-normalised when ``l2_norm``)."""
        w = self.embedding.weight
        return F.normalize(w, p=2, dim=-1) if self.l2_norm else w

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``z`` ``[B, D, H, W]`` -> ``(codes [B, D, H, W], ids [B, H, W])``."""
        if z.dim() != 4 or z.shape[1] != self.dim:
            from zoo.errors import InputError

            raise InputError(f"VectorQuantizer expects features [B, {self.dim}, H, W], got {tuple(z.shape)}")
        ids = nearest_code(z.permute(0, 2, 3, 1), self.embedding.weight, l2_norm=self.l2_norm)
        return self.get_codebook_entry(ids.flatten(), tuple(z.shape)).to(z.dtype), ids

    def get_codebook_entry(self, indices: torch.Tensor, shape: Sequence[int] | None = None,
                           channel_first: bool = True) -> torch.Tensor:
        """Codes for ``indices``: ``[..., D]``, or reshaped to ``shape`` — ``(B, D, H, W)`` when
        ``channel_first`` (the reference's convention), else ``(B, H, W, D)``."""
        z = lookup_codes(indices, self.codebook(), what="VQ token ids")
        if shape is None:
            return z
        if channel_first:
            b, d, h, w = shape
            return z.reshape(b, h, w, d).permute(0, 3, 1, 2).contiguous()
        return z.view(*shape)
