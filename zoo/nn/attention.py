"""The one attention entry point every zoo model calls.

Backends:

* ``sdpa`` (default): :func:`torch.nn.functional.scaled_dot_product_attention`.
* ``math``: a readable reference (logits and softmax in float32); the ground truth in tests.
* ``xformers``: opt-in, CUDA only, smoke-tested once before first use. When it is asked for but
  cannot run here (not installed, no CUDA tensors, broken build) zoo warns once with the reason
  and a fix, and runs ``sdpa`` instead.

The backend is chosen, first match wins, by: the ``backend=`` argument (models pass their
``attn_backend`` attribute, set by ``zoo.load(..., attn_backend=...)``), the
:func:`use_backend` context manager, the ``ZOO_ATTN_BACKEND`` environment variable, then ``sdpa``.

Example:
    >>> import torch
    >>> from zoo.nn.attention import attention, use_backend
    >>> from zoo.nn.masks import CausalMask
    >>> q = k = v = torch.randn(2, 4, 8, 16)          # [B, H, L, D]
    >>> out = attention(q, k, v, mask=CausalMask())
    >>> with use_backend("math"):
    ...     ref = attention(q, k, v, mask=CausalMask())
    >>> bool(torch.allclose(out, ref, atol=1e-5))
    True
"""

from __future__ import annotations

import contextlib
import contextvars
import math as _math
import os
import warnings
from dataclasses import dataclass
from typing import Callable, Iterator

import torch
import torch.nn.functional as F

from zoo.errors import ZooError
from zoo.nn.masks import (
    AdditiveBias,
    BlockDiagonalMask,
    CausalMask,
    DenseMask,
    KeyPaddingMask,
    Mask,
    as_additive,
)

__all__ = ["attention", "use_backend", "resolve_backend", "available_backends", "BACKENDS", "set_model_backend"]

ENV_VAR = "ZOO_ATTN_BACKEND"
_context_backend: contextvars.ContextVar[str | None] = contextvars.ContextVar("zoo_attn_backend", default=None)
_warned: set[str] = set()


class AttentionBackendError(ZooError):
    """An unknown backend name, or an input the backend cannot take."""


# --------------------------------------------------------------------------- backends


def _math_attention(q, k, v, mask: Mask | None, scale: float) -> torch.Tensor:
    b, _, lq, _ = q.shape
    lk = k.shape[-2]
    logits = torch.matmul(q.float(), k.float().transpose(-1, -2)) * scale
    bias = as_additive(mask, b, lq, lk, torch.float32, q.device)
    if bias is not None:
        logits = logits + bias
    probs = torch.softmax(logits, dim=-1)
    probs = torch.nan_to_num(probs, nan=0.0)  # rows with every key masked attend to nothing
    return torch.matmul(probs, v.float()).to(q.dtype)


def _sdpa_mask(mask: Mask | None, b: int, lq: int, lk: int, q: torch.Tensor) -> tuple[torch.Tensor | None, bool]:
    """Lower a zoo mask to SDPA's (attn_mask, is_causal)."""
    if mask is None:
        return None, False
    if isinstance(mask, CausalMask):
        if mask._offset(lq, lk) == 0 and lq == lk:
            return None, True
        return mask.to_dense(b, lq, lk, q.device), False
    if isinstance(mask, KeyPaddingMask) and not mask.causal:
        return mask.key_valid(lk, q.device)[:, None, None, :], False  # [B,1,1,Lk], broadcast
    if isinstance(mask, AdditiveBias):
        return mask.bias.to(device=q.device, dtype=q.dtype), False
    if isinstance(mask, DenseMask):
        return mask.mask.to(q.device), False
    return mask.to_dense(b, lq, lk, q.device), False


def _sdpa_attention(q, k, v, mask: Mask | None, scale: float) -> torch.Tensor:
    b, _, lq, _ = q.shape
    attn_mask, is_causal = _sdpa_mask(mask, b, lq, k.shape[-2], q)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, is_causal=is_causal, scale=scale)


