"""TokenFlow: images <-> multi-scale ids over a shared-index dual codebook (ByteFlow-AI/TokenFlow,
Apache-2.0 code). Registers the ``tokenflow`` builder; cards ``tokenflow.*`` live in
``registry.yaml``. Importing this module does not import torch.

    >>> import zoo                                                       # doctest: +SKIP
    >>> tf = zoo.load("tokenflow")            # tokenflow.clipb_32k        # doctest: +SKIP
    >>> tokens = tf.encode(images)            # ids [B, 817] over 9 scales  # doctest: +SKIP
    >>> images = tf.decode(tokens)            # [B, 3, 256, 256] in [-1, 1] # doctest: +SKIP
"""

from __future__ import annotations

from zoo.hookspecs import hookimpl


@hookimpl
def register_builders(register):
    from .builder import TokenFlowBuilder  # imports torch lazily

    register(TokenFlowBuilder())
