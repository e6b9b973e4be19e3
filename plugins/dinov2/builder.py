"""The ``dinov2`` builder: ``dinov2_vit*14[_reg4]_pretrain.pth`` -> :class:`DINOv2Features`.

The release is a weights-only pickle of the state dict in facebookresearch/dinov2's key layout,
loaded unchanged and strictly into :class:`zoo.nn.backbones.DINOv2` (under ``backbone.``).

Example:
    >>> DINOv2Builder().name
    'dinov2'
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from zoo.builders import Checkpoint, CheckpointFiles, ModelBuilder
from zoo.errors import CheckpointError, ConfigError, TokenError
from zoo.model import ZooModel
from zoo.nn.backbones import DINOv2

__all__ = ["DINOv2Builder", "DINOv2Config", "DINOv2Features"]

_MEAN, _STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


@dataclass
class DINOv2Config:
    """A released DINOv2 (defaults: ViT-B/14 with 4 registers) and the input size it is used at."""

    embed_dim: int = 768
    depth: int = 12
    heads: int = 12
    num_register_tokens: int = 4
    patch_size: int = 14
    pos_grid: int = 37
    image_size: int = 224

    def __post_init__(self) -> None:
        if self.image_size % self.patch_size:
            raise ConfigError(f"image_size {self.image_size} must be a multiple of patch_size {self.patch_size}")


class DINOv2Features(ZooModel, nn.Module):
    """``encode(images in [-1, 1]) -> Latents`` of final-normed patch features ``[B, N, D]``
    (ImageNet mean/std applied to ``(x + 1) / 2``, as DINOv2 was trained); no decoder.

    Example:
        >>> m = DINOv2Features(DINOv2Config(embed_dim=32, depth=2, heads=2, pos_grid=4, image_size=56)).eval()
        >>> m.encode(torch.rand(1, 3, 56, 56) * 2 - 1).values.shape
        torch.Size([1, 16, 32])
    """

    def __init__(self, config: DINOv2Config):
        super().__init__()
        self.config = c = config
        self.backbone = DINOv2(embed_dim=c.embed_dim, depth=c.depth, heads=c.heads, patch_size=c.patch_size,
                               num_register_tokens=c.num_register_tokens, pos_grid=c.pos_grid)
        self.register_buffer("mean", torch.tensor(_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_STD).view(1, 3, 1, 1), persistent=False)

    @property
    def image_size(self) -> int:
        return int(self.config.image_size)

    default_name = "dinov2"

    @torch.no_grad()
    def encode(self, images: torch.Tensor):
        """Images ``[B, 3, H, W]`` in [-1, 1] (sides multiples of 14) -> :class:`zoo.interfaces.Latents` ``[B, N, D]``."""
        from zoo.interfaces import Latents
        from zoo.media.image import check_images

        check_images(images, multiple_of=self.config.patch_size, model=self.name)
        p = self.backbone.pos_embed
        x = images.to(device=p.device, dtype=p.dtype)
        x = ((x + 1.0) / 2.0 - self.mean.to(x.dtype)) / self.std.to(x.dtype)
        h, w = x.shape[-2:]
        grid = (h // self.config.patch_size, w // self.config.patch_size)
        return Latents(values=self.backbone(x), tokenizer=self.name, meta={"grid": grid})

    def decode(self, tokens: Any, **kwargs: Any) -> torch.Tensor:
        """DINOv2 is an encoder only: there is nothing to decode."""
        raise TokenError(f"{self.name} is a feature extractor (an encoder without a decoder): encode() gives "
                         "patch features; it cannot turn them back into images")


class DINOv2Builder(ModelBuilder):
    """Builds the ``dinov2.*`` cards from the facebookresearch ``.pth`` releases."""

    name = "dinov2"
    config_class = DINOv2Config

    def read_checkpoint(self, files: CheckpointFiles) -> Checkpoint:
        from zoo.weights import load_weights_file

        state, _ = load_weights_file(files.primary)
        if not isinstance(state, Mapping) or "cls_token" not in state or "pos_embed" not in state:
            got = sorted(state)[:6] if isinstance(state, Mapping) else type(state).__name__
            raise CheckpointError(f"{files.primary} is not a DINOv2 checkpoint (facebookresearch layout: cls_token, "
                                  f"pos_embed, blocks.*), got {got}")
        return Checkpoint(state_dict=dict(state))

    def build(self, config: DINOv2Config):
        return DINOv2Features(config)

    def convert(self, state_dict: Mapping[str, Any], config: DINOv2Config) -> Mapping[str, Any]:
        return {f"backbone.{k}": v for k, v in state_dict.items()}
