"""LLMLingua-2 prompt compression (microsoft/LLMLingua): a token classifier drops the prompt's least useful words.

``zoo.load("llmlingua2").compress(text, rate=0.33)`` -> :class:`~zoo_plugins.llmlingua2.compressor.CompressedPrompt`.
Needs the ``zoo[llm]`` extra; importing this module imports neither torch nor transformers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from zoo.hookspecs import hookimpl

__all__ = ["register_builders"]


@hookimpl
def register_builders(register: Callable[[Any], None]) -> None:
    from .builder import LLMLingua2Builder

    register(LLMLingua2Builder())