def _xformers_bias(mask: Mask | None, b: int, h: int, lq: int, lk: int, q: torch.Tensor):
    from xformers.ops import fmha  # noqa: PLC0415 - optional dependency

    if mask is None:
        return None
    if isinstance(mask, CausalMask) and mask.offset is None:
        return fmha.attn_bias.LowerTriangularFromBottomRightMask()
    if isinstance(mask, BlockDiagonalMask):
        bias = fmha.attn_bias.BlockDiagonalMask.from_seqlens(mask.q_seqlens, mask.k_seqlens)
        return bias.make_causal_from_bottomright() if mask.causal else bias
    # xformers wants a [B, H, Lq, Lk] float bias whose last dim is padded to a multiple of 8.
    dense = as_additive(mask, b, lq, lk, q.dtype, q.device).expand(b, h, lq, lk)
    pad = (-lk) % 8
    storage = torch.zeros(b, h, lq, lk + pad, dtype=q.dtype, device=q.device)
    storage[..., :lk] = dense
    return storage[..., :lk]


def _xformers_attention(q, k, v, mask: Mask | None, scale: float) -> torch.Tensor:
    from xformers.ops import memory_efficient_attention  # noqa: PLC0415 - optional dependency

    b, h, lq, _ = q.shape
    bias = _xformers_bias(mask, b, h, lq, k.shape[-2], q)
    out = memory_efficient_attention(
        q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), attn_bias=bias, scale=scale
    )
    return out.transpose(1, 2)


_xformers_status: tuple[bool, str] | None = None


def _xformers_available(device: torch.device) -> tuple[bool, str]:
    """Import xformers and run one tiny attention on the GPU against ``math`` (cached)."""
    global _xformers_status
    if device.type != "cuda":
        return False, f"xformers kernels need CUDA tensors, these are on {device.type}"
    if _xformers_status is None:
        try:
            import xformers.ops  # noqa: F401, PLC0415

            q = torch.randn(1, 2, 16, 32, device=device, dtype=torch.float16)
            got = _xformers_attention(q, q, q, None, 32**-0.5)
            want = _math_attention(q, q, q, None, 32**-0.5)
            if not torch.allclose(got.float(), want.float(), atol=2e-2):
                raise RuntimeError("smoke test output differs from the math backend")
            _xformers_status = (True, "ok")
        except ImportError:
            _xformers_status = (False, "xformers is not installed; `pip install 'zoo[xformers]'`")
        except Exception as exc:  # a broken build: report it, never hide it
            _xformers_status = (False, f"xformers is installed but broken ({type(exc).__name__}: {exc}); "
                                "install a build matching your torch and CUDA")
    return _xformers_status


@dataclass(frozen=True)
class Backend:
    """One attention implementation and how to tell whether it can run on a device."""

    name: str
    run: Callable[..., torch.Tensor]
    available: Callable[[torch.device], tuple[bool, str]]
    description: str


BACKENDS: dict[str, Backend] = {
    "sdpa": Backend("sdpa", _sdpa_attention, lambda d: (True, "ok"), "torch scaled_dot_product_attention (default)"),
    "math": Backend("math", _math_attention, lambda d: (True, "ok"), "explicit float32 softmax(QK^T)V reference"),
    "xformers": Backend("xformers", _xformers_attention, _xformers_available, "xformers memory_efficient_attention (CUDA, opt-in)"),
}


# --------------------------------------------------------------------------- selection


def _check_name(name: str, source: str) -> str:
    if name not in BACKENDS:
        raise AttentionBackendError(
            f"unknown attention backend {name!r} (from {source}); choose one of {sorted(BACKENDS)}"
        )
    return name


