"""Helpers shared by generator plugins: class labels, seeds and generators.

Example:
    >>> as_class_labels([1, 7], num_classes=1000).tolist()
    [1, 7]
"""

from __future__ import annotations

from typing import Any, Optional, Sequence, Union

import torch

from zoo.errors import InputError, InputTypeError

__all__ = ["as_class_labels", "make_generator"]


def as_class_labels(condition: Union[int, Sequence[int], torch.Tensor], num_classes: int, device: Any = None) -> torch.Tensor:
    """An int, a list of ints or a ``[B]`` integer tensor -> ``[B]`` long labels in range.

    Example:
        >>> as_class_labels(3, 10).tolist()
        [3]
    """
    t = torch.as_tensor(condition)
    if t.is_floating_point() or t.dtype == torch.bool:
        raise InputTypeError(f"class labels must be integers, got {t.dtype}")
    if t.dim() == 0:
        t = t[None]
    if t.dim() != 1 or t.numel() == 0:
        raise InputError(f"class labels must be an int or a [B] list/tensor, got shape {tuple(t.shape)}")
    if int(t.min()) < 0 or int(t.max()) >= num_classes:
        raise InputError(f"class labels must lie in 0..{num_classes - 1}, got {t.tolist()}")
    return t.long().to(device)


def make_generator(generator: Optional[torch.Generator], seed: Optional[int], device: Any = "cpu") -> torch.Generator:
    """The generator to draw from: the one given, else a new one seeded with ``seed`` (a fresh
    random seed when ``seed`` is None; the global RNG is never used).

    Example:
        >>> g = make_generator(None, 0)
        >>> torch.rand(1, generator=g).item() == torch.rand(1, generator=make_generator(None, 0)).item()
        True
    """
    if generator is not None:
        if seed is not None:
            raise InputError("give either generator= or seed=, not both")
        return generator
    dev = torch.device(device) if device is not None else torch.device("cpu")
    g = torch.Generator(dev)
    if seed is None:
        g.seed()
    else:
        g.manual_seed(int(seed))
    return g
