"""What a generator returns: the tokens and (by default) the decoded media.

Example:
    >>> import torch
    >>> from zoo.interfaces import Tokens
    >>> out = Generation(tokens=Tokens(torch.zeros(1, 4, dtype=torch.long), codebook_size=8))
    >>> out.media is None
    True
    >>> out
    Generation(tokens=Tokens(tokenizer='?', batch=1, ids=[1, 4] int64 cpu, lengths=4, codebook=8), media=None)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from zoo.interfaces import Tokens

__all__ = ["Generation"]


@dataclass
class Generation:
    """``tokens``: the generated :class:`~zoo.interfaces.Tokens`; ``media``: decoded images
    ``[B, 3, H, W]`` in [-1, 1] or audio, when decoding was asked for; ``meta``: e.g. the
    sampler settings used and the sample rate."""

    tokens: Tokens
    media: Any | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        """One line: the tokens' repr, the media's shape (never its values) and the meta keys."""
        import torch

        from zoo._valuetools import tensor_summary

        if isinstance(self.media, torch.Tensor):
            media = tensor_summary(self.media)
        elif isinstance(self.media, (list, tuple)):
            media = f"{len(self.media)} items"
        else:
            media = "None" if self.media is None else type(self.media).__name__
        meta = f", meta={{{', '.join(sorted(self.meta))}}}" if self.meta else ""
        return f"Generation(tokens={self.tokens!r}, media={media}{meta})"
