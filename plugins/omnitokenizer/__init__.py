"""OmniTokenizer: a joint image-video transformer tokenizer (VQ 8192 x 8, or a KL VAE).

Registers the ``omnitokenizer`` builder; the cards (``omnitokenizer.*``) live in zoo's ``registry.yaml``.
Importing this module does not import torch.
"""

from __future__ import annotations

from zoo.hookspecs import hookimpl


@hookimpl
def register_builders(register):
    from .builder import OmniTokenizerBuilder

    register(OmniTokenizerBuilder())
