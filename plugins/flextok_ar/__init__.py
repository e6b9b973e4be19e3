"""FlexTok autoregressive generator: a GPT-style, class-conditional transformer over FlexTok's
64 000-code FSQ vocabulary, sampling any prefix length 1..256 (coarse-to-fine tokens).

No weights are published: the architecture is built, trainable (``loss``) and tested on tiny
configs. Registers the ``flextok_ar`` builder. Importing this module does not import torch.
"""

from __future__ import annotations

from zoo.hookspecs import hookimpl


@hookimpl
def register_builders(register):
    from .model import FlexTokARBuilder  # noqa: PLC0415 - imports torch lazily

    register(FlexTokARBuilder())
