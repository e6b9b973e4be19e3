"""Matrix group: token ids given to decoders and to the Tokens type (range, dtype, layout, foreign
tokenizer, too long, empty), and decode arguments (steps, guidance)."""

from __future__ import annotations

from dataclasses import replace

import torch

from zoo.errors import InputError, InputTypeError, TokenError
from zoo.interfaces import Latents, Tokens, as_tokens

from .matrix import Row, check_row, params


def dec(tokens, **kw):
    return lambda env: env.patchvq.decode(tokens(env) if callable(tokens) else tokens, **kw)


def fdec(tokens, **kw):
    return lambda env: env.flextok.decode(tokens(env) if callable(tokens) else tokens, **{"steps": 1, **kw})


def ids(*shape, fill=0, dtype=torch.long):
    return torch.full(shape, fill, dtype=dtype)


def own_tokens(env):
    return env.patchvq.encode(torch.zeros(2, 3, 32, 32))


def flex_tokens(env):
    return env.flextok.encode(torch.zeros(1, 3, 128, 128))


ROWS = [
    Row("id-at-codebook-size", dec(ids(1, 64, fill=64)), TokenError, ("[64, 64]", "64 entries", "0..63")),
    Row("id-negative", dec(ids(1, 64, fill=-1)), TokenError, ("[-1, -1]", "valid ids")),
    Row("id-huge", dec(ids(1, 64, fill=2**40)), TokenError, ("valid ids",)),
    Row("ids-float", dec(ids(1, 64, dtype=torch.float32)), InputTypeError, ("integer tensor", "torch.float32")),
    Row("ids-bool", dec(ids(1, 64, dtype=torch.bool)), InputTypeError, ("torch.bool",)),
    Row("ids-complex", dec(torch.zeros(1, 64, dtype=torch.complex64)), InputTypeError, ("complex64",)),
    Row("ids-string", dec("1,2,3"), InputTypeError, ("got str",)),
    Row("ids-list-of-floats", dec([torch.tensor([1.0, 2.0])]), InputTypeError, ("sequence 0", "integer ids")),
    Row("ids-list-of-strings", dec([["a", "b"]]), InputTypeError, ("sequence 0",)),
    Row("ids-empty-list", dec([]), TokenError, ("empty batch",)),
    Row("ids-empty-batch", dec(ids(0, 64)), TokenError, ("no tokens to decode",)),
    Row("ids-zero-length", dec(ids(1, 0)), TokenError, ("no tokens to decode",)),
    Row("ids-empty-item", dec([torch.tensor([1, 2]), torch.tensor([], dtype=torch.long)]), TokenError, ("sequence 1", "k >= 1")),
    Row("ids-rank4", dec(ids(1, 1, 1, 64)), TokenError, ("[b, n] or [b, q, n]",)),
    Row("ids-too-long", dec(ids(1, 65)), TokenError, ("at most 64 ids", "(1, 65)")),
    Row("ids-multi-codebook-to-single", dec(ids(1, 2, 8)), TokenError, ("[b, k]",)),
    Row("ids-python-lists-ok", dec([[1, 2, 3], [4]]), check=lambda x: x.shape == (2, 3, 32, 32)),
    Row("ids-int32-ok", dec(ids(1, 64, dtype=torch.int32)), check=lambda x: x.shape == (1, 3, 32, 32)),
    Row("foreign-tokenizer", dec(lambda env: replace(own_tokens(env), tokenizer="other_family.tiny")), TokenError,
        ("made by 'other_family.tiny'", "patchvq.tiny", "tokens.ids")),
    Row("foreign-tokenizer-raw-ids-ok", dec(lambda env: replace(own_tokens(env), tokenizer="other_family.tiny").ids),
        check=lambda x: x.shape == (2, 3, 32, 32)),
    Row("foreign-codebook-size", dec(lambda env: replace(own_tokens(env), tokenizer="", codebook_size=128)), TokenError,
        ("codebook of 128", "has 64")),
    Row("flextok-tokens-to-patchvq", dec(flex_tokens), TokenError, ("made by 'flextok.demo_128'",)),
    Row("patchvq-tokens-to-flextok", fdec(own_tokens), TokenError, ("made by 'patchvq.tiny'", "flextok.demo_128")),
    Row("flextok-too-many-tokens", fdec(ids(1, 65)), TokenError, ("1..64 tokens",)),
    Row("flextok-3d-ids", fdec(ids(1, 2, 8)), TokenError, ("[b, n]",)),
    Row("flextok-id-out-of-fsq-range", fdec(ids(1, 4, fill=40)), TokenError, ("40 entries",)),
    Row("flextok-nan-guidance", fdec(ids(1, 4), guidance_scale=float("nan")), InputError, ("guidance scale", "finite")),
    Row("flextok-inf-guidance", fdec(ids(1, 4), guidance_scale=float("inf")), InputError, ("finite",)),
    Row("flextok-string-guidance", fdec(ids(1, 4), guidance_scale="7.5"), InputError, ("guidance scale",)),
    Row("flextok-zero-steps", fdec(ids(1, 4), steps=0), InputError, ("steps", ">= 1")),
    Row("flextok-fractional-steps", fdec(ids(1, 4), steps=2.5), InputError, ("steps", "2.5")),
    Row("flextok-generator-not-generator", fdec(ids(1, 4), generator="seed"), InputTypeError, ("torch.generator",)),
    Row("flextok-norm-guidance-string", fdec(ids(1, 4), norm_guidance="yes"), InputTypeError, ("norm_guidance", "True, False or None")),
    Row("flextok-norm-guidance-int", fdec(ids(1, 4), norm_guidance=1), InputTypeError, ("norm_guidance",)),
    Row("flextok-latent-size-zero", fdec(ids(1, 4), latent_size=0), InputError, ("latent_size", "positive")),
    Row("flextok-latent-size-negative", fdec(ids(1, 4), latent_size=(4, -1)), InputError, ("latent_size",)),
    Row("flextok-prefix-ok", fdec(lambda env: flex_tokens(env).truncate(3)), check=lambda x: x.shape == (1, 3, 128, 128) and bool(torch.isfinite(x).all())),
    Row("tokens-ids-not-tensor", lambda env: Tokens(ids=[[1, 2]], codebook_size=4), InputTypeError, ("got list",)),
    Row("tokens-ids-1d", lambda env: Tokens(ids=torch.zeros(4, dtype=torch.long), codebook_size=4), TokenError, ("[b, n]",)),
    Row("tokens-codebook-zero", lambda env: Tokens(ids=ids(1, 4), codebook_size=0), InputTypeError, ("positive int",)),
    Row("tokens-codebook-float", lambda env: Tokens(ids=ids(1, 4), codebook_size=4.0), InputTypeError, ("positive int",)),
    Row("tokens-tokenizer-not-str", lambda env: Tokens(ids=ids(1, 4), codebook_size=4, tokenizer=None), InputTypeError, ("model name",)),
    Row("tokens-lengths-too-long", lambda env: Tokens(ids=ids(1, 4), codebook_size=4, lengths=[5]), TokenError, ("[0, 4]",)),
    Row("tokens-lengths-negative", lambda env: Tokens(ids=ids(1, 4), codebook_size=4, lengths=[-1]), TokenError, ("[0, 4]",)),
    Row("tokens-lengths-float", lambda env: Tokens(ids=ids(1, 4), codebook_size=4, lengths=[2.5]), InputTypeError, ("integer counts",)),
    Row("tokens-lengths-wrong-batch", lambda env: Tokens(ids=ids(2, 4), codebook_size=4, lengths=[1]), TokenError, ("[b]=2",)),
    Row("truncate-zero", lambda env: Tokens(ids=ids(1, 4), codebook_size=4).truncate(0), TokenError, ("[1, length]",)),
    Row("truncate-past-length", lambda env: Tokens(ids=ids(1, 4), codebook_size=4).truncate(9), TokenError, ("[1, length]",)),
    Row("truncate-fractional", lambda env: Tokens(ids=ids(1, 4), codebook_size=4).truncate(2.5), InputTypeError, ("must be ints", "2.5")),
    Row("truncate-bool", lambda env: Tokens(ids=ids(1, 4), codebook_size=4).truncate(True), InputTypeError, ("must be ints",)),
    Row("latents-truncate-fractional", lambda env: Latents(values=torch.zeros(1, 4, 2)).truncate([1.5]), InputTypeError, ("must be ints",)),
    Row("truncate-wrong-count", lambda env: Tokens(ids=ids(2, 4), codebook_size=4).truncate([1, 2, 3]), TokenError, ("one count per item",)),
    Row("tokens-to-unknown-device", lambda env: Tokens(ids=ids(1, 4), codebook_size=4).to("gpu"), InputError, ("'gpu'", "'cpu'")),
    Row("tokens-to-absent-cuda", lambda env: Tokens(ids=ids(1, 4), codebook_size=4).to("cuda"), InputError, ("no cuda device",),
        ) if not torch.cuda.is_available() else Row("tokens-to-cuda-ok", lambda env: Tokens(ids=ids(1, 4), codebook_size=4).to("cuda"),
                                                      check=lambda t: t.ids.is_cuda),
    Row("latents-to-unknown-device", lambda env: Latents(values=torch.zeros(1, 4, 2)).to("tpu0"), InputError, ("'tpu0'",)),
    Row("tokens-to-cpu-ok", lambda env: Tokens(ids=ids(1, 4), codebook_size=4).to("cpu"), check=lambda t: t.ids.device.type == "cpu"),
    Row("as-tokens-not-a-container", lambda env: as_tokens(42, 4), InputTypeError, ("got int",)),
    Row("as-tokens-zero-valid-tokens", lambda env: as_tokens(Tokens(ids=ids(1, 4), codebook_size=4, lengths=[0]), 4), TokenError,
        ("at least one valid token",)),
]


@params(ROWS)
def test_tokens(row, env):
    check_row(row, env)
