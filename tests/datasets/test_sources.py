"""zoo.datasets.sources: INPUT arguments -> sorted keyed items, and items -> model inputs."""

from __future__ import annotations

import pytest
import torch

from zoo.datasets import Item, ItemLoader, list_items
from zoo.errors import InputError, MediaError

from .conftest import DEMO, png_bytes, wav_bytes, write_parquet, write_tar


def test_directory_walk_is_recursive_sorted_and_lists_what_it_ignores(image_dir):
    listing = list_items([image_dir])
    assert [i.key for i in listing.items] == ["broken.png", "cats/01.png", "cats/03.png", "cats/05.png",
                                              "dogs/00.png", "dogs/02.png", "dogs/04.png"]
    assert {i.modality for i in listing.items} == {"image"}
    assert listing.ignored == [("labels.txt", "not an image, audio, Parquet or tar file (by extension)")]


def test_listing_does_not_depend_on_argument_order_or_repeats(image_dir):
    a = list_items([image_dir / "cats", image_dir / "dogs"])
    b = list_items([image_dir / "dogs", image_dir / "cats", image_dir / "dogs"])
    assert [i.key for i in a.items] == [i.key for i in b.items] == ["00.png", "01.png", "02.png", "03.png", "04.png", "05.png"]
    assert a.digest() == b.digest() != list_items([image_dir / "cats"]).digest()


def test_glob_keys_are_relative_to_the_fixed_prefix(image_dir):
    listing = list_items([str(image_dir / "**" / "0[0-3].png")])
    assert [i.key for i in listing.items] == ["cats/01.png", "cats/03.png", "dogs/00.png", "dogs/02.png"]


def test_named_file_without_extension_is_sniffed(tmp_path):
    (tmp_path / "blob").write_bytes(png_bytes(0))
    (tmp_path / "clip").write_bytes(wav_bytes(0))
    assert [(i.key, i.modality) for i in list_items([tmp_path / "blob", tmp_path / "clip"]).items] == [
        ("blob", "image"), ("clip", "audio")]


@pytest.mark.parametrize(("make", "error", "match"), [
    (lambda p: p / "nope", InputError, "input not found"),
    (lambda p: str(p / "*.jpg"), InputError, "matches no files"),
    (lambda p: [p / "a" / "x.png", p / "b" / "x.png"], InputError, "two inputs map to the key 'x.png'"),
    (lambda p: p / "bad.tar", MediaError, "not an uncompressed tar"),
    (lambda p: p / "bad.parquet", MediaError, "not a Parquet file"),
])
def test_bad_arguments_fail_before_any_work(tmp_path, make, error, match):
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
        (tmp_path / sub / "x.png").write_bytes(png_bytes(0))
    (tmp_path / "bad.tar").write_bytes(b"\x00garbage" * 10)
    (tmp_path / "bad.parquet").write_bytes(b"PAR1 nope")
    arg = make(tmp_path)
    with pytest.raises(error, match=match):
        list_items(arg if isinstance(arg, list) else [arg])


def test_parquet_rows_are_items_keyed_by_row(tmp_path):
    path = write_parquet(tmp_path / "train.parquet", {"label": [0, 1, 2, 3, 4],
                                                      "image": [png_bytes(i) for i in range(4)] + [None]})
    listing = list_items([path])
    assert [i.key for i in listing.items] == [f"train.parquet#{r}" for r in range(5)]
    assert [(i.group, i.offset) for i in listing.items] == [(0, 0), (0, 1), (1, 0), (1, 1), (2, 0)]
    assert listing.items[3].read_bytes() == png_bytes(3)
    loader = ItemLoader("image", image_size=8)
    assert loader.load(listing.items[2]).shape == (3, 8, 8)
    with pytest.raises(MediaError, match=r"train.parquet#4: column 'image' is null"):
        loader.load(listing.items[4])


def test_parquet_column_must_be_named_when_ambiguous_and_be_bytes(tmp_path):
    path = write_parquet(tmp_path / "d.parquet", {"a": [b"x"], "b": [b"y"], "n": [1]})
    with pytest.raises(InputError, match="--column"):
        list_items([path])
    with pytest.raises(InputError, match="'n' is int64, not bytes"):
        list_items([path], column="n")
    with pytest.raises(InputError, match="no column 'zz'"):
        list_items([path], column="zz")
    assert len(list_items([path], column="b").items) == 1


def test_webdataset_tar_members_are_items(tmp_path):
    write_tar(tmp_path / "shard-000.tar", {"0001.png": png_bytes(1), "0001.cls": b"3", "0002.wav": wav_bytes(2),
                                                  "0000.jpg": b"not a jpeg"})
    listing = list_items([tmp_path])
    assert [(i.key, i.modality) for i in listing.items] == [
        ("shard-000.tar/0000.jpg", "image"), ("shard-000.tar/0001.png", "image"), ("shard-000.tar/0002.wav", "audio")]
    assert listing.ignored == [("shard-000.tar/0001.cls", "not an image or audio member (by extension)")]
    assert listing.items[1].read_bytes() == png_bytes(1)
    results = ItemLoader("image").load_many(listing.items)
    assert [err is None for _, _, err in results] == [False, True, False]
    assert "shard-000.tar/0000.jpg is not an image file" in results[0][2]
    assert "shard-000.tar/0002.wav is an audio input; the model takes image" in results[2][2]


def test_truncated_tar_member_is_a_media_error(tmp_path):
    path = write_tar(tmp_path / "s.tar", {"a.png": png_bytes(0)})
    item = list_items([path]).items[0]
    path.write_bytes(path.read_bytes()[: item.offset + 10])
    with pytest.raises(MediaError, match="ends inside this member"):
        item.read_bytes()


def test_image_loader_resizes_to_the_model_size_and_names_corrupt_files(image_dir):
    items = {i.key: i for i in list_items([image_dir]).items}
    x = ItemLoader("image", image_size=16).load(items["cats/01.png"])
    assert x.shape == (3, 16, 16) and x.dtype == torch.float32 and -1 <= float(x.min()) and float(x.max()) <= 1
    assert ItemLoader("image").load(items["cats/01.png"]).shape == (3, 20, 24)
    with pytest.raises(MediaError, match="broken.png"):
        ItemLoader("image").load(items["broken.png"])


def test_audio_loader_mixes_to_mono_and_resamples(tmp_path):
    (tmp_path / "a.wav").write_bytes(wav_bytes(0, samples=1600, rate=16000))
    item = list_items([tmp_path]).items[0]
    assert ItemLoader("audio", sample_rate=24000).load(item).shape == (2400,)
    assert ItemLoader("audio").load(item).shape == (1600,)


def test_loader_for_a_model_reads_its_card():
    import zoo

    model = zoo.load(DEMO)
    loader = ItemLoader.for_model(model)
    assert (loader.modality, loader.image_size, loader.model) == ("image", model.image_size, model.card.name)
    import pickle

    assert pickle.loads(pickle.dumps(loader)) == loader
    with pytest.raises(MediaError, match=f"x.wav is an audio input; {model.card.name} takes image"):
        loader.load(Item("x.wav", "/nonexistent/x.wav", modality="audio"))


def test_a_symlink_cycle_is_walked_once(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a.png").write_bytes(png_bytes(0))
    (tmp_path / "d" / "loop").symlink_to(tmp_path / "d")
    assert [i.key for i in list_items([tmp_path / "d"]).items] == ["a.png"]
