"""Matrix group: tensors given to encoders and to the value types (rank, layout, dtype, range,
NaN/Inf, empty, huge, wrong size)."""

from __future__ import annotations

import numpy as np
import torch

from zoo.errors import InputTypeError, MediaError, TokenError
from zoo.interfaces import Latents, as_latents
from zoo.media.audio import AudioError, prepare_audio
from zoo.media.image import check_images, to_tensor

from .matrix import Row, check_row, params


def enc(x):
    return lambda env: env.patchvq.encode(x() if callable(x) else x)


def flex(x):
    return lambda env: env.flextok.encode(x)


def img(*shape, fill=0.0, dtype=torch.float32):
    return torch.full(shape, fill, dtype=dtype)


def with_value(value, at=(0, 1, 2, 3)):
    x = img(2, 3, 32, 32)
    x[at] = value
    return x


ROWS = [
    Row("image-rank3", enc(img(3, 32, 32)), MediaError, ("[b, 3, h, w]", "x[none]")),
    Row("image-rank5", enc(img(1, 1, 3, 32, 32)), MediaError, ("[b, 3, h, w]",)),
    Row("image-channels-last", enc(img(1, 32, 32, 3)), MediaError, ("[b, 3, h, w]", "(1, 32, 32, 3)")),
    Row("image-grey-1-channel", enc(img(1, 1, 32, 32)), MediaError, ("[b, 3, h, w]",)),
    Row("image-uint8", enc(img(1, 3, 32, 32, dtype=torch.uint8)), InputTypeError, ("torch.uint8", "x / 127.5 - 1")),
    Row("image-int64", enc(img(1, 3, 32, 32, dtype=torch.int64)), InputTypeError, ("torch.int64",)),
    Row("image-bool", enc(img(1, 3, 32, 32, dtype=torch.bool)), InputTypeError, ("torch.bool",)),
    Row("image-0-255-range", enc(img(1, 3, 32, 32, fill=200.0)), MediaError, ("[-1, 1]", "uint8")),
    Row("image-0-1-range-ok", enc(img(1, 3, 32, 32, fill=1.0)), check=lambda t: t.ids.shape == (1, 64)),
    Row("image-nan-pixel", enc(with_value(float("nan"))), MediaError, ("1 nan/inf", "patchvq.tiny")),
    Row("image-inf-pixel", enc(with_value(float("inf"))), MediaError, ("nan/inf",)),
    Row("image-neg-inf-pixel", enc(with_value(float("-inf"))), MediaError, ("nan/inf",)),
    Row("image-empty-batch", enc(img(0, 3, 32, 32)), MediaError, ("no images",)),
    Row("image-zero-width", enc(img(1, 3, 32, 0)), MediaError, ("no images",)),
    Row("image-wrong-size", enc(img(1, 3, 16, 16)), MediaError, ("takes 32x32", "got 16x16", "size=32")),
    Row("image-non-square", enc(img(1, 3, 32, 48)), MediaError, ("takes 32x32", "got 32x48")),
    Row("image-huge", enc(lambda: torch.zeros(1, 1, 1, 1).expand(1, 3, 8192, 8192)), MediaError, ("takes 32x32", "8192x8192")),
    Row("flextok-demo-32x32", flex(img(1, 3, 32, 32)), MediaError, ("flextok.demo_128 takes 128x128", "got 32x32")),
    Row("flextok-demo-nan", flex(img(1, 3, 128, 128, fill=float("nan"))), MediaError, ("nan/inf",)),
    Row("vae-nan-image", lambda env: env.flextok.vae.vae.encode(img(1, 3, 64, 64, fill=float("nan"))), MediaError, ("nan/inf",)),
    Row("vae-empty-batch", lambda env: env.flextok.vae.vae.encode(img(0, 3, 64, 64)), MediaError, ("empty",)),
    Row("vae-nan-latents", lambda env: env.flextok.vae.vae.decode(img(1, 16, 8, 8, fill=float("nan"))), MediaError, ("latents", "nan/inf")),
    Row("image-list-not-tensor", enc([[0.0]]), InputTypeError, ("got list", "to_tensor")),
    Row("image-numpy-not-tensor", enc(np.zeros((1, 3, 32, 32), np.float32)), InputTypeError, ("ndarray",)),
    Row("image-float64-ok", enc(img(1, 3, 32, 32, dtype=torch.float64)), check=lambda t: t.ids.shape == (1, 64)),
    Row("to-tensor-float-array", lambda env: to_tensor(np.zeros((8, 8, 3), np.float32)), InputTypeError, ("uint8",)),
    Row("to-tensor-empty-list", lambda env: to_tensor([]), MediaError, ("no images",)),
    Row("to-tensor-mixed-sizes", lambda env: to_tensor([np.zeros((8, 8, 3), np.uint8), np.zeros((9, 8, 3), np.uint8)]),
        MediaError, ("different sizes", "size=")),
    Row("to-tensor-2-channels", lambda env: to_tensor(np.zeros((8, 8, 2), np.uint8)), MediaError, ("hxwx3",)),
    Row("to-tensor-zero-size", lambda env: to_tensor(np.zeros((0, 8, 3), np.uint8)), MediaError, ("empty",)),
    Row("check-images-multiple-of", lambda env: check_images(img(1, 3, 30, 30), multiple_of=8), MediaError, ("multiples of 8", "30x30")),
    Row("latents-int-values", lambda env: Latents(values=torch.zeros(1, 4, 2, dtype=torch.long)), InputTypeError, ("float tensor",)),
    Row("latents-rank2", lambda env: Latents(values=torch.zeros(4, 2)), TokenError, ("[b, n, c]",)),
    Row("latents-lengths-float", lambda env: Latents(values=torch.zeros(1, 4, 2), lengths=torch.tensor([2.5])), InputTypeError, ("integer counts",)),
    Row("latents-lengths-too-long", lambda env: Latents(values=torch.zeros(1, 4, 2), lengths=[5]), TokenError, ("[0, 4]",)),
    Row("latents-nan", lambda env: as_latents(torch.full((1, 4, 2), float("nan"))), TokenError, ("nan",)),
    Row("latents-wrong-channels", lambda env: as_latents(torch.zeros(1, 4, 3), dim=2), TokenError, ("3 channels", "takes 2")),
    Row("latents-empty-list", lambda env: as_latents([]), TokenError, ("empty batch",)),
    Row("latents-empty-batch", lambda env: as_latents(torch.zeros(0, 4, 2)), TokenError, ("no latents",)),
    Row("latents-ragged-channels", lambda env: as_latents([torch.zeros(2, 3), torch.zeros(2, 4)]), TokenError, ("different channel counts",)),
    Row("latents-foreign-tokenizer", lambda env: as_latents(Latents(values=torch.zeros(1, 2, 2), tokenizer="a.vae"), tokenizer="b.vae"),
        TokenError, ("made by 'a.vae'", "'b.vae'")),
    Row("audio-nan", lambda env: prepare_audio(torch.tensor([0.0, float("nan")]), 24000, 24000), AudioError, ("nan/inf",)),
    Row("audio-int-samples", lambda env: prepare_audio(torch.zeros(10, dtype=torch.int16), 24000, 24000), AudioError, ("float samples",)),
    Row("audio-rank4", lambda env: prepare_audio(torch.zeros(1, 1, 1, 10), 24000, 24000), AudioError, ("[l] or [c, l]",)),
    Row("audio-empty", lambda env: prepare_audio(torch.zeros(0), 24000, 24000), AudioError, ("0 samples",)),
    Row("audio-rate-float", lambda env: prepare_audio(torch.zeros(10), 22050.5, 24000), AudioError, ("sample_rate", "22050.5")),
    Row("audio-rate-zero", lambda env: prepare_audio(torch.zeros(10), 0, 24000), AudioError, ("sample_rate",)),
]


@params(ROWS)
def test_tensors(row, env):
    check_row(row, env)
