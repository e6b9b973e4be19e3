"""One pre-norm transformer block family for ViT autoencoders (ViTok-v2, Instella-T2I's BAE,
MingTok, DINOv2-style encoders): every variation the releases use is a field of
:class:`BlockConfig`, and every block runs on zoo's attention entry point.

* norm: ``"layer"`` (LayerNorm, optional affine) or ``"rms"`` (weighted RMS norm in float32);
* MLP: ``"gelu"`` (timm ``Mlp``: ``fc1``/``fc2``) or ``"swiglu"`` (:class:`SwiGLU`: one fused
  ``fc1`` giving ``[value | gate]`` and ``fc2``; releases that store ``gate``/``up`` or
  ``w12``/``w3`` separately are concatenated by their converters);
* qk-norm: ``None``, ``"layer"`` or ``"rms"`` per head; RoPE tables passed to ``forward`` are
  applied after it (:mod:`zoo.nn.rope`: 1-D, 2-D axial, Flux 3-axis; interleaved or half rotation);
* LayerScale (``gamma``) on each branch (serial) or on the sum (parallel);
* serial (``x + attn(n1(x))`` then ``x + mlp(n2(x))``) or parallel (``x + ls(attn(n(x)) + mlp(n(x)))``,
  one norm, ViTok-v2);
* masks: any :mod:`zoo.nn.masks` mask (key padding for NaFlex batches) or ``causal=True``.

Canonical keys: ``norm1``, ``attn.qkv``, ``attn.q_norm``, ``attn.k_norm``, ``attn.proj``,
``norm2`` (serial only), ``mlp.fc1``, ``mlp.fc2``, ``ls1.gamma``/``ls2.gamma`` (serial) or
``ls.gamma`` (parallel). :func:`block_key_map` renames a release's block keys onto them.

Example:
    >>> import torch
    >>> from zoo.nn.rope import grid_positions, rope_tables
    >>> cfg = BlockConfig(dim=32, heads=4, mlp_hidden=48, norm="rms", mlp="swiglu", qk_norm="rms",
    ...                   layer_scale=True, parallel=True, qkv_bias=False, proj_bias=False, mlp_bias=False)
    >>> block = PreNormBlock(cfg).eval()
    >>> sorted(block.state_dict())
    ['attn.k_norm.weight', 'attn.proj.weight', 'attn.q_norm.weight', 'attn.qkv.weight', 'ls.gamma', 'mlp.fc1.weight', 'mlp.fc2.weight', 'norm1.weight']
    >>> rope = rope_tables(grid_positions(2, 3), axes_dims=[4, 4])
    >>> block(torch.randn(2, 6, 32), rope=rope).shape
    torch.Size([2, 6, 32])
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Mapping, Optional

import torch
import torch.nn.functional as F
from torch import nn

from zoo.errors import ConfigError
from zoo.nn.blocks import Linear, Mlp, ScaleRMSNorm, SelfAttention
from zoo.nn.masks import Mask

__all__ = ["BlockConfig", "PreNormBlock", "SwiGLU", "LayerScale", "make_norm", "block_key_map", "rename_keys"]


@dataclass(frozen=True)
class BlockConfig:
    """Everything that tells one pre-norm block from another (see the module doc)."""

    dim: int
    heads: int
    mlp_hidden: int
    norm: Literal["layer", "rms"] = "layer"
    norm_eps: float = 1e-6
    norm_affine: bool = True
    mlp: Literal["gelu", "swiglu"] = "gelu"
    mlp_bias: bool = True
    qkv_bias: bool = False
    proj_bias: bool = True
    qk_norm: Optional[Literal["layer", "rms"]] = None
    qk_norm_eps: float = 1e-6
    layer_scale: bool = False
    parallel: bool = False
    rope_rotation: Literal["interleaved", "half"] = "interleaved"

    def __post_init__(self) -> None:
        if self.dim % self.heads:
            raise ConfigError(f"block width {self.dim} is not divisible by {self.heads} heads")
        for name, value, allowed in (("norm", self.norm, ("layer", "rms")), ("mlp", self.mlp, ("gelu", "swiglu")),
                                     ("qk_norm", self.qk_norm, (None, "layer", "rms")),
                                     ("rope_rotation", self.rope_rotation, ("interleaved", "half"))):
            if value not in allowed:
                raise ConfigError(f"BlockConfig.{name} must be one of {allowed}, got {value!r}")

    @property
    def head_dim(self) -> int:
        return self.dim // self.heads


def make_norm(kind: str, dim: int, eps: float = 1e-6, affine: bool = True) -> nn.Module:
    """``"layer"`` -> ``nn.LayerNorm``; ``"rms"`` -> :class:`~zoo.nn.blocks.ScaleRMSNorm` (weight ``weight``).

    Example:
        >>> type(make_norm("rms", 8)).__name__, type(make_norm("layer", 8)).__name__
        ('ScaleRMSNorm', 'LayerNorm')
    """
    if kind == "rms":
        return ScaleRMSNorm(dim, weight=affine, eps=eps)
    return nn.LayerNorm(dim, eps=eps, elementwise_affine=affine)


class SwiGLU(nn.Module):
    """``fc2(silu(gate) * value)`` with ``[value | gate] = fc1(x)`` (one fused projection).

    Example:
        >>> SwiGLU(8, 16)(torch.randn(2, 3, 8)).shape
        torch.Size([2, 3, 8])
    """

    def __init__(self, dim: int, hidden: int, bias: bool = False):
        super().__init__()
        self.hidden = hidden
        self.fc1 = Linear(dim, 2 * hidden, bias=bias)
        self.fc2 = Linear(hidden, dim, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        value, gate = self.fc1(x).chunk(2, dim=-1)
        return self.fc2(F.silu(gate) * value)


class LayerScale(nn.Module):
    """``x * gamma`` (a learned per-channel scale; key ``gamma``)."""

    def __init__(self, dim: int, init: float = 1e-5):
        super().__init__()
        self.gamma = nn.Parameter(torch.full((dim,), float(init)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma


class PreNormBlock(nn.Module):
    """A pre-norm transformer block configured by :class:`BlockConfig` (see the module doc).

    ``forward(x, rope=None, mask=None, causal=False)``: ``rope`` is ``(cos, sin)`` ``[N, head_dim]``
    or ``[B, N, head_dim]``; ``mask`` any :mod:`zoo.nn.masks` mask.
    """

    def __init__(self, cfg: BlockConfig):
        super().__init__()
        self.cfg = cfg
        self.norm1 = make_norm(cfg.norm, cfg.dim, cfg.norm_eps, cfg.norm_affine)
        self.attn = SelfAttention(cfg.dim, cfg.heads, qkv_bias=cfg.qkv_bias, qk_norm=cfg.qk_norm or False,
                                  norm_eps=cfg.qk_norm_eps, proj_bias=cfg.proj_bias, rope_rotation=cfg.rope_rotation)
        if not cfg.parallel:
            self.norm2 = make_norm(cfg.norm, cfg.dim, cfg.norm_eps, cfg.norm_affine)
        if cfg.mlp == "swiglu":
            self.mlp = SwiGLU(cfg.dim, cfg.mlp_hidden, bias=cfg.mlp_bias)
        else:
            self.mlp = Mlp(cfg.dim, cfg.mlp_hidden, bias=cfg.mlp_bias)
        if cfg.layer_scale and cfg.parallel:
            self.ls = LayerScale(cfg.dim)
        elif cfg.layer_scale:
            self.ls1, self.ls2 = LayerScale(cfg.dim), LayerScale(cfg.dim)

    def forward(self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor] | None = None,
                mask: Mask | None = None, causal: bool = False) -> torch.Tensor:
        cfg = self.cfg
        if cfg.parallel:
            h = self.norm1(x)
            out = self.attn(h, mask, causal=causal, rope=rope) + self.mlp(h)
            return x + (self.ls(out) if cfg.layer_scale else out)
        a = self.attn(self.norm1(x), mask, causal=causal, rope=rope)
        x = x + (self.ls1(a) if cfg.layer_scale else a)
        m = self.mlp(self.norm2(x))
        return x + (self.ls2(m) if cfg.layer_scale else m)


def block_key_map(**names: str) -> dict[str, str]:
    """A release's block-relative key stems -> the canonical ones, e.g.
    ``block_key_map(norm1="input_layernorm", norm2="post_attention_layernorm")``; stems not named
    keep their canonical name.

    Example:
        >>> block_key_map(ls="layer_scale")["layer_scale"]
        'ls'
    """
    canonical = ("norm1", "attn.qkv", "attn.q_norm", "attn.k_norm", "attn.proj", "norm2", "mlp.fc1", "mlp.fc2",
                 "ls", "ls1", "ls2")
    unknown = set(names) - {c.replace(".", "_") for c in canonical}
    if unknown:
        raise ConfigError(f"block_key_map: unknown canonical stems {sorted(unknown)}")
    return {names.get(c.replace(".", "_"), c): c for c in canonical}


def rename_keys(state: Mapping[str, object], prefix_map: Mapping[str, str]) -> dict[str, object]:
    """Rename keys by their longest matching prefix in ``prefix_map`` (``{old_prefix: new_prefix}``);
    keys with no matching prefix are kept.

    Example:
        >>> rename_keys({"a.b.w": 1, "c": 2}, {"a.b.": "x."})
        {'x.w': 1, 'c': 2}
    """
    order = sorted(prefix_map, key=len, reverse=True)
    out = {}
    for key, value in state.items():
        for old in order:
            if key.startswith(old):
                key = prefix_map[old] + key[len(old):]
                break
        out[key] = value
    return out
