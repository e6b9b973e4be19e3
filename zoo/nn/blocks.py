"""Transformer pieces shared by generator plugins: a decode-friendly ``Linear``, the timm-style
``Mlp`` (``fc1``/``fc2``) and ``SelfAttention`` (``qkv``/``proj``, optional ``q_norm``/``k_norm``,
an optional static KV cache), and the head split/merge helpers.

Parameter names are those of timm / the official checkpoints that use these layouts (U-ViT,
RAR, DiT-style blocks), so a plugin that builds ``self.attn = SelfAttention(...)`` and
``self.mlp = Mlp(...)`` keeps the release's state-dict keys (``attn.qkv.weight``,
``mlp.fc1.bias``...) unchanged.

``Linear`` is ``torch.nn.Linear`` (same parameters, same keys) whose forward computes
decode-shaped products (2 to 4 rows on CPU, ``out_features >= in_features``) as
``W @ x^T``: MKL's ``x @ W^T`` kernel for 2..4 rows reads the weight at about half the memory
bandwidth, and an autoregressive decode step with classifier-free guidance (2 rows) is bound by
reading the weights. The result differs from ``F.linear`` only in float rounding (the sum is
reassociated, about 1e-7 relative), like any change of BLAS kernel; every other shape calls
``F.linear`` unchanged.

Example:
    >>> import torch
    >>> attn, mlp = SelfAttention(32, heads=4, qkv_bias=True, qk_norm=True), Mlp(32, 64)
    >>> sorted(k for k in attn.state_dict() if k.endswith("weight"))
    ['k_norm.weight', 'proj.weight', 'q_norm.weight', 'qkv.weight']
    >>> x = torch.randn(2, 5, 32)
    >>> mlp(attn(x, causal=True)).shape
    torch.Size([2, 5, 32])
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Optional

import torch
import torch.nn.functional as F
from torch import nn

from zoo.errors import InputError
from zoo.nn.attention import attention
from zoo.nn.masks import CausalMask, Mask

if TYPE_CHECKING:
    from zoo.sampling.kv_cache import StaticKVCache

__all__ = ["linear", "Linear", "Mlp", "SelfAttention", "split_qkv", "merge_heads", "ScaleRMSNorm", "GeluGLU"]

_SMALL_ROWS = (2, 4)  # rows for which W @ x^T beats x @ W^T on CPU (measured, MKL fp32)


def linear(x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor] = None) -> torch.Tensor:
    """``F.linear(x, weight, bias)``; on CPU, for 2..4 rows and ``out >= in`` features (fp32),
    computed as ``(bias + weight @ x^T)^T`` (about 2x faster there, same math up to rounding).

    Example:
        >>> w, b, x = torch.randn(8, 4), torch.randn(8), torch.randn(2, 4)
        >>> torch.allclose(linear(x, w, b), F.linear(x, w, b), atol=1e-6)
        True
    """
    rows = x.numel() // max(1, x.shape[-1])
    if (
        _SMALL_ROWS[0] <= rows <= _SMALL_ROWS[1]
        and weight.shape[0] >= weight.shape[1]
        and x.device.type == "cpu"
        and x.dtype == torch.float32
        and weight.dtype == torch.float32
    ):
        x2 = x.reshape(rows, x.shape[-1])
        out = torch.mm(weight, x2.t()) if bias is None else torch.addmm(bias[:, None], weight, x2.t())
        return out.t().contiguous().view(*x.shape[:-1], weight.shape[0])
    return F.linear(x, weight, bias)


class Linear(nn.Linear):
    """``nn.Linear`` (same parameters and keys) whose forward is :func:`linear`.

    Example:
        >>> Linear(4, 8)(torch.randn(2, 4)).shape
        torch.Size([2, 8])
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return linear(x, self.weight, self.bias)


class Mlp(nn.Module):
    """``fc2(act(fc1(x)))`` with timm's names (``fc1``, ``fc2``); ``act`` defaults to exact GELU.

    Example:
        >>> Mlp(8, 16)(torch.randn(1, 3, 8)).shape
        torch.Size([1, 3, 8])
    """

    def __init__(self, dim: int, hidden: int, act: Callable[[torch.Tensor], torch.Tensor] = F.gelu, bias: bool = True):
        super().__init__()
        self.fc1 = Linear(dim, hidden, bias=bias)
        self.fc2 = Linear(hidden, dim, bias=bias)
        self.act = act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


