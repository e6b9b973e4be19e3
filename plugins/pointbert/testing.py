"""Weights and clouds for Point-BERT tests and benchmarks: per-key seeded state dicts in the
release layout whose BatchNorm statistics are valid (positive variances), and small test shapes.

Example:
    >>> sd = release_state_dict({"encoder.first_conv.1.running_var": ((4,), "float32")})
    >>> bool((sd["encoder.first_conv.1.running_var"] >= 1).all())
    True
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

__all__ = ["release_state_dict", "test_clouds"]


def release_state_dict(manifest: Mapping[str, tuple], seed: int = 0) -> dict[str, torch.Tensor]:
    """:func:`zoo.testing.weights.seeded_state_dict` with BatchNorm ``running_var`` = 1 + |x|
    (a seeded normal would give negative variances)."""
    from zoo.testing.weights import seeded_state_dict

    sd = seeded_state_dict(manifest, seed=seed)
    for k in sd:
        if k.endswith("running_var"):
            sd[k] = 1.0 + sd[k].abs() * 10
    return sd


def test_clouds(batch: int, points: int, seed: int = 0) -> torch.Tensor:
    """``[batch, points, 3]`` clouds in the unit sphere: points on a box, a sphere and a torus
    (cycling), each with a little noise, centred and scaled like ``pc_norm``."""
    from zoo.media.points import normalize_points

    g = torch.Generator().manual_seed(seed)
    out = []
    for b in range(batch):
        u = torch.rand(points, 2, generator=g)
        kind = b % 3
        if kind == 0:  # a box surface
            p = torch.rand(points, 3, generator=g) * torch.tensor([1.0, 0.6, 0.3])
            face = torch.randint(0, 3, (points,), generator=g)
            p[torch.arange(points), face] = torch.randint(0, 2, (points,), generator=g).float() * torch.tensor([1.0, 0.6, 0.3])[face]
        elif kind == 1:  # a sphere
            theta, phi = u[:, 0] * 6.2832, torch.acos(1 - 2 * u[:, 1])
            p = torch.stack([phi.sin() * theta.cos(), phi.sin() * theta.sin(), phi.cos()], 1)
        else:  # a torus
            a, c = u[:, 0] * 6.2832, u[:, 1] * 6.2832
            p = torch.stack([(1 + 0.3 * c.cos()) * a.cos(), (1 + 0.3 * c.cos()) * a.sin(), 0.3 * c.sin()], 1)
        out.append(p + 0.01 * torch.randn(points, 3, generator=g))
    return normalize_points(torch.stack(out))
