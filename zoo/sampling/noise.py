"""Where the continuous samplers' Gaussian noise comes from: the caller's ``torch.Generator``
(always in zoo), or a replay of recorded draws (parity fixtures inject the reference's noise).

Every continuous driver (:func:`~zoo.sampling.ddpm.ddpm_sample`,
:func:`~zoo.sampling.sde.sample_sde`, the plugins' initial noise) asks a :class:`NoiseSource`
for ``randn(shape)``; :func:`as_noise_source` turns a generator (or ``None``: a fresh randomly
seeded one, never the global RNG) into one. ``torch.randn(shape, generator=g)`` with a CPU
generator seeded ``s`` gives the numbers the global RNG gives after ``torch.manual_seed(s)``, so
a reference that draws the same shapes in the same order from the global RNG is reproduced by
seeding zoo's generator with its seed.

Example:
    >>> import torch
    >>> src = as_noise_source(torch.Generator().manual_seed(0))
    >>> torch.equal(src.randn((2, 3)), torch.randn((2, 3), generator=torch.Generator().manual_seed(0)))
    True
    >>> rec = ReplayNoise([torch.zeros(2, 3)])
    >>> rec.randn((2, 3)).sum().item(), rec.remaining
    (0.0, 0)
"""

from __future__ import annotations

from typing import Any, Optional, Sequence, Union

import torch

from zoo.errors import InputError

__all__ = ["NoiseSource", "GeneratorNoise", "ReplayNoise", "as_noise_source"]


class NoiseSource:
    """Draws standard normal noise; subclasses implement :meth:`randn`."""

    def randn(self, shape: Sequence[int], *, device: Any = None, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """A ``shape`` tensor of N(0, 1) draws."""
        raise NotImplementedError


class GeneratorNoise(NoiseSource):
    """``torch.randn(shape, generator=generator)`` on the generator's device, then moved.

    Example:
        >>> GeneratorNoise(torch.Generator().manual_seed(1)).randn((2,)).shape
        torch.Size([2])
    """

    def __init__(self, generator: torch.Generator):
        self.generator = generator

    def randn(self, shape: Sequence[int], *, device: Any = None, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        out = torch.randn(tuple(shape), generator=self.generator, device=self.generator.device, dtype=torch.float32)
        return out.to(device=device if device is not None else out.device, dtype=dtype)


class ReplayNoise(NoiseSource):
    """Hands out recorded tensors in order (a parity fixture's draws); each request must ask for
    the recorded shape, and asking past the end is an error (both name the draw).

    Example:
        >>> ReplayNoise([torch.ones(1)]).randn((2,))  # doctest: +IGNORE_EXCEPTION_DETAIL
        Traceback (most recent call last):
        zoo.errors.InputError: replayed noise draw 0 has shape (1,), the sampler asked for (2,)
    """

    def __init__(self, draws: Sequence[torch.Tensor]):
        self.draws = list(draws)
        self.index = 0

    @property
    def remaining(self) -> int:
        """Draws not handed out yet."""
        return len(self.draws) - self.index

    def randn(self, shape: Sequence[int], *, device: Any = None, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        if self.index >= len(self.draws):
            raise InputError(f"replayed noise ran out after {len(self.draws)} draws (the sampler asked for one more of "
                             f"shape {tuple(shape)}): record as many draws as the sampler makes")
        t = self.draws[self.index]
        if tuple(t.shape) != tuple(shape):
            raise InputError(f"replayed noise draw {self.index} has shape {tuple(t.shape)}, the sampler asked for {tuple(shape)}")
        self.index += 1
        return t.to(device=device if device is not None else t.device, dtype=dtype)


def as_noise_source(source: Union[NoiseSource, torch.Generator, None], device: Any = "cpu") -> NoiseSource:
    """A :class:`NoiseSource` from a source, a generator, or ``None`` (a freshly seeded generator).

    Example:
        >>> isinstance(as_noise_source(None), GeneratorNoise)
        True
    """
    if isinstance(source, NoiseSource):
        return source
    if isinstance(source, torch.Generator):
        return GeneratorNoise(source)
    if source is None:
        g: Optional[torch.Generator] = torch.Generator(torch.device(device) if device is not None else "cpu")
        g.seed()
        return GeneratorNoise(g)
    raise InputError(f"noise must come from a torch.Generator or a NoiseSource, got {type(source).__name__}")