def requested_backend(backend: str | None = None) -> str:
    """The backend name asked for, by argument, context manager, env var, or the default."""
    if backend is not None:
        return _check_name(backend, "the backend argument")
    ctx = _context_backend.get()
    if ctx is not None:
        return ctx
    env = os.environ.get(ENV_VAR)
    if env:
        return _check_name(env, f"${ENV_VAR}")
    return "sdpa"


def resolve_backend(backend: str | None = None, device: torch.device | str = "cpu") -> str:
    """The backend that will actually run for tensors on ``device``.

    Example:
        >>> resolve_backend("math")
        'math'
        >>> import warnings
        >>> with warnings.catch_warnings():
        ...     warnings.simplefilter("ignore")
        ...     resolve_backend("xformers", "cpu")   # no CUDA here: falls back
        'sdpa'
    """
    name = requested_backend(backend)
    ok, reason = BACKENDS[name].available(torch.device(device))
    if ok:
        return name
    key = f"{name}:{reason}"
    if key not in _warned:
        _warned.add(key)
        warnings.warn(f"attention backend {name!r} unavailable: {reason}. Using 'sdpa'.", RuntimeWarning, stacklevel=3)
    return "sdpa"


@contextlib.contextmanager
def use_backend(name: str) -> Iterator[None]:
    """Run attention calls that do not name a backend with ``name`` inside the block.

    Example:
        >>> with use_backend("math"):
        ...     pass
    """
    token = _context_backend.set(_check_name(name, "use_backend()"))
    try:
        yield
    finally:
        _context_backend.reset(token)


def available_backends(device: torch.device | str = "cpu") -> dict[str, str]:
    """``{backend: "ok" | reason it cannot run}`` for ``device`` (used by ``zoo doctor``)."""
    return {name: b.available(torch.device(device))[1] for name, b in BACKENDS.items()}


def set_model_backend(model: torch.nn.Module, backend: str | None) -> int:
    """Set ``attn_backend`` on every submodule that has one; returns how many were set."""
    if backend is not None:
        _check_name(backend, "attn_backend")
    n = 0
    for module in model.modules():
        if hasattr(module, "attn_backend"):
            module.attn_backend = backend
            n += 1
    return n


# --------------------------------------------------------------------------- entry point


def attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    mask: Mask | None = None,
    scale: float | None = None,
    backend: str | None = None,
) -> torch.Tensor:
    """Multi-head attention ``softmax(q kᵀ · scale + mask) v`` on ``[B, H, L, D]`` tensors.

    ``k``/``v`` may have fewer heads than ``q`` (grouped-query attention) if the count divides.
    ``scale`` defaults to ``1/sqrt(D)``. Returns ``[B, H, Lq, Dv]`` in ``q``'s dtype.

    Example:
        >>> import torch
        >>> q = torch.randn(1, 2, 5, 8)
        >>> attention(q, q, q).shape
        torch.Size([1, 2, 5, 8])
    """
    if q.dim() != 4 or k.dim() != 4 or v.dim() != 4:
        raise AttentionBackendError(
            f"attention expects [B, H, L, D] tensors, got q{tuple(q.shape)} k{tuple(k.shape)} v{tuple(v.shape)}"
        )
    b, h, lq, d = q.shape
    if k.shape[0] != b or k.shape[-1] != d or k.shape[:3] != v.shape[:3]:
        raise AttentionBackendError(f"attention shapes do not match: q{tuple(q.shape)} k{tuple(k.shape)} v{tuple(v.shape)}")
    if k.shape[1] != h:
        if h % k.shape[1]:
            raise AttentionBackendError(f"{h} query heads cannot share {k.shape[1]} key/value heads")
        rep = h // k.shape[1]
        k, v = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
    if mask is not None:
        mask.check(b, lq, k.shape[-2])
    scale = 1.0 / _math.sqrt(d) if scale is None else scale
    name = resolve_backend(backend, q.device)
    return BACKENDS[name].run(q, k, v, mask, scale)
