"""zoo.nn.quantize: the one codebook search / FSQ / id check every tokenizer plugin uses."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from zoo.errors import InputTypeError, TokenError, ZooError
from zoo.nn.quantize import FSQ, check_token_ids, lookup_codes, nearest_code, squared_distances


@pytest.mark.parametrize("l2_norm", [False, True])
@pytest.mark.parametrize("shape", [(7, 12), (2, 5, 12), (3, 1, 4, 12)])
def test_nearest_code_matches_brute_force(shape, l2_norm):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(*shape, generator=g)
    book = torch.randn(64, 12, generator=g)
    ids = nearest_code(x, book, l2_norm=l2_norm)
    assert ids.shape == shape[:-1] and ids.dtype == torch.int64
    xs, bs = (F.normalize(x, dim=-1), F.normalize(book, dim=-1)) if l2_norm else (x, book)
    want = torch.cdist(xs.reshape(-1, 12), bs).argmin(-1).view(shape[:-1])
    assert torch.equal(ids, want)


def test_codeword_maps_to_itself_and_lookup_roundtrips():
    book = torch.randn(32, 6, generator=torch.Generator().manual_seed(1))
    ids = torch.tensor([[3, 0, 31], [7, 7, 1]])
    codes = lookup_codes(ids, book)
    assert codes.shape == (2, 3, 6)
    assert torch.equal(nearest_code(codes, book), ids)
    assert torch.allclose(lookup_codes(ids, book, l2_norm=True).norm(dim=-1), torch.ones(2, 3))


def test_squared_distances_is_the_reference_expression():
    g = torch.Generator().manual_seed(2)
    x, e = torch.randn(5, 4, generator=g), torch.randn(9, 4, generator=g)
    want = x.pow(2).sum(1, keepdim=True) + e.pow(2).sum(1) - 2 * x @ e.t()
    assert torch.allclose(squared_distances(x, e), want, atol=1e-5)
    with pytest.raises(ValueError, match=r"x \[M, D\] and codebook \[K, D\]"):
        squared_distances(x, torch.randn(9, 3))


@pytest.mark.parametrize(
    "ids, error, builtin, match",
    [
        (torch.tensor([0.0, 1.0]), InputTypeError, TypeError, "must be an integer tensor.*float32.*long"),
        ([0, 1], InputTypeError, TypeError, "must be an integer tensor.*list"),
        (torch.tensor([-1, 2]), TokenError, ValueError, r"must be in \[0, 8\).*got range \[-1, 2\]; pass ids this model"),
        (torch.tensor([[0, 8]]), TokenError, ValueError, r"must be in \[0, 8\).*got range \[0, 8\]"),
    ],
)
def test_bad_ids_get_a_clear_error(ids, error, builtin, match):
    """zoo's bad-input errors (a ZooError), still caught by the builtin callers expect."""
    for call in (lambda: check_token_ids(ids, 8), lambda: lookup_codes(ids, torch.zeros(8, 2))):
        with pytest.raises(error, match=match) as caught:
            call()
        assert isinstance(caught.value, ZooError) and isinstance(caught.value, builtin)


def test_check_token_ids_accepts_valid_and_empty():
    check_token_ids(torch.tensor([0, 7], dtype=torch.int32), 8)
    check_token_ids(torch.zeros(0, dtype=torch.long), 8)


@pytest.mark.parametrize("levels", [[8, 8, 8, 5, 5, 5], [7, 5, 5, 5, 5], [4, 4]])
def test_fsq_ids_are_a_bijection_onto_the_level_grid(levels):
    fsq = FSQ(levels)
    every = torch.arange(fsq.codebook_size)
    codes = fsq.indices_to_codes(every)
    assert codes.abs().max() <= 1
    assert torch.unique(codes, dim=0).shape[0] == fsq.codebook_size  # every id its own grid point
    codes2, ids2 = fsq(4 * torch.randn(64, 9, len(levels), generator=torch.Generator().manual_seed(0)))
    assert 0 <= int(ids2.min()) and int(ids2.max()) < fsq.codebook_size
    assert torch.equal(fsq.indices_to_codes(ids2), codes2)
    with pytest.raises(ValueError, match="last dimension of"):
        fsq(torch.zeros(2, len(levels) + 1))
    with pytest.raises(ValueError, match="must be in"):
        fsq.indices_to_codes(torch.tensor([fsq.codebook_size]))
