"""DiGIT: images -> ids of the nearest k-means centroid of DINOv2-reg4 features (DAMO-NLP-SG/DiGIT,
MIT code). Registers the ``digit`` builder; cards ``digit.*`` live in ``registry.yaml``. An
understanding-only tokenizer: there is no decoder (``decode`` refuses). Importing this module does
not import torch.

    >>> import zoo                                                                  # doctest: +SKIP
    >>> tok = zoo.load("digit", weights="folder/")  # km_8k.npy + dinov2_vitb14_reg4_pretrain.pth  # doctest: +SKIP
    >>> tok.encode(images).ids.shape                 # [B, 256]: a 16x16 grid, 8192 codes  # doctest: +SKIP
"""

from __future__ import annotations

from zoo.hookspecs import hookimpl


@hookimpl
def register_builders(register):
    from .builder import DiGITBuilder  # imports torch lazily

    register(DiGITBuilder())
