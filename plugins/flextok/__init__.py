"""FlexTok (apple/ml-flextok): images -> 1..256 ordered tokens (FSQ, 64 000 codes) -> images.

Registers the ``flextok`` builder; the cards (``flextok.*``, ``flextok_vae.*``) live in zoo's
``registry.yaml``. Importing this module does not import torch.

Usage::

    model = zoo.load("flextok")                    # flextok.d18_d28_dfn
    tokens = model.encode(images)                  # [B, 3, 256, 256] in [-1, 1] -> Tokens [B, 256]
    recon = model.decode(tokens.truncate(16), steps=20, guidance_scale=7.5, norm_guidance=True,
                         generator=torch.Generator().manual_seed(0))
"""

from __future__ import annotations

from zoo.hookspecs import hookimpl

__all__ = ["images_to_tensor", "register_builders"]


@hookimpl
def register_builders(register):
    from .builder import FlexTokBuilder, FlexTokVAEBuilder

    register(FlexTokBuilder())
    register(FlexTokVAEBuilder())


def images_to_tensor(images, size: int = 256):
    """PIL images / uint8 arrays ``[H, W, 3]`` -> ``[B, 3, size, size]`` in [-1, 1] (resize + center crop).

    Example:
        >>> from PIL import Image
        >>> images_to_tensor([Image.new("RGB", (300, 200))], size=64).shape
        torch.Size([1, 3, 64, 64])
    """
    from ._images import images_to_tensor as impl

    return impl(images, size)
