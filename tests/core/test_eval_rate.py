"""Bits per item for every kind of tokenizer output, and the mean / 95% interval of per-item values."""

from __future__ import annotations

import math

import pytest
import torch

from zoo.evaluation.rate import bits_per_item, describe_rate, token_kind, tokens_per_item
from zoo.evaluation.stats import summarize
from zoo.interfaces import Latents, MultiRateTokens, Tokens


def _ids(*shape):
    return torch.zeros(*shape, dtype=torch.long)


CASES = [
    # (name, tokens, kind, expected bits per item)
    ("single codebook", Tokens(ids=_ids(2, 32), codebook_size=64000), "discrete", [32 * math.log2(64000)] * 2),
    ("ragged lengths", Tokens(ids=_ids(3, 8), codebook_size=4096, lengths=torch.tensor([8, 3, 1])), "discrete",
     [8 * 12.0, 3 * 12.0, 1 * 12.0]),
    ("prefix of 4", Tokens(ids=_ids(1, 256), codebook_size=4096).truncate(4), "discrete", [48.0]),
    ("RVQ 8 levels", Tokens(ids=_ids(2, 8, 75), codebook_size=1024), "multi-codebook", [8 * 75 * 10.0] * 2),
    ("RVQ first 2 levels", Tokens(ids=_ids(2, 8, 75), codebook_size=1024).codebooks(2), "multi-codebook", [2 * 75 * 10.0] * 2),
    ("RVQ ragged", Tokens(ids=_ids(2, 4, 10), codebook_size=2048, lengths=torch.tensor([10, 6])), "multi-codebook",
     [4 * 10 * 11.0, 4 * 6 * 11.0]),
    ("multi-rate (SNAC)", MultiRateTokens(levels=[_ids(1, 3), _ids(1, 6), _ids(1, 12)], strides=(4, 2, 1), codebook_size=4096),
     "multi-rate", [(3 + 6 + 12) * 12.0]),
    ("multi-rate, 2 levels, truncated", MultiRateTokens(levels=[_ids(2, 3), _ids(2, 6), _ids(2, 12)], strides=(4, 2, 1),
                                                        codebook_size=4096).codebooks(2).truncate([1, 3]),
     "multi-rate", [(1 + 2) * 12.0, (3 + 6) * 12.0]),
    ("latents float32", Latents(values=torch.zeros(2, 256, 16)), "continuous", [256 * 16 * 32.0] * 2),
    ("latents float16 ragged", Latents(values=torch.zeros(2, 10, 4, dtype=torch.float16), lengths=torch.tensor([10, 5])),
     "continuous", [10 * 4 * 16.0, 5 * 4 * 16.0]),
    ("bare latent tensor", torch.zeros(3, 16, 8, 8), "continuous", [16 * 8 * 8 * 32.0] * 3),
    ("bare bfloat16 latents", torch.zeros(1, 4, 2, 2, dtype=torch.bfloat16), "continuous", [4 * 2 * 2 * 16.0]),
]


@pytest.mark.parametrize("name,tokens,kind,bits", CASES, ids=[c[0] for c in CASES])
def test_bits_per_item(name, tokens, kind, bits):
    assert token_kind(tokens) == kind
    got = bits_per_item(tokens)
    assert got.dtype == torch.float64
    assert got.tolist() == pytest.approx(bits)
    assert describe_rate(tokens).startswith(kind.split(" ")[0])


def test_tokens_per_item_counts_positions():
    assert tokens_per_item(Tokens(ids=_ids(2, 8), codebook_size=2, lengths=torch.tensor([8, 2]))).tolist() == [8, 2]
    assert tokens_per_item(torch.zeros(2, 16, 4, 6)).tolist() == [24, 24]
    snac = MultiRateTokens(levels=[_ids(1, 3), _ids(1, 6)], strides=(2, 1), codebook_size=16)
    assert tokens_per_item(snac).tolist() == [3]  # coarsest frames


def test_describe_rate_states_the_convention():
    assert "log2(1024) = 10.00 bits" in describe_rate(Tokens(ids=_ids(1, 2, 5), codebook_size=1024))
    assert "x 32 bits (float32 as returned; not entropy coded)" in describe_rate(Latents(values=torch.zeros(1, 4, 16)))


def test_anything_else_is_refused():
    from zoo.errors import InputTypeError

    with pytest.raises(InputTypeError, match="expected Tokens, MultiRateTokens or Latents"):
        bits_per_item(torch.zeros(2, 5, dtype=torch.long))


# -- mean and 95% interval -------------------------------------------------------------------------

@pytest.mark.parametrize("values", [[1.0, 2.0], [30.1, 29.7, 31.2, 28.8], [0.5] * 5 + [0.7] * 7, list(range(100))])
def test_interval_is_students_t(values):
    from scipy import stats

    s = summarize(values)
    mean = sum(values) / len(values)
    lo, hi = stats.t.interval(0.95, len(values) - 1, loc=mean, scale=stats.sem(values))
    assert s["mean"] == pytest.approx(mean)
    assert s["ci95"] == pytest.approx([lo, hi])
    assert s["std"] == pytest.approx(stats.tstd(values))
    assert s["n"] == len(values) and s["non_finite"] == 0


def test_interval_edge_cases():
    assert summarize([]) == {"mean": None, "std": None, "ci95": None, "n": 0, "non_finite": 0}
    one = summarize([3.0])
    assert one["mean"] == 3.0 and one["ci95"] is None
    s = summarize([10.0, 12.0, float("inf"), float("nan")])  # PSNR of an exact reconstruction is inf
    assert s["n"] == 2 and s["non_finite"] == 2 and s["mean"] == 11.0
    same = summarize([2.0, 2.0, 2.0])
    assert same["ci95"] == [2.0, 2.0]
