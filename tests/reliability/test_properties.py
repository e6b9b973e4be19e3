"""Property-based tests (hypothesis, derandomized): invariants of Tokens/Latents and the shape
contracts of encode/decode on tiny random models (patchvq at several sizes, the FlexTok demo)."""

from __future__ import annotations

import functools
from dataclasses import replace

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from zoo.errors import MediaError, TokenError
from zoo.interfaces import Latents, Tokens, as_latents, as_tokens

SETTINGS = settings(derandomize=True, deadline=None, max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
SLOW = settings(derandomize=True, deadline=None, max_examples=6, suppress_health_check=[HealthCheck.function_scoped_fixture])


@st.composite
def token_batches(draw, codebooks=False):
    b = draw(st.integers(1, 4))
    n = draw(st.integers(1, 12))
    q = draw(st.sampled_from([None, 1, 3])) if codebooks else None
    size = draw(st.integers(1, 1000))
    seed = draw(st.integers(0, 2**31 - 1))
    lengths = draw(st.lists(st.integers(0, n), min_size=b, max_size=b))
    shape = (b, n) if q is None else (b, q, n)
    ids = torch.randint(0, size, shape, generator=torch.Generator().manual_seed(seed))
    return Tokens(ids=ids, codebook_size=size, tokenizer="demo.tiny", lengths=torch.tensor(lengths))


@st.composite
def counts_within(draw, lengths):
    return [draw(st.integers(1, int(n))) for n in lengths]


@SETTINGS
@given(t=token_batches(codebooks=True), data=st.data())
def test_tokens_truncate_keeps_prefixes_and_pads_the_rest(t, data):
    assert t.lengths.shape == (t.batch_size,) and int(t.lengths.max()) <= t.max_length
    t.check_range()
    if int(t.lengths.min()) < 1:
        with pytest.raises(TokenError):
            t.truncate(1)
        return
    keep = data.draw(counts_within(t.lengths.tolist()))
    cut = t.truncate(keep)
    assert cut.lengths.tolist() == keep and cut.max_length == max(keep)
    for b, k in enumerate(keep):
        assert torch.equal(cut.ids[b, ..., :k], t.ids[b, ..., :k])
        assert bool((cut.ids[b, ..., k:] == t.pad_id).all())
    assert [x.shape[-1] for x in cut.to_list()] == keep
    assert cut.tokenizer == t.tokenizer and cut.codebook_size == t.codebook_size


@SETTINGS
@given(t=token_batches())
def test_as_tokens_round_trips_the_per_item_list(t):
    if int(t.lengths.min()) < 1:
        with pytest.raises(TokenError, match="at least one valid token"):
            as_tokens(t, t.codebook_size, "demo.tiny")
        return
    again = as_tokens(t.to_list(), t.codebook_size, "demo.tiny")
    assert again.lengths.tolist() == t.lengths.tolist()
    for b, n in enumerate(t.lengths.tolist()):
        assert torch.equal(again.ids[b, :n], t.ids[b, :n])
    assert as_tokens(t, t.codebook_size, "demo.tiny") is t


@SETTINGS
@given(t=token_batches(), data=st.data())
def test_out_of_range_ids_are_refused_only_where_valid(t, data):
    b = data.draw(st.integers(0, t.batch_size - 1))
    bad = data.draw(st.sampled_from([-1, t.codebook_size, t.codebook_size + 7]))
    ids = t.ids.clone()
    n = int(t.lengths[b])
    if n < t.max_length:  # a bad id in the padding is not a valid token: accepted
        ids[b, n] = bad
        replace(t, ids=ids).check_range()
    if n >= 1:
        ids[b, n - 1] = bad
        with pytest.raises(TokenError, match=f"item {b}"):
            replace(t, ids=ids).check_range()


@SETTINGS
@given(a=st.from_regex(r"[a-z]{1,6}\.[a-z0-9_]{1,6}", fullmatch=True), b=st.from_regex(r"[a-z]{1,6}\.[a-z0-9_]{1,6}", fullmatch=True))
def test_tokens_from_another_card_are_refused(a, b):
    t = Tokens(ids=torch.zeros(1, 3, dtype=torch.long), codebook_size=8, tokenizer=a)
    if a.lower() == b.lower():
        assert as_tokens(t, 8, b) is t
    else:
        with pytest.raises(TokenError, match="made by"):
            as_tokens(t, 8, b)
    assert as_tokens(t.ids, 8, b).tokenizer == b  # raw ids carry no provenance


@SETTINGS
@given(b=st.integers(1, 3), n=st.integers(1, 10), c=st.integers(1, 6), data=st.data())
def test_latents_truncate_zeroes_the_tail_and_round_trips(b, n, c, data):
    seed = data.draw(st.integers(0, 2**31 - 1))
    z = Latents(values=torch.randn(b, n, c, generator=torch.Generator().manual_seed(seed)), tokenizer="demo.vae")
    keep = data.draw(st.lists(st.integers(1, n), min_size=b, max_size=b))
    cut = z.truncate(keep)
    assert cut.lengths.tolist() == keep and cut.max_length == max(keep) and cut.dim == c
    for i, k in enumerate(keep):
        assert torch.equal(cut.values[i, :k], z.values[i, :k]) and bool((cut.values[i, k:] == 0).all())
    again = as_latents(cut.to_list(), dim=c, tokenizer="demo.vae")
    assert again.lengths.tolist() == keep and torch.equal(again.values, cut.values)


@functools.cache
def _patchvq(image_size: int, patch_size: int, codebook_size: int):
    from zoo_patchvq.model import PatchVQ, PatchVQConfig

    torch.manual_seed(image_size * 100 + patch_size)
    return PatchVQ(PatchVQConfig(image_size=image_size, patch_size=patch_size, dim=8, codebook_size=codebook_size)).eval()


@SETTINGS
@given(size=st.sampled_from([8, 16, 32]), patch=st.sampled_from([2, 4, 8]), codebook=st.sampled_from([2, 16, 64]),
       b=st.integers(1, 3), seed=st.integers(0, 1000), data=st.data())
def test_patchvq_encode_decode_shape_contract(size, patch, codebook, b, seed, data):
    model = _patchvq(size, patch, codebook)
    x = torch.rand(b, 3, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1
    n = (size // patch) ** 2
    with torch.no_grad():
        tokens = model.encode(x)
        assert tokens.ids.shape == (b, n) and tokens.lengths.tolist() == [n] * b
        assert int(tokens.ids.min()) >= 0 and int(tokens.ids.max()) < codebook
        k = data.draw(st.integers(1, n))
        out = model.decode(tokens.truncate(k))
        assert out.shape == (b, 3, size, size) and bool(torch.isfinite(out).all())
        assert float(out.abs().max()) <= 1.0
        assert torch.equal(model.encode(x).ids, tokens.ids)  # deterministic
    with pytest.raises(MediaError, match=f"takes {size}x{size}"):
        model.encode(torch.zeros(b, 3, size + patch, size + patch))


@pytest.fixture(scope="module")
def demo():
    import zoo

    return zoo.load("flextok.demo_128")


@SLOW
@given(b=st.integers(1, 2), k=st.integers(1, 64), seed=st.integers(0, 1000))
def test_flextok_demo_encode_decode_shape_contract(demo, b, k, seed):
    x = torch.rand(b, 3, 128, 128, generator=torch.Generator().manual_seed(seed)) * 2 - 1
    tokens = demo.encode(x)
    assert tokens.ids.shape == (b, 64) and tokens.tokenizer == "flextok.demo_128"
    assert int(tokens.ids.min()) >= 0 and int(tokens.ids.max()) < demo.codebook_size
    out = demo.decode(tokens.truncate(k), steps=1, generator=torch.Generator().manual_seed(seed))
    assert out.shape == (b, 3, 128, 128) and bool(torch.isfinite(out).all())


@SETTINGS
@given(n=st.integers(2, 24), d=st.integers(1, 6), data=st.data())
def test_divprune_always_gives_distinct_sorted_indices(n, d, data):
    from zoo_plugins.reducers.reducers import DivPrune

    seed = data.draw(st.integers(0, 2**31 - 1))
    base = torch.randn(2, max(1, n // 3), d, generator=torch.Generator().manual_seed(seed))
    rows = data.draw(st.lists(st.sampled_from(["copy", "zero", "fresh"]), min_size=n, max_size=n))
    x = torch.randn(2, n, d, generator=torch.Generator().manual_seed(seed + 1))
    for i, kind in enumerate(rows):
        if kind == "copy":
            x[:, i] = base[:, i % base.shape[1]]
        elif kind == "zero":
            x[:, i] = 0
    keep = data.draw(st.integers(1, n))
    out = DivPrune().reduce(x, keep=keep)
    for row in out.indices.tolist():
        assert len(row) == keep and len(set(row)) == keep and row == sorted(row) and 0 <= row[0] and row[-1] < n
    assert torch.equal(out.tokens, x.gather(1, out.indices[..., None].expand(-1, -1, d)))
