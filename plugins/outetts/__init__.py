"""OuteTTS-0.1-350M: text-to-speech as plain language modelling over WavTokenizer-75 codes.

Registers the ``outetts`` builder and the ``zoo generate`` command
(``zoo generate --model outetts "Hello" --out hello.wav``). The card lives in zoo's
``registry.yaml``. Importing this module does not import torch.
"""

from __future__ import annotations

from zoo.hookspecs import hookimpl


@hookimpl
def register_builders(register):
    from .builder import OuteTTSBuilder  # noqa: PLC0415 - imports torch lazily

    register(OuteTTSBuilder())

