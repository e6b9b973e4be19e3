"""Multi-codebook tokens: residual levels at one rate (Tokens [B, Q, N]) and multi-rate
hierarchies (MultiRateTokens, SNAC)."""

import pytest
import torch

from zoo.errors import InputTypeError, TokenError
from zoo.interfaces import MultiRateTokens, Tokens, as_multirate_tokens


def _snac_like(batch=2, frames=3, strides=(4, 2, 1)):
    g = torch.Generator().manual_seed(0)
    levels = [torch.randint(0, 4096, (batch, frames * (strides[0] // s)), generator=g) for s in strides]
    return MultiRateTokens(levels=levels, strides=strides, codebook_size=4096, tokenizer="snac.24khz")


def test_single_rate_codebooks_keeps_first_levels():
    ids = torch.arange(2 * 8 * 5).view(2, 8, 5)
    t = Tokens(ids=ids, codebook_size=1000, tokenizer="demo.rvq", lengths=[5, 3])
    for q in (1, 2, 4, 8):
        kept = t.codebooks(q)
        assert kept.ids.shape == (2, q, 5) and torch.equal(kept.ids, ids[:, :q])
        assert kept.lengths.tolist() == [5, 3] and kept.num_codebooks == q
    assert len(t.levels) == 8 and torch.equal(t.levels[3], ids[:, 3])
    assert [n.tolist() for n in t.level_lengths] == [[5, 3]] * 8
    assert Tokens(ids=ids[:, 0], codebook_size=1000).num_codebooks == 1


@pytest.mark.parametrize("q, error", [(0, TokenError), (9, TokenError), (1.5, InputTypeError), (True, InputTypeError)])
def test_codebooks_refuses_bad_counts(q, error):
    t = Tokens(ids=torch.zeros(1, 8, 4, dtype=torch.long), codebook_size=4)
    with pytest.raises(error):
        t.codebooks(q)
    with pytest.raises(error):
        _snac_like().codebooks(q if q != 9 else 4)


def test_single_rate_truncate_pads_every_level():
    t = Tokens(ids=torch.ones(2, 3, 6, dtype=torch.long), codebook_size=4, pad_id=0)
    cut = t.truncate([2, 4])
    assert cut.ids.shape == (2, 3, 4)
    assert cut.ids[0, :, 2:].eq(0).all() and cut.ids[1].eq(1).all()


def test_multirate_level_lengths_follow_strides():
    t = _snac_like(frames=3)
    assert [x.shape[1] for x in t.levels] == [3, 6, 12]
    assert t.max_length == 3 and t.num_codebooks == 3
    assert [n.tolist() for n in t.level_lengths] == [[3, 3], [6, 6], [12, 12]]


def test_multirate_truncate_keeps_aligned_time():
    t = _snac_like(frames=3)
    cut = t.truncate([1, 2])
    assert [x.shape[1] for x in cut.levels] == [2, 4, 8]
    assert [n.tolist() for n in cut.level_lengths] == [[1, 2], [2, 4], [4, 8]]
    for level, (full, short) in enumerate(zip(t.levels, cut.levels)):
        r = 4 // t.strides[level]
        assert torch.equal(short[0, :r], full[0, :r]) and short[0, r:].eq(0).all()
        assert torch.equal(short[1], full[1, : 2 * r])
    with pytest.raises(TokenError):
        t.truncate(4)


def test_multirate_codebooks_and_indexing():
    t = _snac_like(batch=3, frames=2, strides=(8, 4, 2, 1))
    two = t.codebooks(2)
    assert two.strides == (8, 4) and len(two.levels) == 2 and torch.equal(two.levels[1], t.levels[1])
    item = t.truncate([2, 1, 2])[1]
    assert item.batch_size == 1 and [x.shape[1] for x in item.levels] == [1, 2, 4, 8]
    assert [x.batch_size for x in t] == [1, 1, 1]
    per_item = t.truncate([2, 1, 2]).to_list()
    assert [x.shape for x in per_item[1]] == [(1, 1), (1, 2), (1, 4), (1, 8)]


def test_multirate_repr_is_one_line():
    text = repr(_snac_like())
    assert "\n" not in text and text.startswith("MultiRateTokens(tokenizer='snac.24khz', batch=2")
    assert "levels=[2, 3]/[2, 6]/[2, 12] int64 cpu" in text and "strides=4,2,1" in text and "codebook=4096" in text


@pytest.mark.parametrize("levels, strides, error", [
    ([torch.zeros(1, 2, dtype=torch.long), torch.zeros(1, 3, dtype=torch.long)], (4, 2), TokenError),  # wrong rate
    ([torch.zeros(1, 2, dtype=torch.long)], (4, 2), TokenError),                                        # strides count
    ([torch.zeros(1, 2, dtype=torch.long), torch.zeros(1, 6, dtype=torch.long)], (4, 3), TokenError),   # not a divisor
    ([torch.zeros(1, 2)], (1,), InputTypeError),                                                        # float ids
    ([torch.zeros(2, dtype=torch.long)], (1,), TokenError),                                             # no batch dim
    ([torch.zeros(1, 2, dtype=torch.long), torch.zeros(2, 4, dtype=torch.long)], (2, 1), TokenError),   # batch differs
    (torch.zeros(1, 2, dtype=torch.long), (1,), InputTypeError),                                        # not a list
])
def test_multirate_refuses_malformed_levels(levels, strides, error):
    with pytest.raises(error):
        MultiRateTokens(levels=levels, strides=strides, codebook_size=8)


def test_as_multirate_tokens_checks_provenance_range_and_rate():
    t = _snac_like()
    assert as_multirate_tokens(t, 4096, (4, 2, 1), tokenizer="snac.24khz") is t
    assert as_multirate_tokens(t.codebooks(2), 4096, (4, 2, 1), tokenizer="snac.24khz").num_codebooks == 2
    with pytest.raises(TokenError, match="made by"):
        as_multirate_tokens(t, 4096, (4, 2, 1), tokenizer="snac.32khz")
    with pytest.raises(TokenError, match="strides"):
        as_multirate_tokens(t, 4096, (8, 4, 2, 1), tokenizer="snac.24khz")
    with pytest.raises(TokenError, match="one frame rate"):
        as_multirate_tokens(Tokens(ids=torch.zeros(1, 3, 4, dtype=torch.long), codebook_size=4096), 4096, (4, 2, 1))
    bad = [x.clone() for x in t.levels]
    bad[2][1, 5] = 4096
    with pytest.raises(TokenError, match="item 1, level 2"):
        as_multirate_tokens(bad, 4096, (4, 2, 1))
    raw = as_multirate_tokens([x[0] for x in t.levels], 4096, (4, 2, 1))
    assert raw.batch_size == 1 and raw.strides == (4, 2, 1)
