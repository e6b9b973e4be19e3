"""zoo.nn.dual_codebook on its own and as the codebook of zoo.nn.multiscale_vq (TokenFlow's pairing)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from zoo.errors import ConfigError
from zoo.nn.dual_codebook import DualCodebook
from zoo.nn.multiscale_vq import MultiScaleResidualVQ


@pytest.mark.parametrize("k, ds, dp, pixel_weight", [(16, 4, 2, 1.0), (64, 32, 8, 1.0), (32, 8, 8, 0.5)])
def test_nearest_is_the_argmax_of_the_weighted_cosines(k, ds, dp, pixel_weight):
    g = torch.Generator().manual_seed(k)
    cb = DualCodebook(k, ds, dp, pixel_weight=pixel_weight)
    with torch.no_grad():
        cb.semantic.weight.copy_(torch.randn(k, ds, generator=g))
        cb.pixel.weight.copy_(torch.randn(k, dp, generator=g))
    z = torch.randn(200, ds + dp, generator=g, dtype=torch.float64)
    cb.double()
    cos_s = F.normalize(z[:, :ds], dim=-1) @ F.normalize(cb.semantic.weight, dim=-1).t()
    cos_p = F.normalize(z[:, ds:], dim=-1) @ F.normalize(cb.pixel.weight, dim=-1).t()
    assert torch.equal(cb.nearest(z), (cos_s + pixel_weight * cos_p).argmax(1))
    codes = cb(torch.arange(k))
    torch.testing.assert_close(codes.norm(dim=-1), torch.full((k,), 2.0 ** 0.5, dtype=torch.float64))


def test_shared_index_differs_from_two_independent_searches():
    """One id for both halves: the pair minimising the sum, not each half's own nearest."""
    cb = DualCodebook(2, 2, 2)
    with torch.no_grad():
        cb.semantic.weight.copy_(torch.tensor([[1.0, 0.0], [0.8, 0.6]]))
        cb.pixel.weight.copy_(torch.tensor([[0.0, 1.0], [1.0, 0.0]]))
    z = torch.tensor([[1.0, 0.0, 1.0, 0.1]])  # semantic prefers 0, pixel prefers 1 by more
    assert cb.nearest(z).tolist() == [1]


def test_multiscale_quantizer_uses_the_dual_codebook_and_keeps_float64():
    cb = DualCodebook(32, 4, 2)
    q = MultiScaleResidualVQ(32, 6, (1, 2, 4), phi_ratio=0.0, codebook=cb).double()
    f = torch.randn(2, 6, 4, 4, dtype=torch.float64)
    ids, f_hat = q.quantize(f)
    assert [tuple(i.shape) for i in ids] == [(2, 1), (2, 4), (2, 16)]
    assert f_hat.dtype == torch.float64 and q.decode(ids).dtype == torch.float64
    torch.testing.assert_close(q.decode(ids), f_hat)
    assert sorted(q.state_dict()) == ["embedding.pixel.weight", "embedding.semantic.weight"]


@pytest.mark.parametrize("kwargs", [dict(codebook_size=16, dim=6), dict(codebook_size=32, dim=5)])
def test_a_codebook_of_another_shape_is_refused(kwargs):
    with pytest.raises(ConfigError, match="codebook holds"):
        MultiScaleResidualVQ(kwargs["codebook_size"], kwargs["dim"], (1, 2), codebook=DualCodebook(32, 4, 2))


def test_bad_codebook_sizes_are_refused():
    with pytest.raises(ConfigError):
        DualCodebook(0, 4, 2)
    with pytest.raises(ConfigError, match="expects 6 channels"):
        DualCodebook(8, 4, 2).nearest(torch.zeros(3, 5))
