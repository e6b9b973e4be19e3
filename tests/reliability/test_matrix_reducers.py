"""Matrix group: token reducers given bad schedules (types, ranges) and degenerate tokens (padding,
duplicates, all-equal rows, NaN, empty)."""

from __future__ import annotations

import torch
from zoo_plugins.reducers.policies.evit import EViTPolicy
from zoo_plugins.reducers.policies.mctf import MCTFPolicy
from zoo_plugins.reducers.policies.tome import parse_r
from zoo_plugins.reducers.reducers import (
    DiffRate,
    DivPrune,
    DyMU,
    EViT,
    HiPrune,
    MMTok,
    ToMe,
)

from zoo.errors import ReducerError

from .matrix import Row, check_row, params

R = ReducerError


def tokens(b=2, n=16, d=8, seed=0):
    return torch.randn(b, n, d, generator=torch.Generator().manual_seed(seed))


def padded(real=4, n=16):
    x = tokens(n=n)
    x[:, real:] = 0
    return x


def duplicated(n=16):
    x = tokens(n=4)
    return x.repeat(1, n // 4, 1)


def with_nan(value=float("nan")):
    x = tokens()
    x[1, 3, 2] = value
    return x


def distinct(keep, n=16):
    """A correct DivPrune result: ``keep`` distinct, ascending, in-range indices per item, and the
    kept tokens are the tokens at those indices."""

    def check(out):
        idx = out.indices
        assert idx.shape[1] == keep and all(len(set(row.tolist())) == keep for row in idx), idx
        assert bool((idx.diff(dim=1) > 0).all()) and int(idx.min()) >= 0 and int(idx.max()) < n, idx
        return True

    return check


def divprune(x, keep, **kw):
    return lambda env: DivPrune().reduce(x() if callable(x) else x, keep=keep, **kw)


def bind(policy, layers=12):
    def call(env):
        p = policy()
        p.bind(layers)
        return p
    return call


ROWS = [
    Row("divprune-zero-padding", divprune(padded, 8), check=distinct(8)),
    Row("divprune-mostly-padding", divprune(lambda: padded(real=1), 4), check=distinct(4)),
    Row("divprune-padding-kept-once", lambda env: DivPrune().reduce(padded(real=4), keep=5),
        check=lambda out: all(sum(1 for i in row.tolist() if i >= 4) == 1 for row in out.indices)),
    Row("divprune-padding-never-displaces-real", lambda env: DivPrune().reduce(padded(real=4), keep=4),
        check=lambda out: out.indices.tolist() == [[0, 1, 2, 3], [0, 1, 2, 3]]),
    Row("divprune-duplicates", divprune(duplicated, 8), check=distinct(8)),
    Row("divprune-duplicates-first-copies", lambda env: DivPrune().reduce(duplicated(), keep=4),
        check=lambda out: all(sorted({i % 4 for i in row.tolist()}) == [0, 1, 2, 3] for row in out.indices)),
    Row("divprune-all-equal", divprune(lambda: torch.ones(2, 16, 8), 5), check=distinct(5)),
    Row("divprune-all-zero", divprune(lambda: torch.zeros(2, 16, 8), 3), check=distinct(3)),
    Row("divprune-keep-all", divprune(tokens, 16), check=distinct(16)),
    Row("divprune-nan", divprune(with_nan, 4), R, ("nan",)),
    Row("divprune-inf", divprune(lambda: with_nan(float("inf")), 4), R, ("nan/inf",)),
    Row("divprune-unexpected-signal", divprune(tokens, 4, cls_attn=torch.zeros(2, 16)), R, ("unexpected signals", "cls_attn")),
    Row("keep-bool", divprune(tokens, True), R, ("keep", "true")),
    Row("keep-string", divprune(tokens, "8"), R, ("keep", "'8'", "str")),
    Row("keep-zero", divprune(tokens, 0), R, ("between 1 and the 16 tokens",)),
    Row("keep-too-many", divprune(tokens, 17), R, ("between 1 and the 16 tokens", "17")),
    Row("keep-negative", divprune(tokens, -3), R, ("keep",)),
    Row("keep-ratio-above-one", divprune(tokens, 1.5), R, ("(0, 1]", "1.5")),
    Row("keep-ratio-zero", divprune(tokens, 0.0), R, ("(0, 1]",)),
    Row("keep-ratio-nan", divprune(tokens, float("nan")), R, ("finite",)),
    Row("keep-none", divprune(tokens, None), R, ("keep", "none")),
    Row("keep-tiny-ratio-rounds-to-one", divprune(tokens, 0.01), check=distinct(1)),
    Row("tokens-int-dtype", divprune(lambda: torch.zeros(2, 16, 8, dtype=torch.long), 4), R, ("floating tokens", "int64")),
    Row("tokens-rank2", divprune(lambda: torch.zeros(16, 8), 4), R, ("[b, n, d]", "(16, 8)")),
    Row("tokens-not-tensor", divprune([[0.0]], 4), R, ("[b, n, d]", "list")),
    Row("tokens-empty-sequence", divprune(lambda: torch.zeros(2, 0, 8), 1), R, ("no tokens",)),
    Row("tokens-empty-batch", divprune(lambda: torch.zeros(0, 16, 8), 1), R, ("no tokens",)),
    Row("tome-reduce-inf", lambda env: ToMe().reduce(with_nan(float("-inf")), keep=8), R, ("nan/inf",)),
    Row("tome-reduce-ok", lambda env: ToMe().reduce(padded(), keep=8), check=lambda out: out.tokens.shape == (2, 8, 8)),
    Row("tome-r-fraction", lambda env: parse_r(12, 2.5), R, ("whole number", "2.5")),
    Row("tome-r-string", lambda env: parse_r(12, "8"), R, ("string '8'",)),
    Row("tome-r-bool", lambda env: parse_r(12, True), R, ("bool",)),
    Row("tome-r-negative", lambda env: parse_r(12, -1), R, (">= 0",)),
    Row("tome-r-inflection-out", lambda env: parse_r(12, (8, 2.0)), R, ("inflection", "[-1, 1]")),
    Row("tome-r-inflection-string", lambda env: parse_r(12, (8, "-1")), R, ("inflection must be a number",)),
    Row("tome-r-tuple-arity", lambda env: parse_r(12, (8, 0.5, 1)), R, ("(r, inflection)",)),
    Row("tome-r-list-with-float", lambda env: parse_r(12, [8, 2.0]), R, ("r[1]", "whole number")),
    Row("tome-r-list-too-long", lambda env: parse_r(2, [1, 1, 1]), R, ("3 values", "2 blocks")),
    Row("tome-r-ok", lambda env: parse_r(4, (8, -1)), check=lambda r: r == [16, 10, 5, 0]),
    Row("mctf-r-fraction-count", lambda env: MCTFPolicy(r=2.5), R, ("token count", "ratio")),
    Row("mctf-r-string", lambda env: MCTFPolicy(r="16"), R, ("mctf r must be a number",)),
    Row("mctf-r-negative", lambda env: MCTFPolicy(r=-1), R, ("mctf r",)),
    Row("mctf-bad-pooling", lambda env: MCTFPolicy(pooling="max"), R, ("pooling", "'max'")),
    Row("mctf-layer-outside", bind(lambda: MCTFPolicy(layers=[20])), R, ("[20]", "12 blocks")),
    Row("evit-keep-rate-zero", bind(lambda: EViTPolicy(keep_rate=0.0)), R, ("keep_rate", "(0, 1]")),
    Row("evit-keep-rate-string", bind(lambda: EViTPolicy(keep_rate="0.7")), R, ("keep_rate must be a number",)),
    Row("evit-rates-mismatch", bind(lambda: EViTPolicy(keep_rate=[0.7, 0.7])), R, ("2 keep rates", "3 locations")),
    Row("evit-location-outside", bind(lambda: EViTPolicy(locations=(3, 40))), R, ("location 40",)),
    Row("evit-reduce-without-cls-attn", lambda env: EViT().reduce(tokens(), keep=4), R, ("cls_attn",)),
    Row("dymu-too-many-merges", lambda env: DyMU().reduce(tokens(), keep=2), R, ("at most half",)),
    Row("dymu-threshold-string", lambda env: DyMU().reduce(tokens(), threshold="0.8"), R, ("threshold", "'0.8'")),
    Row("dymu-threshold-nan", lambda env: DyMU().reduce(tokens(), threshold=float("nan")), R, ("finite",)),
    Row("dymu-threshold-and-keep", lambda env: DyMU().reduce(tokens(), keep=12, threshold=0.5), R, ("not both",)),
    Row("hiprune-alpha-string", lambda env: HiPrune().reduce(tokens(), 0.5, torch.rand(2, 16), torch.rand(2, 16), alpha="x"), R,
        ("alpha must be a number",)),
    Row("hiprune-alpha-above-one", lambda env: HiPrune().reduce(tokens(), 0.5, torch.rand(2, 16), torch.rand(2, 16), alpha=2.0), R,
        ("[0, 1]",)),
    Row("mmtok-nan-alpha", lambda env: MMTok().reduce(tokens(), 4, text=torch.randn(2, 3, 8), alpha=float("nan")), R, ("finite",)),
    Row("mmtok-zero-temperature", lambda env: MMTok().reduce(tokens(), 4, text=torch.randn(2, 3, 8), text_temperature=0.0), R, ("> 0",)),
    Row("mmtok-exclude-too-much", lambda env: MMTok().reduce(tokens(), 8, text=torch.randn(2, 3, 8),
                                                             exclude=torch.arange(16).expand(2, 16) < 12), R, ("fewer than keep=8",)),
    Row("diffrate-no-schedule", lambda env: DiffRate().policy(), R, ("needs a schedule",)),
    Row("diffrate-half-schedule", lambda env: DiffRate().policy(prune_kept=[10]), R, ("both prune_kept and merge_kept",)),
    Row("post-encoder-only-apply", lambda env: DivPrune().apply(torch.nn.Linear(2, 2)), R, ("reduces tokens after an encoder",)),
]


@params(ROWS)
def test_reducers(row, env):
    check_row(row, env)
