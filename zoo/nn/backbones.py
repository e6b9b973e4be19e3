"""Frozen vision backbones built from config, offline (no download, no TorchScript, no network
call in any constructor); the checkpoint that embeds them supplies the weights.

* :class:`OpenAICLIPVisual` — OpenAI CLIP's ``VisionTransformer`` (ViT-B/16: width 768, 12
  layers, 12 heads, patch 16, 224 px) in OpenAI's key layout (``conv1``, ``class_embedding``,
  ``positional_embedding``, ``ln_pre``, ``transformer.resblocks.{i}.attn.in_proj_weight`` ...,
  ``ln_post``), QuickGELU MLPs. ``forward`` returns ``ln_post`` of the patch tokens (the
  projection ``proj`` is not part of it, as in TokenFlow which deletes it); other input sizes
  interpolate the positional embedding as DINO/CLIP code does (bicubic with the ``+0.1``
  scale-factor trick, bit-compatible with the reference).
* :func:`siglip_vision` — ``transformers.SiglipVisionModel`` from a ``SiglipVisionConfig`` built
  from keyword arguments (defaults: SigLIP so400m/14 at 384 px), never ``from_pretrained``.

Example:
    >>> import torch
    >>> clip = OpenAICLIPVisual(width=64, layers=2, heads=2, patch_size=8, image_size=32).eval()
    >>> clip(torch.randn(1, 3, 32, 32)).shape, clip(torch.randn(1, 3, 40, 40)).shape
    (torch.Size([1, 16, 64]), torch.Size([1, 25, 64]))
"""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from zoo.errors import ConfigError, PluginError

__all__ = ["OpenAICLIPVisual", "SIGLIP_SO400M_384", "interpolate_position_embedding", "siglip_vision"]


def interpolate_position_embedding(pos: torch.Tensor, w: int, h: int, patch_size: int) -> torch.Tensor:
    """A ViT's ``[1 + N, D]`` (class + square grid) position embedding for a ``w x h`` input: unchanged
    when the grid fits, else the grid resized bicubically by the DINO/CLIP/BEiT recipe
    (``scale_factor = (w/patch + 0.1) / sqrt(N)``, which the released weights were used with).

    Example:
        >>> interpolate_position_embedding(torch.zeros(1 + 16, 8), 40, 40, 8).shape
        torch.Size([26, 8])
    """
    n_ref = pos.shape[0] - 1
    n = (w // patch_size) * (h // patch_size)
    if n == n_ref and w == h:
        return pos
    side = int(math.sqrt(n_ref))
    w0, h0 = w // patch_size + 0.1, h // patch_size + 0.1
    grid = pos[1:].reshape(1, side, side, -1).permute(0, 3, 1, 2)
    grid = F.interpolate(grid, scale_factor=(w0 / math.sqrt(n_ref), h0 / math.sqrt(n_ref)), mode="bicubic")
    return torch.cat([pos[:1], grid.permute(0, 2, 3, 1).reshape(-1, pos.shape[-1])], dim=0)


class _QuickGELU(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(1.702 * x)


class _ResidualAttentionBlock(nn.Module):
    def __init__(self, width: int, heads: int):
        super().__init__()
        self.attn = nn.MultiheadAttention(width, heads, batch_first=True)
        self.ln_1 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(OrderedDict([("c_fc", nn.Linear(width, width * 4)), ("gelu", _QuickGELU()),
                                              ("c_proj", nn.Linear(width * 4, width))]))
        self.ln_2 = nn.LayerNorm(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.ln_1(x)
        x = x + self.attn(h, h, h, need_weights=False)[0]
        return x + self.mlp(self.ln_2(x))


class _Transformer(nn.Module):
    def __init__(self, width: int, layers: int, heads: int):
        super().__init__()
        self.resblocks = nn.Sequential(*[_ResidualAttentionBlock(width, heads) for _ in range(layers)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.resblocks(x)


class OpenAICLIPVisual(nn.Module):
    """OpenAI CLIP's vision tower without the output projection -> patch tokens ``[B, N, width]``."""

    def __init__(self, *, width: int = 768, layers: int = 12, heads: int = 12, patch_size: int = 16,
                 image_size: int = 224):
        super().__init__()
        if width % heads or image_size % patch_size:
            raise ConfigError(f"CLIP visual: width {width} must divide by heads {heads} and image_size {image_size} "
                              f"by patch_size {patch_size}")
        self.patch_size, self.image_size, self.width = int(patch_size), int(image_size), int(width)
        self.conv1 = nn.Conv2d(3, width, kernel_size=patch_size, stride=patch_size, bias=False)
        self.class_embedding = nn.Parameter(torch.zeros(width))
        self.positional_embedding = nn.Parameter(torch.zeros((image_size // patch_size) ** 2 + 1, width))
        self.ln_pre = nn.LayerNorm(width)
        self.transformer = _Transformer(width, layers, heads)
        self.ln_post = nn.LayerNorm(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, w, h = x.shape
        x = self.conv1(x).flatten(2).transpose(1, 2)
        cls = self.class_embedding.to(x.dtype).expand(b, 1, -1)
        x = torch.cat([cls, x], dim=1)
        x = x + interpolate_position_embedding(self.positional_embedding, w, h, self.patch_size).to(x.dtype)
        x = self.transformer(self.ln_pre(x))
        return self.ln_post(x[:, 1:])


#: SigLIP so400m/14 at 384 px (``google/siglip-so400m-patch14-384``'s vision config).
SIGLIP_SO400M_384: dict[str, Any] = dict(hidden_size=1152, intermediate_size=4304, num_hidden_layers=27,
                                         num_attention_heads=16, image_size=384, patch_size=14,
                                         hidden_act="gelu_pytorch_tanh", layer_norm_eps=1e-6)


def siglip_vision(**overrides: Any) -> nn.Module:
    """``transformers.SiglipVisionModel`` built from ``SiglipVisionConfig(**SIGLIP_SO400M_384 | overrides)``
    with random weights (no download); keys ``vision_model.*``.

    Example:
        >>> m = siglip_vision(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        ...                   num_attention_heads=2, image_size=28)            # doctest: +SKIP
    """
    try:
        from zoo.compat.torchvision import ensure_torchvision

        ensure_torchvision()
        from transformers import SiglipVisionConfig, SiglipVisionModel
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise PluginError("the SigLIP backbone needs transformers: pip install 'zoo[transformers]' "
                                     f"(or pip install transformers) ({exc})") from exc
    cfg = SiglipVisionConfig(**{**SIGLIP_SO400M_384, **overrides})
    cfg._attn_implementation = "sdpa"
    return SiglipVisionModel(cfg)
