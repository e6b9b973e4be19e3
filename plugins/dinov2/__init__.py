"""DINOv2 (facebookresearch/dinov2, Apache-2.0) as a frozen feature extractor: images -> patch
features (:class:`zoo.interfaces.Latents`). Its cards (``dinov2.*``) are the backbone dependencies
of DiGIT and Hita; the ``*_pretrain.pth`` files load unchanged. Importing this module does not
import torch.

    >>> import zoo                                                                         # doctest: +SKIP
    >>> enc = zoo.load("dinov2.vitb14_reg4", weights="dinov2_vitb14_reg4_pretrain.pth")    # doctest: +SKIP
    >>> enc.encode(images).values.shape        # [B, 256, 768] at 224 px                    # doctest: +SKIP
"""

from __future__ import annotations

from zoo.hookspecs import hookimpl


@hookimpl
def register_builders(register):
    from .builder import DINOv2Builder  # imports torch lazily

    register(DINOv2Builder())
