"""Datasets: read many inputs, tokenize them in shards, read the shards back.

Stable API of the input-source layer (:mod:`zoo.datasets.sources`), shared by ``zoo tokenize``
and every command that reads datasets (``zoo eval``):

* ``list_items(inputs, column=None) -> Listing`` — INPUT arguments (files, directories walked
  recursively, globs, Parquet files with an encoded-bytes ``column``, WebDataset ``.tar``
  shards) -> ``Listing.items``, a list of :class:`~zoo.datasets.sources.Item` sorted by
  ``key`` (deterministic on any machine), ``Listing.ignored`` (non-media files found by a walk,
  with why) and ``Listing.digest()`` (sha256 of the keys). Bad arguments raise
  :class:`~zoo.errors.InputError` before any work.
* ``Item`` — frozen, picklable: ``key`` (relative path, ``file.parquet#row``,
  ``shard.tar/member``), ``modality`` (``"image"``/``"audio"``/``"unknown"``, from the extension
  or the first bytes), ``read_bytes()``.
* ``ItemLoader.for_model(model)`` -> a picklable loader; ``loader.load(item)`` -> the tensor the
  model's ``encode`` takes for one item (image ``[3, H, W]`` in ``[-1, 1]`` at the model's
  ``image_size``; audio mono ``[L]`` at its ``sample_rate``), decoded by :mod:`zoo.media`;
  a corrupt/unreadable/wrong-modality item raises :class:`~zoo.errors.MediaError` naming its
  key. ``loader.load_many(items)`` -> ``[(item, tensor | None, error | None)]`` for engines
  that record failures and go on; a video longer than one clip comes as a
  :class:`~zoo.datasets.sources.VideoClips` stream instead of a tensor (iterate it for
  ``(clip item, clip)`` pairs decoded one at a time; tokenize's job encodes them as they come).

Engines (:mod:`zoo.datasets.engines`), for any command that runs a model over a dataset:

* ``shards = [(index, items), ...]`` — the plan (tokenize cuts the sorted items every
  ``shard_size``); ``plan_batches(shards, batch_size)`` is how both engines cut batches.
* A job is any object with ``setup()`` (called once where it runs: load the model there) and
  ``job(decoded) -> result`` (``decoded`` = ``loader.load_many(batch_items)``; the result must
  pickle). ``EncodeJob`` is tokenize's.
* ``run_local(job, loader, shards, batch_size=, workers=, progress=)`` — the job runs in this
  process, ``workers`` spawned processes decode; ``run_ray(job, loader, shards, batch_size=,
  actors=, address=, gpus_per_actor=, progress=)`` — Ray Data decode tasks feed an actor pool
  (one set-up job per actor). Both yield ``(shard_index, [result per batch])`` as shards
  complete; ``progress(n)`` is called as batches of ``n`` items finish.

The tokenize machinery (shard format, writer, reader) is in :mod:`zoo.datasets.shards`,
:mod:`zoo.datasets.tokenize` and :mod:`zoo.datasets.reader`; the public entry points are
``zoo.tokenize`` and ``zoo.read_tokens``.

Example:
    >>> from zoo.datasets import list_items, ItemLoader
    >>> list_items(["/no/such/dir"])  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    zoo.errors.InputError: input not found: '/no/such/dir' is not a file, a directory or a glob that matches files
"""

from __future__ import annotations

from zoo.datasets.sources import (
    AUDIO_SUFFIXES,
    IMAGE_SUFFIXES,
    Item,
    ItemLoader,
    Listing,
    VideoClips,
    guess_modality,
    list_items,
    sniff_modality,
)

__all__ = [
    "AUDIO_SUFFIXES", "IMAGE_SUFFIXES", "Item", "ItemLoader", "Listing", "VideoClips", "guess_modality", "list_items", "sniff_modality",
]
