"""GigaTok: 256x256 images <-> 256 1D tokens (SilentView/GigaTok, MIT), hybrid CNN + Q-Former.

Registers the ``gigatok`` builder; the cards (``gigatok.*``) live in zoo's ``registry.yaml``.
The weights are on Google Drive only: download the file the card names, then
``zoo.load("gigatok.s_s", weights="VQ_SS256_e100.pt")``. Importing this module does not import
torch.

    >>> import zoo                                                                  # doctest: +SKIP
    >>> model = zoo.load("gigatok.s_s", weights="VQ_SS256_e100.pt")                  # doctest: +SKIP
    >>> tokens = model.encode(images)        # ids [B, 256], codebook 16384           # doctest: +SKIP
    >>> images = model.decode(tokens)        # [B, 3, 256, 256] in [-1, 1]            # doctest: +SKIP
"""

from __future__ import annotations

from zoo.hookspecs import hookimpl


@hookimpl
def register_builders(register):
    from .builder import GigaTokBuilder  # noqa: PLC0415 - imports torch lazily

    register(GigaTokBuilder())
