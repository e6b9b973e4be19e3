"""Where the continuous samplers' Gaussian noise comes from: the caller's ``torch.Generator``
(always in zoo), or a replay of recorded draws (parity fixtures inject the reference's noise).

Every continuous driver (:func:`~zoo.sampling.ddpm.ddpm_sample`,
:func:`~zoo.sampling.sde.sample_sde`, the plugins' initial noise) asks a :class:`NoiseSource`
for ``randn(shape)``; :func:`as_noise_source` turns a generator (or ``None``: a fresh randomly
seeded one, never the global RNG) into one. ``torch.randn(shape, generator=g)`` with a CPU
generator seeded ``s`` gives the numbers the global RNG gives after ``torch.manual_seed(s)``, so
a reference that draws the same shapes in the same order from the global RNG is reproduced by
seeding zoo's generator with its seed.

**Draw dtype.** A generator's float64 normals are a different stream from its float32 normals
(a float64 draw consumes other bits; it is not the float32 draw widened). A source draws in its
``draw_dtype`` (float32 by default) and then casts to the dtype the sampler asks for, so a
reference that calls ``torch.randn_like`` on a float64 state is reproduced by
``as_noise_source(g, draw_dtype=torch.float64)`` (or ``source.with_draw_dtype(torch.float64)``,
which shares the generator). Replayed draws are handed out as recorded whatever the draw dtype.

Example:
    >>> import torch
    >>> src = as_noise_source(torch.Generator().manual_seed(0))
    >>> torch.equal(src.randn((2, 3)), torch.randn((2, 3), generator=torch.Generator().manual_seed(0)))
    True
    >>> rec = ReplayNoise([torch.zeros(2, 3)])
    >>> rec.randn((2, 3)).sum().item(), rec.remaining
    (0.0, 0)
    >>> f64 = as_noise_source(torch.Generator().manual_seed(0), draw_dtype=torch.float64).randn((3,))
    >>> torch.equal(f64, torch.randn(3, dtype=torch.float64, generator=torch.Generator().manual_seed(0)).float())
    True
"""

from __future__ import annotations

from typing import Any, Optional, Sequence, Union

import torch

from zoo.errors import InputError

__all__ = ["NoiseSource", "GeneratorNoise", "ReplayNoise", "as_noise_source"]


def _check_draw_dtype(dtype: Any) -> torch.dtype:
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point or dtype.is_complex:
        raise InputError(f"draw_dtype must be a real floating torch.dtype (torch.float32, torch.float64), got {dtype!r}")
    return dtype


class NoiseSource:
    """Draws standard normal noise; subclasses implement :meth:`randn` (and :meth:`with_draw_dtype`
    when they draw from a generator)."""

    def randn(self, shape: Sequence[int], *, device: Any = None, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """A ``shape`` tensor of N(0, 1) draws, returned in ``dtype`` on ``device``."""
        raise NotImplementedError

    def with_draw_dtype(self, draw_dtype: torch.dtype) -> NoiseSource:
        """This source drawing its normals in ``draw_dtype`` (same generator, same position in its
        stream). A source that does not draw (a replay) returns itself."""
        _check_draw_dtype(draw_dtype)
        return self


class GeneratorNoise(NoiseSource):
    """``torch.randn(shape, generator=generator, dtype=draw_dtype)`` on the generator's device,
    then cast and moved to what the sampler asks for. ``draw_dtype`` (default float32) picks the
    generator's stream: float64 draws are not float32 draws widened (see the module docstring).

    Example:
        >>> GeneratorNoise(torch.Generator().manual_seed(1)).randn((2,)).shape
        torch.Size([2])
        >>> g = torch.Generator().manual_seed(1)
        >>> wide = GeneratorNoise(g).with_draw_dtype(torch.float64)
        >>> wide.generator is g, wide.randn((2,)).dtype, wide.randn((2,), dtype=torch.float64).dtype
        (True, torch.float32, torch.float64)
    """

    def __init__(self, generator: torch.Generator, draw_dtype: torch.dtype = torch.float32):
        self.generator = generator
        self.draw_dtype = _check_draw_dtype(draw_dtype)

    def randn(self, shape: Sequence[int], *, device: Any = None, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        out = torch.randn(tuple(shape), generator=self.generator, device=self.generator.device, dtype=self.draw_dtype)
        return out.to(device=device if device is not None else out.device, dtype=dtype)

    def with_draw_dtype(self, draw_dtype: torch.dtype) -> GeneratorNoise:
        return GeneratorNoise(self.generator, draw_dtype)


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


def as_noise_source(source: Union[NoiseSource, torch.Generator, None], device: Any = "cpu",
                    draw_dtype: Optional[torch.dtype] = None) -> NoiseSource:
    """A :class:`NoiseSource` from a source, a generator, or ``None`` (a freshly seeded generator).
    ``draw_dtype`` sets the dtype the normals are drawn in (:meth:`NoiseSource.with_draw_dtype`;
    ``None`` keeps a source's own, float32 for a generator).

    Example:
        >>> isinstance(as_noise_source(None), GeneratorNoise)
        True
        >>> as_noise_source(torch.Generator(), draw_dtype=torch.float64).draw_dtype
        torch.float64
    """
    if isinstance(source, NoiseSource):
        out = source
    elif isinstance(source, torch.Generator):
        out = GeneratorNoise(source)
    elif source is None:
        g: Optional[torch.Generator] = torch.Generator(torch.device(device) if device is not None else "cpu")
        g.seed()
        out = GeneratorNoise(g)
    else:
        raise InputError(f"noise must come from a torch.Generator or a NoiseSource, got {type(source).__name__}")
    return out if draw_dtype is None else out.with_draw_dtype(draw_dtype)
