"""The Tokens value type and the image helpers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from zoo.interfaces import Tokens, as_tokens
from zoo.media.image import load_images, make_grid, to_pil, to_tensor


def test_truncate_per_item_pads_and_keeps_lengths():
    t = Tokens(ids=torch.arange(1, 9).view(2, 4), codebook_size=16, tokenizer="x.y")
    r = t.truncate([1, 3])
    assert r.ids.tolist() == [[1, 0, 0], [5, 6, 7]] and r.lengths.tolist() == [1, 3]
    assert [x.tolist() for x in r.to_list()] == [[[1]], [[5, 6, 7]]]
    with pytest.raises(ValueError, match="counts must lie in \\[1, length\\]"):
        r.truncate([2, 2])  # item 0 only has 1 token
    with pytest.raises(ValueError, match="one count per item"):
        t.truncate([1, 2, 3])


@pytest.mark.parametrize(
    "given, lengths",
    [
        (torch.tensor([[1, 2, 3]]), [3]),
        (torch.tensor([4, 5]), [2]),
        ([torch.tensor([[1, 2, 3]]), torch.tensor([[4]])], [3, 1]),
        ([torch.tensor([1, 2]), torch.tensor([3, 4])], [2, 2]),
    ],
)
def test_as_tokens_accepts_reference_formats(given, lengths):
    assert as_tokens(given, 10).lengths.tolist() == lengths


@pytest.mark.parametrize(
    "given, error, message",
    [
        (torch.tensor([[1, 10]]), ValueError, "codebook has 10 entries"),
        (torch.tensor([[-1, 2]]), ValueError, "lie in \\[-1, 2\\]"),
        ([], ValueError, "no token sequences"),
        ([torch.zeros(2, 2, dtype=torch.long)], ValueError, "must be \\[1, k\\]"),
        ("1 2 3", TypeError, "expected Tokens"),
        (torch.zeros(1, 3), TypeError, "integer tensor"),
    ],
)
def test_as_tokens_rejects(given, error, message):
    with pytest.raises(error, match=message):
        as_tokens(given, 10)


def test_codebook_mismatch_is_reported():
    with pytest.raises(ValueError, match="codebook of 64000 .*this tokenizer has 4096"):
        as_tokens(Tokens(ids=torch.zeros(1, 2, dtype=torch.long), codebook_size=64000, tokenizer="flextok"), 4096)


def test_image_helpers_round_trip(tmp_path):
    arr = (np.arange(16 * 16 * 3) % 256).astype(np.uint8).reshape(16, 16, 3)
    x = to_tensor(arr)
    assert x.shape == (1, 3, 16, 16) and -1 <= float(x.min()) and float(x.max()) <= 1
    back = np.asarray(to_pil(x)[0])
    assert np.array_equal(back, arr)
    to_pil(x)[0].save(tmp_path / "a.png")
    loaded = load_images([tmp_path / "a.png"], size=8)
    assert loaded.shape == (1, 3, 8, 8)
    grid = make_grid([[x[0], x[0]]], col_labels=["a", "b"])
    assert grid.width > 32


@pytest.mark.parametrize(
    "bad, message",
    [
        (np.zeros((4, 4, 3), dtype=np.float32), "must be uint8"),
        (np.zeros((4, 4, 5), dtype=np.uint8), "HxWx3"),
        (3.5, "cannot read an image"),
        ("/no/such.png", "image not found"),
    ],
)
def test_image_helper_errors(bad, message):
    with pytest.raises((TypeError, ValueError, FileNotFoundError), match=message):
        to_tensor(bad)


def test_differently_sized_images_need_size():
    with pytest.raises(ValueError, match="pass size="):
        to_tensor([np.zeros((4, 4, 3), np.uint8), np.zeros((8, 8, 3), np.uint8)])


def test_latents_truncate_zeroes_the_tail_and_keeps_lengths():
    from zoo.interfaces import Latents

    z = Latents(values=torch.arange(1.0, 13.0).view(2, 3, 2), tokenizer="x.vae")
    assert (len(z), z.max_length, z.dim, z.lengths.tolist()) == (2, 3, 2, [3, 3])
    r = z.truncate([1, 2])
    assert r.values.tolist() == [[[1, 2], [0, 0]], [[7, 8], [9, 10]]] and r.lengths.tolist() == [1, 2]
    assert [x.shape for x in r.to_list()] == [(1, 1, 2), (1, 2, 2)] and r.tokenizer == "x.vae"
    assert z.values[0, 1].tolist() == [3, 4]  # truncate copies
    with pytest.raises(ValueError, match="counts must lie in \\[1, length\\]"):
        r.truncate([2, 2])
    with pytest.raises(ValueError, match="one count per item"):
        z.truncate([1, 2, 3])


@pytest.mark.parametrize(
    "given, lengths",
    [
        (torch.zeros(2, 3, 4), [3, 3]),
        (torch.zeros(3, 4), [3]),
        ([torch.zeros(1, 3, 4), torch.zeros(2, 4)], [3, 2]),
    ],
)
def test_as_latents_accepts_tensors_and_ragged_lists(given, lengths):
    from zoo.interfaces import as_latents

    z = as_latents(given, dim=4)
    assert z.lengths.tolist() == lengths and z.values.shape == (len(lengths), max(lengths), 4)


@pytest.mark.parametrize(
    "given, error, message",
    [
        (torch.zeros(1, 3, 4, dtype=torch.long), TypeError, "integer ids are Tokens"),
        (torch.zeros(1, 3, 5), ValueError, "5 channels per token"),
        (torch.zeros(1, 1, 3, 4), ValueError, "\\[B, N, C\\]"),
        ([torch.zeros(2, 4), torch.zeros(2, 5)], ValueError, "different channel counts"),
        ([torch.zeros(0, 4)], ValueError, "k >= 1"),
        ([], ValueError, "no latent sequences"),
        ("z.pt", TypeError, "expected Latents"),
    ],
)
def test_as_latents_rejects(given, error, message):
    from zoo.interfaces import as_latents

    with pytest.raises(error, match=message):
        as_latents(given, dim=4)