def split_qkv(qkv: torch.Tensor, heads: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``[B, n, 3 * D]`` fused projections (q, k, v blocks, timm's layout) -> q, k, v ``[B, H, n, D/H]``.

    Example:
        >>> [t.shape for t in split_qkv(torch.randn(2, 5, 24), heads=2)][0]
        torch.Size([2, 2, 5, 4])
    """
    b, n, _ = qkv.shape
    q, k, v = qkv.view(b, n, 3, heads, -1).permute(2, 0, 3, 1, 4)
    return q, k, v


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    """``[B, H, n, d]`` -> ``[B, n, H * d]``.

    Example:
        >>> merge_heads(torch.randn(2, 3, 5, 4)).shape
        torch.Size([2, 5, 12])
    """
    b, h, n, d = x.shape
    return x.transpose(1, 2).reshape(b, n, h * d)


class SelfAttention(nn.Module):
    """Multi-head self-attention with a fused ``qkv`` projection and ``proj`` output (timm names),
    optional per-head norm on queries and keys (``q_norm``/``k_norm``: ``qk_norm=True`` or
    ``"layer"`` for LayerNorm, ``"rms"`` for a weighted RMS norm in float32), and optional rotary
    embeddings applied after that norm (``forward(..., rope=(cos, sin))``, tables as
    :func:`zoo.nn.rope.rope_tables` makes them, rotated as ``self.rope_rotation`` says).

    ``forward(x, mask=None, causal=False, cache=None, layer=0)``: with a
    :class:`~zoo.sampling.StaticKVCache` the new keys/values are written at ``cache.length`` for
    ``layer`` and attention runs over the filled prefix (the caller advances the cache);
    ``causal=True`` applies a causal mask when more than one query is new (a single decode query
    sees the whole prefix). Attention goes through :func:`zoo.nn.attention.attention` with
    ``self.attn_backend``.

    Example:
        >>> SelfAttention(16, heads=2)(torch.randn(1, 4, 16)).shape
        torch.Size([1, 4, 16])
    """

    def __init__(self, dim: int, heads: int, *, qkv_bias: bool = False, qk_norm: bool | str = False, norm_eps: float = 1e-6,
                 proj_bias: bool = True, rope_rotation: str = "interleaved"):
        super().__init__()
        if dim % heads:
            raise InputError(f"dim {dim} must be divisible by heads {heads}")
        if qk_norm not in (False, True, None, "layer", "rms"):
            raise InputError(f"qk_norm must be False, True/'layer' or 'rms', got {qk_norm!r}")
        self.heads = heads
        self.qkv = Linear(dim, 3 * dim, bias=qkv_bias)
        if qk_norm == "rms":
            self.q_norm = ScaleRMSNorm(dim // heads, weight=True, eps=norm_eps)
            self.k_norm = ScaleRMSNorm(dim // heads, weight=True, eps=norm_eps)
        elif qk_norm:
            self.q_norm = nn.LayerNorm(dim // heads, eps=norm_eps)
            self.k_norm = nn.LayerNorm(dim // heads, eps=norm_eps)
        else:
            self.q_norm = self.k_norm = None
        self.proj = Linear(dim, dim, bias=proj_bias)
        self.rope_rotation = rope_rotation
        self.attn_backend: Optional[str] = None

    def forward(self, x: torch.Tensor, mask: Mask | None = None, *, causal: bool = False,
                cache: StaticKVCache | None = None, layer: int = 0,
                rope: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        q, k, v = split_qkv(self.qkv(x), self.heads)
        if self.q_norm is not None:
            q, k = self.q_norm(q), self.k_norm(k)
        if rope is not None:
            from zoo.nn.rope import apply_rotary

            q, k = apply_rotary(q, *rope, rotation=self.rope_rotation), apply_rotary(k, *rope, rotation=self.rope_rotation)
        if cache is not None:
            k, v = cache.update(layer, k, v)
        if mask is None and causal and x.shape[1] > 1:
            mask = CausalMask()
        return self.proj(merge_heads(attention(q, k, v, mask=mask, backend=self.attn_backend)))


class ScaleRMSNorm(nn.Module):
    """RMS norm computed in float32, with an optional learned scale (FlowAR/xAR's ``RMSNorm``).

    Example:
        >>> import torch
        >>> ScaleRMSNorm(4)(torch.ones(1, 4)).tolist()
        [[0.9999995231628418, 0.9999995231628418, 0.9999995231628418, 0.9999995231628418]]
    """

    def __init__(self, dim: int, weight: bool = False, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim)) if weight else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xf = x.float()
        out = (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)).type_as(x)
        return out if self.weight is None else out * self.weight


class GeluGLU(nn.Module):
    """timm's ``SwiGLU`` built with ``act_layer=nn.GELU`` (FlowAR, xAR): ``fc2(gelu(fc1_g x) * fc1_x x)``.

    Example:
        >>> import torch
        >>> GeluGLU(4, 8)(torch.zeros(2, 4)).shape
        torch.Size([2, 4])
    """

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1_g = nn.Linear(dim, hidden)
        self.fc1_x = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1_g(x)) * self.fc1_x(x))
