"""What a generator returns: the tokens and (by default) the decoded media.

Example:
    >>> import torch
    >>> from zoo.interfaces import Tokens
    >>> out = Generation(tokens=Tokens(torch.zeros(1, 4, dtype=torch.long), codebook_size=8))
    >>> out.media is None
    True
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from zoo.interfaces import Tokens

__all__ = ["Generation"]


@dataclass
class Generation:
    """``tokens``: the generated :class:`~zoo.interfaces.Tokens`; ``media``: decoded images
    ``[B, 3, H, W]`` in [-1, 1] or audio, when decoding was asked for; ``meta``: e.g. the
    sampler settings used and the sample rate."""

    tokens: Tokens
    media: Optional[Any] = None
    meta: dict[str, Any] = field(default_factory=dict)
