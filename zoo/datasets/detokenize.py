"""``zoo detokenize``: decode a token directory back into media files for inspection.

Each row becomes ``OUT/<key>`` with the input's media extension replaced by ``.png`` (images),
``.wav`` (audio), ``.mp4`` (video) or ``.ply`` (point clouds); ``train.parquet#3`` becomes
``train.parquet#3.png``. Two keys that would land on one name (``a/x.jpg`` and ``a/x.png``) keep
their own suffix in front of the new one (``a/x.jpg.png``; the one already ending in the output's
suffix keeps ``a/x.png``), so every row gets its own file (:func:`output_names`).

Example:
    >>> output_name("cats/01.jpg", "image"), output_name("train.parquet#3", "image"), output_name("../x.wav", "audio")
    ('cats/01.png', 'train.parquet#3.png', 'x.wav')
    >>> output_names(["a/x.flac", "a/x.wav", "b.wav"], "audio")
    {'a/x.flac': 'a/x.flac.wav', 'a/x.wav': 'a/x.wav', 'b.wav': 'b.wav'}
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import Any

from zoo.datasets.reader import read_manifest, read_tokens
from zoo.datasets.sources import AUDIO_SUFFIXES, IMAGE_SUFFIXES, POINT_SUFFIXES, VIDEO_SUFFIXES, ItemLoader
from zoo.errors import InputError

__all__ = ["detokenize", "output_name", "output_names"]

#: What detokenize writes per modality (images: .png).
OUTPUT_SUFFIX = {"audio": ".wav", "video": ".mp4", "3d": ".ply"}


def output_name(key: str, modality: str) -> str:
    """The relative file name ``detokenize`` writes for ``key`` (never outside the output folder)."""
    parts = [p for p in PurePosixPath(key).parts if p not in ("..", ".", "/")]
    name = "/".join(parts) or "item"
    stem, suffix = os.path.splitext(name)
    if suffix.lower() in IMAGE_SUFFIXES + AUDIO_SUFFIXES + VIDEO_SUFFIXES + POINT_SUFFIXES:
        name = stem
    return name + OUTPUT_SUFFIX.get(modality, ".png")


def output_names(keys: Sequence[str], modality: str) -> dict[str, str]:
    """``{key: relative file name}`` for ``keys`` (in order), no two the same: :func:`output_name`
    where that name is unique; where several keys share it, each keeps its own suffix in front of
    the output's (``x.jpg`` -> ``x.jpg.png``) except one already ending in the output's suffix;
    a name still taken gets ``~N`` before the suffix."""
    short = {k: output_name(k, modality) for k in keys}
    shared = Counter(short.values())
    suffix = OUTPUT_SUFFIX.get(modality, ".png")
    names: dict[str, str] = {}
    used: set[str] = set()
    for key in keys:
        name = short[key]
        if shared[name] > 1 and not key.lower().endswith(suffix):
            name = output_name(key + suffix, modality)  # x.jpg -> x.jpg.png (the suffix kept in the stem)
        stem, n = name[: -len(suffix)], 1
        while name in used:
            name, n = f"{stem}~{n}{suffix}", n + 1
        used.add(name)
        names[key] = name
    return names


def _all_keys(directory: str | os.PathLike, manifest: dict[str, Any]) -> list[str]:
    """Every row's key, in shard and row order (the key columns only)."""
    import pyarrow.parquet as pq

    return [k for shard in manifest["shards"] if shard["file"]
            for k in pq.read_table(Path(directory) / shard["file"], columns=["key"]).column("key").to_pylist()]


def detokenize(directory: str | os.PathLike, out: str | os.PathLike, *, model: Any = None, limit: int | None = None,
               batch_size: int = 16, device: str | None = None, load_kwargs: dict[str, Any] | None = None) -> list[Path]:
    """Decode the first ``limit`` rows (all when None) of a token directory into ``out``; returns
    the written paths. ``model`` defaults to ``zoo.load(<the manifest's model>, device=device,
    **load_kwargs)``; a model whose config differs from the one that made the tokens (another
    config hash) is refused."""
    import torch

    from zoo.datasets.tokenize import _config_hash

    manifest = read_manifest(directory)
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise InputError(f"limit must be a positive int, got {limit!r}")
    if model is None:
        import zoo

        model = zoo.load(manifest["model"], device=device, **(load_kwargs or {}))
    if _config_hash(model) != manifest["config_hash"]:
        raise InputError(f"{directory} was made by {manifest['model']} with config hash {manifest['config_hash'][:12]}; "
                         f"this model's config hashes to {_config_hash(model)[:12]} (other settings or overrides)")
    modality = ItemLoader.for_model(model).modality
    names = output_names(_all_keys(directory, manifest), modality)  # over the whole directory: --limit never renames
    out = Path(out)
    written: list[Path] = []
    for batch in read_tokens(directory, batch_size=batch_size):
        if limit is not None and len(written) >= limit:
            break
        take = len(batch) if limit is None else min(len(batch), limit - len(written))
        tokens = batch.tokens[:take] if take < len(batch) else batch.tokens
        with torch.inference_mode():
            media = model.decode(tokens)
        for i, key in enumerate(batch.keys[:take]):
            path = out / names[key]
            path.parent.mkdir(parents=True, exist_ok=True)
            if modality == "audio":
                from zoo.media.audio import save_audio

                wav = media[i]
                samples = (tokens.meta.get("num_samples") or [None] * take)[i]
                if samples:
                    wav = wav[..., : int(samples)]
                save_audio(path, wav.reshape(-1, wav.shape[-1]) if wav.dim() > 1 else wav, int(model.sample_rate))
            elif modality == "video":
                from zoo.media.video import write_video

                write_video(media[i], path, fps=float(getattr(model, "fps", 8)))
            elif modality == "3d":
                from zoo.media.points import save_ply

                save_ply(media[i], path)
            else:
                from zoo.media.image import to_pil

                to_pil(media[i])[0].save(path)
            written.append(path)
    return written
