"""The diagonal Gaussian posterior of KL autoencoders (LDM, MAR, VA-VAE, diffusers).

:class:`DiagonalGaussian` takes the encoder's ``moments`` ``[B, 2C, ...]`` (mean and
log-variance stacked on dim 1, log-variance clamped to ``[-30, 20]`` as every reference does)
and gives :meth:`~DiagonalGaussian.mode` (the mean) or :meth:`~DiagonalGaussian.sample` drawn
from a caller's ``torch.Generator`` (never zoo's choice of global RNG state).

Noise is drawn as diffusers' ``randn_tensor`` draws it: a CPU generator draws on the CPU (then
moves), a list of generators draws one ``[1, ...]`` slice per batch item. On the CPU,
``torch.manual_seed(s)`` followed by the LDM reference's ``torch.randn(shape)`` draws the same
numbers as ``sample(generator=torch.Generator().manual_seed(s))``.

Example:
    >>> import torch
    >>> post = DiagonalGaussian(torch.cat([torch.zeros(1, 2, 3, 3), torch.full((1, 2, 3, 3), -100.0)], 1))
    >>> post.mode().shape, float(post.logvar.min())
    (torch.Size([1, 2, 3, 3]), -30.0)
    >>> g = torch.Generator().manual_seed(0)
    >>> bool(torch.equal(post.sample(generator=g), post.sample(generator=torch.Generator().manual_seed(0))))
    True
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from zoo.errors import InputError

__all__ = ["DiagonalGaussian", "randn_like_diffusers"]

GeneratorArg = torch.Generator | Sequence[torch.Generator] | None


def randn_like_diffusers(shape: Sequence[int], generator: GeneratorArg, device: torch.device | str,
                         dtype: torch.dtype) -> torch.Tensor:
    """Standard normal noise of ``shape`` drawn as diffusers' ``randn_tensor`` draws it.

    CPU generators draw on the CPU (then the noise moves to ``device``); a list draws one
    ``[1, ...]`` tensor per batch item from its own generator (a list of one acts as that
    generator); ``None`` uses the global RNG.

    Example:
        >>> a = randn_like_diffusers((2, 3), [torch.Generator().manual_seed(1), torch.Generator().manual_seed(2)], "cpu", torch.float32)
        >>> bool(torch.equal(a[1:], torch.randn((1, 3), generator=torch.Generator().manual_seed(2))))
        True
    """
    device = torch.device(device)
    if isinstance(generator, (list, tuple)) and len(generator) == 1:
        generator = generator[0]
    if isinstance(generator, (list, tuple)):
        if len(generator) < shape[0]:
            raise InputError(f"got {len(generator)} generators for a batch of {shape[0]}; pass one per image")
        return torch.cat([randn_like_diffusers((1, *shape[1:]), generator[i], device, dtype) for i in range(shape[0])])
    rand_device = device
    if generator is not None and generator.device.type != device.type:
        if generator.device.type != "cpu":
            raise InputError(f"a {generator.device.type} generator cannot draw noise for {device.type} tensors")
        rand_device = torch.device("cpu")
    return torch.randn(tuple(shape), generator=generator, device=rand_device, dtype=dtype).to(device)


class DiagonalGaussian:
    """``N(mean, exp(logvar))`` per element, from moments ``[B, 2C, ...]`` (or ``mean=``, ``logvar=``).

    Example:
        >>> post = DiagonalGaussian(mean=torch.zeros(1, 4), logvar=torch.zeros(1, 4))
        >>> post.std.tolist(), post.kl().tolist()
        ([[1.0, 1.0, 1.0, 1.0]], [0.0])
    """

    def __init__(self, moments: torch.Tensor | None = None, *, mean: torch.Tensor | None = None,
                 logvar: torch.Tensor | None = None):
        if moments is not None:
            if mean is not None or logvar is not None:
                raise InputError("give DiagonalGaussian either moments or mean= and logvar=, not both")
            if moments.dim() < 2 or moments.shape[1] % 2:
                raise InputError(f"moments must be [B, 2C, ...] (mean and log-variance on dim 1), got {tuple(moments.shape)}")
            mean, logvar = torch.chunk(moments, 2, dim=1)
        if mean is None or logvar is None or mean.shape != logvar.shape:
            raise InputError("DiagonalGaussian needs moments [B, 2C, ...] or mean= and logvar= of one shape")
        self.mean = mean
        self.logvar = torch.clamp(logvar, -30.0, 20.0)

    @property
    def std(self) -> torch.Tensor:
        return torch.exp(0.5 * self.logvar)

    @property
    def var(self) -> torch.Tensor:
        return torch.exp(self.logvar)

    def mode(self) -> torch.Tensor:
        """The mean (the deterministic latents)."""
        return self.mean

    def sample(self, generator: GeneratorArg = None) -> torch.Tensor:
        """``mean + std * noise``, noise from ``generator`` (see :func:`randn_like_diffusers`)."""
        noise = randn_like_diffusers(self.mean.shape, generator, self.mean.device, self.mean.dtype)
        return self.mean + self.std * noise

    def kl(self) -> torch.Tensor:
        """KL divergence to the standard normal, summed over all but the batch dim."""
        dims = list(range(1, self.mean.dim()))
        return 0.5 * torch.sum(self.mean.pow(2) + self.var - 1.0 - self.logvar, dim=dims)
