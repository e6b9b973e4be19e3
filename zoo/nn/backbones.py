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
* :class:`DINOv2` — DINOv2 (optionally with registers) in facebookresearch/dinov2's key layout
  (``cls_token``, ``pos_embed`` ``[1, 1 + 37*37, D]``, ``register_tokens``, ``mask_token``,
  ``patch_embed.proj``, ``blocks.{i}`` = timm ``Block`` with LayerScale, ``norm``), so
  ``dinov2_vit{b,l}14[_reg4]_pretrain.pth`` load unchanged with ``strict=True``; presets in
  :data:`DINOV2_CONFIGS`; :meth:`DINOv2.get_intermediate_layers` is the reference's (the output of
  block ``depth - n`` for an int ``n``, final-normed, class and register tokens dropped).
* :func:`vitamin` — a timm ViTamin (``timm.create_model(name, pretrained=False, ...)``: never a
  download), e.g. ``vitamin_large_256`` (MedITok's encoder family).

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

__all__ = ["DINOV2_CONFIGS", "DINOv2", "OpenAICLIPVisual", "SIGLIP_SO400M_384", "interpolate_position_embedding",
           "siglip_vision", "vitamin"]


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


def _timm():
    try:
        from zoo.compat.torchvision import ensure_torchvision

        ensure_torchvision()
        import timm
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise PluginError(f"this backbone is built from timm classes: pip install 'zoo[timm]' (or pip install timm) ({exc})") from exc
    return timm


#: The released DINOv2 ViT-B/14 and ViT-L/14, with and without 4 registers (facebookresearch/dinov2
#: ``hubconf``: img_size 518 -> a 37x37 position grid, patch 14, LayerScale, MLP FFN).
DINOV2_CONFIGS: dict[str, dict[str, int]] = {
    "vitb14": dict(embed_dim=768, depth=12, heads=12, num_register_tokens=0),
    "vitb14_reg4": dict(embed_dim=768, depth=12, heads=12, num_register_tokens=4),
    "vitl14": dict(embed_dim=1024, depth=24, heads=16, num_register_tokens=0),
    "vitl14_reg4": dict(embed_dim=1024, depth=24, heads=16, num_register_tokens=4),
}


class DINOv2(nn.Module):
    """DINOv2 ViT (``DinoVisionTransformer`` with ``ffn_layer="mlp"``, ``block_chunks=0``) from config.

    Tokens are ``[cls, registers, patches]``; the position embedding (class + ``pos_grid``-square
    grid) is added before the registers are inserted and is resized for other inputs by the
    reference's recipe (bicubic, ``scale_factor = (side + 0.1) / pos_grid``, no antialias).

    Example:
        >>> m = DINOv2(embed_dim=32, depth=3, heads=2, num_register_tokens=4, pos_grid=4).eval()
        >>> x = torch.randn(2, 3, 28, 28)
        >>> [t.shape for t in m.get_intermediate_layers(x, 2)]     # the last 2 blocks' outputs, normed
        [torch.Size([2, 4, 32]), torch.Size([2, 4, 32])]
        >>> [t.shape for t in m.get_intermediate_layers(x, [1])]   # block 1 only (DiGIT's "layer 2")
        [torch.Size([2, 4, 32])]
        >>> sorted(k for k in m.state_dict() if not k.startswith("blocks."))[:4]
        ['cls_token', 'mask_token', 'norm.bias', 'norm.weight']
    """

    def __init__(self, *, embed_dim: int = 768, depth: int = 12, heads: int = 12, patch_size: int = 14,
                 num_register_tokens: int = 4, pos_grid: int = 37, mlp_ratio: float = 4.0,
                 layerscale_init: float = 1.0, interpolate_offset: float = 0.1):
        super().__init__()
        if embed_dim % heads or min(depth, patch_size, pos_grid) < 1 or num_register_tokens < 0:
            raise ConfigError(f"DINOv2: embed_dim {embed_dim} must divide by heads {heads}; depth, patch_size and "
                              f"pos_grid must be >= 1 and num_register_tokens >= 0")
        timm = _timm()
        from functools import partial

        from timm.layers import PatchEmbed
        from timm.models.vision_transformer import Block

        self.embed_dim, self.depth, self.patch_size = int(embed_dim), int(depth), int(patch_size)
        self.num_register_tokens, self.pos_grid = int(num_register_tokens), int(pos_grid)
        self.interpolate_offset = float(interpolate_offset)
        del timm
        self.patch_embed = PatchEmbed(img_size=pos_grid * patch_size, patch_size=patch_size, embed_dim=embed_dim,
                                      strict_img_size=False)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + pos_grid * pos_grid, embed_dim))
        self.register_tokens = nn.Parameter(torch.zeros(1, num_register_tokens, embed_dim)) if num_register_tokens else None
        norm = partial(nn.LayerNorm, eps=1e-6)
        self.blocks = nn.ModuleList([Block(embed_dim, heads, mlp_ratio=mlp_ratio, qkv_bias=True, init_values=layerscale_init,
                                           norm_layer=norm) for _ in range(depth)])
        self.norm = norm(embed_dim)
        self.mask_token = nn.Parameter(torch.zeros(1, embed_dim))  # in the release; used only for masked training

    def position_embedding(self, h: int, w: int) -> torch.Tensor:
        """The ``[1, 1 + (h/p)(w/p), D]`` position embedding for an ``h x w`` input (the reference's
        ``interpolate_pos_encoding``, computed in float32)."""
        if h == w and h // self.patch_size == self.pos_grid:
            return self.pos_embed
        pos = interpolate_position_embedding(self.pos_embed[0].float(), h, w, self.patch_size)
        if pos.shape[0] != 1 + (h // self.patch_size) * (w // self.patch_size):  # pragma: no cover - offset guards
            raise ConfigError(f"DINOv2 position grid resized to {pos.shape[0] - 1} cells for a {h}x{w} input")
        return pos[None].to(self.pos_embed.dtype)

    def prepare_tokens(self, x: torch.Tensor) -> torch.Tensor:
        """Images ``[B, 3, H, W]`` (H, W multiples of the patch) -> ``[B, 1 + R + N, D]`` before the blocks."""
        b, _, h, w = x.shape
        if h % self.patch_size or w % self.patch_size:
            raise ConfigError(f"DINOv2 needs height and width divisible by the patch size {self.patch_size}, got {h}x{w}")
        t = self.patch_embed(x)
        t = torch.cat([self.cls_token.to(t.dtype).expand(b, -1, -1), t], dim=1)
        t = t + self.position_embedding(h, w).to(t.dtype)
        if self.register_tokens is not None:
            t = torch.cat([t[:, :1], self.register_tokens.to(t.dtype).expand(b, -1, -1), t[:, 1:]], dim=1)
        return t

    def get_intermediate_layers(self, x: torch.Tensor, n: int | list[int] = 1, *, norm: bool = True,
                                return_class_token: bool = False):
        """The outputs of blocks ``range(depth - n, depth)`` (an int ``n``) or of the listed block
        indices, each ``[B, N_patches, D]`` (final ``norm`` applied when ``norm``), in block order;
        with ``return_class_token`` pairs ``(patches, cls)``. Blocks past the last one asked for
        are not run.

        With an int ``n`` the DiGIT/Hita copies of this method stop after the *first* block taken
        (``depth - n``): ask for ``[depth - n]`` to get that.
        """
        take = list(range(self.depth - n, self.depth)) if isinstance(n, int) else [int(i) for i in n]
        if not take or min(take) < 0 or max(take) >= self.depth:
            raise ConfigError(f"DINOv2 has blocks 0..{self.depth - 1}; asked for {n!r}")
        t = self.prepare_tokens(x)
        outs = []
        for i, blk in enumerate(self.blocks[: max(take) + 1]):
            t = blk(t)
            if i in take:
                outs.append(self.norm(t) if norm else t)
        skip = 1 + self.num_register_tokens
        if return_class_token:
            return tuple((o[:, skip:], o[:, 0]) for o in outs)
        return tuple(o[:, skip:] for o in outs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Final-normed patch tokens ``[B, N, D]`` (``x_norm_patchtokens``)."""
        return self.get_intermediate_layers(x, 1)[0]


def vitamin(name: str = "vitamin_large_256", **overrides: Any) -> nn.Module:
    """The timm ViTamin ``name`` built with random weights (``pretrained=False``; timm never downloads
    then), ``overrides`` passed to ``timm.create_model`` (MedITok: ``patch_size=1``, ``pos_embed='none'``,
    ``class_token=False``, ``global_pool=''``, ``num_classes=0``, ...).

    Example:
        >>> m = vitamin("vitamin_small_224", num_classes=0, depth=1)
        >>> m(torch.randn(1, 3, 224, 224)).shape
        torch.Size([1, 384])
    """
    timm = _timm()
    if not name.startswith("vitamin_") or name not in timm.list_models("vitamin_*"):
        raise ConfigError(f"{name!r} is not a timm ViTamin; choose one of {timm.list_models('vitamin_*')}")
    return timm.create_model(name, pretrained=False, **overrides)
