"""DiGIT's tokenizer (DAMO-NLP-SG/DiGIT ``STTransformerLanguageModel.prepare_semantic``).

Encode, as the reference does in eval mode:

1. images in [-1, 1] -> ``x01 = (x + 1) / 2`` -> ImageNet mean/std normalisation;
2. a 256 px input is resized bicubically with ``scale_factor = 224 / 256`` (after normalising, as the
   reference does); a 224 px input goes as it is;
3. DINOv2-reg4 (:class:`zoo.nn.backbones.DINOv2`) up to block ``depth - layer`` (block 9 of 12 for
   ViT-B, 21 of 24 for ViT-L), final LayerNorm, class and register tokens dropped -> ``[B, 256, D]``;
4. the id of the nearest k-means centroid (:class:`zoo.nn.kmeans.KMeansCodebook`, squared
   Euclidean distance) -> ids ``[B, 256]`` (a 16x16 grid, row-major).

The ids are the raw centroid indices: the reference's GPT adds fairseq's 4 special symbols
(``+ nspecial``) on top; zoo does not. There is no decoder: DiGIT generates pixels with a second
model (a VQGAN-token AR or NAR stage conditioned on these ids), which is not released as a
tokenizer; :meth:`DiGIT.decode` says so.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from zoo.errors import TokenError
from zoo.model import ZooModel
from zoo.nn.backbones import DINOv2
from zoo.nn.kmeans import KMeansCodebook

from .config import DiGITConfig

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "DiGIT"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class DiGIT(ZooModel, nn.Module):
    """DiGIT's discriminative tokenizer: ``encode(images) -> Tokens``; ``decode`` refuses.

    Example:
        >>> cfg = DiGITConfig(embed_dim=32, depth=3, heads=2, pos_grid=4, layer=1, num_centroids=16,
        ...                   image_size=56, backbone_size=56)
        >>> tok = DiGIT(cfg).eval()
        >>> tok.encode(torch.rand(2, 3, 56, 56) * 2 - 1).ids.shape
        torch.Size([2, 16])
    """

    def __init__(self, config: DiGITConfig):
        super().__init__()
        self.config = c = config
        self.encoder = DINOv2(embed_dim=c.embed_dim, depth=c.depth, heads=c.heads, patch_size=c.patch_size,
                              num_register_tokens=c.num_register_tokens, pos_grid=c.pos_grid)
        self.kmeans = KMeansCodebook.empty(c.num_centroids, c.embed_dim)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    # ------------------------------------------------------------------ facts
    @property
    def codebook_size(self) -> int:
        return int(self.config.num_centroids)

    @property
    def image_size(self) -> int:
        """The resolution the model takes (``zoo tokenize`` resizes to it)."""
        return int(self.config.image_size)

    @property
    def num_tokens(self) -> int:
        return self.config.grid ** 2

    default_name = "digit"

    # ------------------------------------------------------------------ stages
    def _check_images(self, images: Any) -> torch.Tensor:
        from zoo.errors import MediaError
        from zoo.media.image import check_images

        c = self.config
        check_images(images, multiple_of=1, model=self.name)
        h, w = images.shape[-2:]
        if (h, w) not in ((c.image_size, c.image_size), (c.backbone_size, c.backbone_size)):
            raise MediaError(f"{self.name} takes {c.image_size}x{c.image_size} images (or {c.backbone_size}x"
                             f"{c.backbone_size}), got {h}x{w}; resize them first (zoo.media.image.to_tensor(images, "
                             f"size={c.image_size}))")
        p = self.kmeans.centroids
        return images.to(device=p.device, dtype=p.dtype)

    def backbone_input(self, images: torch.Tensor) -> torch.Tensor:
        """Images in [-1, 1] -> what DINOv2 sees: ImageNet-normalised, at ``backbone_size``."""
        x = ((images + 1.0) / 2.0 - self.mean.to(images.dtype)) / self.std.to(images.dtype)
        if x.shape[-1] != self.config.backbone_size:  # the reference: scale_factor 224/256, after normalising
            x = F.interpolate(x, scale_factor=self.config.backbone_size / x.shape[-1], mode="bicubic")
        return x

    @torch.no_grad()
    def encode_latents(self, images: torch.Tensor) -> torch.Tensor:
        """Images ``[B, 3, S, S]`` in [-1, 1] -> the clustered features ``[B, grid^2, D]``."""
        x = self.backbone_input(self._check_images(images))
        return self.encoder.get_intermediate_layers(x, [self.config.block])[0]

    # ------------------------------------------------------------------ interface
    @torch.no_grad()
    def encode(self, images: torch.Tensor):
        """Images ``[B, 3, S, S]`` in [-1, 1] -> :class:`zoo.interfaces.Tokens` with ids ``[B, grid^2]``
        (row-major) and ``meta["grid"]``."""
        from zoo.interfaces import Tokens

        ids = self.kmeans.nearest(self.encode_latents(images))
        return Tokens(ids=ids, codebook_size=self.codebook_size, tokenizer=self.name, meta={"grid": (self.config.grid, self.config.grid)})

    def centroids(self, tokens: Any) -> torch.Tensor:
        """Tokens (or ids ``[B, N]``) -> their centroids ``[B, N, D]`` (what an understanding model can embed)."""
        from zoo.interfaces import Tokens

        ids = tokens.ids if isinstance(tokens, Tokens) else tokens
        if not isinstance(ids, torch.Tensor):
            raise TokenError(f"{self.name} takes Tokens from its encode() or ids [B, N]; got {type(tokens).__name__}")
        try:
            return self.kmeans(ids.to(self.kmeans.centroids.device))
        except (TypeError, ValueError) as exc:
            raise TokenError(f"{self.name}: {exc}") from exc

    def decode(self, tokens: Any, **kwargs: Any) -> torch.Tensor:
        """DiGIT has no decoder: its ids are k-means clusters of DINOv2 features, made for understanding
        and for an AR prior; pixels come from DiGIT's separate second-stage generator, not from these ids."""
        raise TokenError(f"{self.name} is an understanding-only tokenizer: its ids are k-means clusters of DINOv2 "
                         "features and have no pixel decoder. Use encode() (and centroids() for the cluster "
                         "vectors); to get images back, use a tokenizer with a decoder (e.g. zoo list --kind tokenizer)")
