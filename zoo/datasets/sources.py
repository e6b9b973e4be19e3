"""Input sources: INPUT arguments -> one sorted, deterministic list of :class:`Item`.

An INPUT is a file, a directory (walked recursively; hidden files and folders are skipped), a
glob (``data/**/*.jpg``), a Parquet file whose ``column`` holds encoded image/audio bytes (one
item per row), or a WebDataset ``.tar`` shard (one item per image/audio member). Every item has
a ``key`` that names it in outputs:

* a file found under a directory INPUT: its path relative to that directory (``cats/1.jpg``);
* a file INPUT: its name; a glob match: its path relative to the glob's fixed prefix;
* a Parquet row: ``<file key>#<row>`` (``train.parquet#17``);
* a tar member: ``<file key>/<member name>`` (``shard-000.tar/0001.jpg``).

Keys are unique (two inputs that map to one key are an :class:`~zoo.errors.InputError`) and the
list is sorted by key, so the same INPUT arguments give the same list on any machine.
Listing reads only names (and Parquet/tar indexes), never pixels or samples; decoding is
:meth:`ItemLoader.load`, which engines run in worker processes or Ray tasks.

Example:
    >>> import tempfile, pathlib, numpy as np
    >>> from PIL import Image
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> (root / "b").mkdir()
    >>> Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(root / "b" / "x.png")
    >>> Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(root / "a.png")
    >>> listing = list_items([root])
    >>> [(i.key, i.modality) for i in listing.items]
    [('a.png', 'image'), ('b/x.png', 'image')]
    >>> ItemLoader(modality="image", image_size=4).load(listing.items[0]).shape
    torch.Size([3, 4, 4])
"""

from __future__ import annotations

import glob as _glob
import hashlib
import os
import tarfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from zoo.errors import InputError, MediaError

__all__ = [
    "AUDIO_SUFFIXES", "IMAGE_SUFFIXES", "POINT_SUFFIXES", "VIDEO_SUFFIXES", "Item", "ItemLoader", "Listing", "VideoClips", "guess_modality", "list_items", "sniff_modality",
]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif")
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif")
VIDEO_SUFFIXES = (".mp4", ".webm", ".mkv", ".avi", ".mov", ".m4v")  # .gif counts as an image (a video model takes it too)
POINT_SUFFIXES = (".ply", ".npy", ".xyz", ".pts")
_CONTAINER_SUFFIXES = (".parquet", ".tar")


def guess_modality(name: str) -> str:
    """``"image"``, ``"audio"``, ``"video"``, ``"3d"`` (point clouds) or ``"unknown"`` from a file name's extension.

    Example:
        >>> guess_modality("a/b.JPG"), guess_modality("x.flac"), guess_modality("c.mp4"), guess_modality("s.ply")
        ('image', 'audio', 'video', '3d')
        >>> guess_modality("notes.txt")
        'unknown'
    """
    suffix = os.path.splitext(name)[1].lower()
    for suffixes, modality in ((IMAGE_SUFFIXES, "image"), (AUDIO_SUFFIXES, "audio"), (VIDEO_SUFFIXES, "video"),
                               (POINT_SUFFIXES, "3d")):
        if suffix in suffixes:
            return modality
    return "unknown"


_MAGIC = (
    (b"\x89PNG", "image"), (b"\xff\xd8\xff", "image"), (b"GIF8", "image"), (b"BM", "image"), (b"II*\x00", "image"),
    (b"MM\x00*", "image"), (b"fLaC", "audio"), (b"OggS", "audio"), (b"ID3", "audio"), (b"\xff\xfb", "audio"),
    (b"\x1aE\xdf\xa3", "video"), (b"ply\n", "3d"), (b"ply\r\n", "3d"),
)


def sniff_modality(head: bytes) -> str:
    """``"image"``, ``"audio"`` or ``"unknown"`` from the first bytes of an encoded file (PNG,
    JPEG, GIF, BMP, TIFF, WebP; WAV, FLAC, OGG, MP3, AIFF).

    Example:
        >>> sniff_modality(b"\\x89PNG\\r\\n"), sniff_modality(b"RIFF\\x00\\x00\\x00\\x00WAVEfmt "), sniff_modality(b"{}")
        ('image', 'audio', 'unknown')
    """
    head = bytes(head[:16])
    if head[:4] == b"RIFF" and head[8:12] in (b"WAVE", b"WEBP"):
        return "audio" if head[8:12] == b"WAVE" else "image"
    if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        return "audio"
    if head[4:8] == b"ftyp" or (head[:4] == b"RIFF" and head[8:12] == b"AVI "):  # mp4 / mov, avi
        return "video"
    for magic, modality in _MAGIC:
        if head.startswith(magic):
            return modality
    return "unknown"


@dataclass(frozen=True)
class Item:
    """One input: where its bytes live and the key that names it in outputs.

    ``kind`` is ``"file"`` (``path`` is the file), ``"parquet"`` (row ``row`` of ``column``,
    found in row group ``group`` at offset ``offset``) or ``"tar"`` (``size`` bytes at byte
    ``offset`` of the archive, member ``member``). Items are small and picklable: engines send
    them to worker processes and Ray tasks, which call :meth:`read_bytes` / :meth:`ItemLoader.load`.
    """

    key: str
    path: str
    kind: str = "file"
    modality: str = "unknown"
    member: str = ""
    column: str = ""
    row: int = -1
    group: int = -1
    offset: int = -1
    size: int = -1

    def read_bytes(self) -> bytes:
        """The item's encoded bytes (an unreadable source is a :class:`~zoo.errors.MediaError`)."""
        try:
            if self.kind == "file":
                return Path(self.path).read_bytes()
            if self.kind == "tar":
                with open(self.path, "rb") as f:
                    f.seek(self.offset)
                    data = f.read(self.size)
                if len(data) != self.size:
                    raise MediaError(f"{self.key}: the tar archive {self.path} ends inside this member (truncated archive)")
                return data
            if self.kind == "parquet":
                value = _parquet_group(self.path, self.column, self.group)[self.offset]
                if value is None:
                    raise MediaError(f"{self.key}: column {self.column!r} is null in this row")
                return value
        except OSError as exc:
            raise MediaError(f"{self.key}: cannot read {self.path} ({exc.strerror or exc})") from None
        raise InputError(f"{self.key}: unknown item kind {self.kind!r}")


@lru_cache(maxsize=4)
def _parquet_group(path: str, column: str, group: int) -> list:
    """One row group's ``column`` as Python bytes (cached: consecutive rows share a group)."""
    import pyarrow.parquet as pq

    try:
        return pq.ParquetFile(path).read_row_group(group, columns=[column]).column(0).to_pylist()
    except Exception as exc:  # pyarrow raises ArrowInvalid / OSError for corrupt files
        raise MediaError(f"{path}: cannot read row group {group} of column {column!r} ({exc})") from None


@dataclass
class Listing:
    """What :func:`list_items` found: ``items`` (sorted by key) and ``ignored`` — files walked
    over that are not images, audio, Parquet or tar (``(path, reason)``, sorted) — plus
    :meth:`digest`, the hash of the keys (the manifest's input listing hash)."""

    items: list[Item]
    ignored: list[tuple[str, str]] = field(default_factory=list)

    def digest(self) -> str:
        """sha256 of the sorted keys, one per line.

        Example:
            >>> Listing([Item("a.png", "/x/a.png")]).digest() == hashlib.sha256(b"a.png\\n").hexdigest()
            True
        """
        h = hashlib.sha256()
        for item in self.items:
            h.update(item.key.encode("utf-8") + b"\n")
        return h.hexdigest()


def _expand(arg: str | os.PathLike) -> list[tuple[Path, str, bool]]:
    """One INPUT -> ``(file, key, walked)`` triples (``walked``: found by a directory walk or a
    glob, where non-media files are ignored rather than refused)."""
    text = os.fspath(arg)
    path = Path(text).expanduser()
    if path.is_dir():
        out, seen = [], set()
        for dirpath, dirnames, filenames in os.walk(path, followlinks=True):
            real = os.path.realpath(dirpath)
            if real in seen:  # a symlink back up the tree: walk each real folder once
                dirnames[:] = []
                continue
            seen.add(real)
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for name in filenames:
                if not name.startswith("."):
                    full = Path(dirpath) / name
                    out.append((full, full.relative_to(path).as_posix(), True))
        return out
    if path.is_file():
        return [(path, path.name, False)]
    if _glob.has_magic(text):
        parts = Path(text).expanduser().parts
        fixed = next((i for i, p in enumerate(parts) if _glob.has_magic(p)), len(parts))
        base = Path(*parts[:fixed]) if fixed else Path(".")
        matches = sorted(Path(p) for p in _glob.glob(os.path.expanduser(text), recursive=True))
        files = [m for m in matches if m.is_file() and not any(q.startswith(".") for q in m.relative_to(base).parts)]
        if not files:
            raise InputError(f"the glob {text!r} matches no files")
        return [(m, m.relative_to(base).as_posix(), True) for m in files]
    raise InputError(f"input not found: {text!r} is not a file, a directory or a glob that matches files")


def _parquet_items(path: Path, key: str, column: str | None) -> list[Item]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise InputError(f"{path}: reading Parquet inputs needs pyarrow: `pip install 'zoo[datasets]'`") from None
    try:
        pf = pq.ParquetFile(str(path))
    except Exception as exc:
        raise MediaError(f"{path} is not a Parquet file pyarrow can read ({exc})") from None
    import pyarrow as pa

    schema = pf.schema_arrow
    binary = [f.name for f in schema if pa.types.is_binary(f.type) or pa.types.is_large_binary(f.type)]
    if column is None:
        if len(binary) != 1:
            raise InputError(f"{path}: say which column holds the encoded images/audio with --column "
                             f"(bytes columns: {', '.join(binary) or 'none'}; all columns: {', '.join(schema.names)})")
        column = binary[0]
    if column not in schema.names:
        raise InputError(f"{path} has no column {column!r}; its columns are {', '.join(schema.names)}")
    if column not in binary:
        raise InputError(f"{path}: column {column!r} is {schema.field(column).type}, not bytes (encoded png/jpeg/wav/...)")
    items, row = [], 0
    for group in range(pf.num_row_groups):
        for offset in range(pf.metadata.row_group(group).num_rows):
            items.append(Item(key=f"{key}#{row}", path=str(path), kind="parquet", column=column, row=row, group=group,
                              offset=offset))
            row += 1
    return items


def _tar_items(path: Path, key: str) -> tuple[list[Item], list[tuple[str, str]]]:
    items, ignored = [], []
    try:
        with tarfile.open(path, mode="r:") as tar:
            for member in tar:
                if not member.isfile():
                    continue
                name = member.name
                modality = guess_modality(name)
                if modality == "unknown":
                    ignored.append((f"{key}/{name}", "not an image or audio member (by extension)"))
                    continue
                items.append(Item(key=f"{key}/{name}", path=str(path), kind="tar", modality=modality, member=name,
                                  offset=member.offset_data, size=member.size))
    except (tarfile.TarError, OSError) as exc:
        raise MediaError(f"{path} is not an uncompressed tar archive Python can read ({exc}); WebDataset shards are plain .tar") from None
    return items, ignored


def list_items(inputs: Sequence[str | os.PathLike] | str | os.PathLike, *, column: str | None = None,
               exclude: Sequence[str | os.PathLike] = ()) -> Listing:
    """Expand INPUT arguments into a :class:`Listing`: every image/audio item, sorted by key.

    ``column`` names the Parquet column that holds the encoded bytes (needed when a file has
    more than one bytes column). Files given by name are always items (their modality is
    guessed from the extension, else from their first bytes); files found by a directory walk
    or a glob that are not media, Parquet or tar go to ``Listing.ignored``. A missing input, a
    glob that matches nothing, an unreadable Parquet/tar index or two inputs with one key raise
    :class:`~zoo.errors.InputError` / :class:`~zoo.errors.MediaError` before any work.
    Files under an ``exclude`` folder are left out (a command's own output folder inside its
    inputs).
    """
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    if not inputs:
        raise InputError("no inputs given: pass files, directories, globs, Parquet files or .tar shards")
    seen: dict[str, str] = {}
    items: list[Item] = []
    ignored: list[tuple[str, str]] = []
    files: dict[str, tuple[Path, str, bool]] = {}
    skip = [Path(p).resolve() for p in exclude]
    for arg in inputs:
        for path, key, walked in _expand(arg):
            resolved = path.resolve()
            if not any(resolved.is_relative_to(d) for d in skip):
                files.setdefault(str(resolved), (path, key, walked))
    for path, key, walked in files.values():
        suffix = path.suffix.lower()
        if suffix == ".parquet":
            found, skipped = _parquet_items(path, key, column), []
        elif suffix == ".tar":
            found, skipped = _tar_items(path, key)
        else:
            modality = guess_modality(path.name)
            if modality == "unknown" and not walked:
                modality = sniff_modality(_head(path))
            if modality == "unknown" and walked:
                found, skipped = [], [(key, "not an image, audio, Parquet or tar file (by extension)")]
            else:
                found, skipped = [Item(key=key, path=str(path), modality=modality)], []
        for item in found:
            if item.key in seen:
                raise InputError(f"two inputs map to the key {item.key!r} ({seen[item.key]} and {item.path}); "
                                 "pass their common parent directory instead so keys stay distinct")
            seen[item.key] = item.path
        items.extend(found)
        ignored.extend(skipped)
    items.sort(key=lambda i: (i.key, i.row))
    return Listing(items=items, ignored=sorted(ignored))


def _head(path: Path) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read(16)
    except OSError:
        return b""


@dataclass(frozen=True)
class ItemLoader:
    """Decodes items into what a model's ``encode`` takes, one item at a time.

    ``modality="image"``: a ``[3, H, W]`` float tensor in ``[-1, 1]``, resized (shorter side)
    and centre-cropped to ``image_size`` when given (:func:`zoo.media.image.to_tensor`).
    ``modality="audio"``: a mono ``[L]`` float tensor at ``sample_rate``
    (:func:`zoo.media.audio.load_audio` + :func:`~zoo.media.audio.prepare_audio`).
    ``modality="video"``: :meth:`load` gives one clip ``[3, num_frames, S, S]`` in ``[-1, 1]``: the
    first ``num_frames`` frames at the native rate (a shorter video repeats its last frame), shorter
    side resized to ``image_size`` and centre-cropped (:func:`zoo.media.video.load_video`).
    :meth:`iter_clips` gives every clip of a longer video instead, decoded as it is asked for:
    chunks of ``num_frames`` frames overlapping by ``overlap`` (:func:`zoo.media.video.iter_chunks`,
    the last one padded with its last frame), each as its own item keyed
    ``<key>#frames=<first>-<last>`` (the real frames it holds, 0-based, six digits so keys sort in
    time order: ``walk.mp4#frames=000000-000016``); a video that fits one clip keeps its key.
    :meth:`load_many` (what ``zoo tokenize``'s decode workers run) gives a video that fits one clip
    as its tensor and a longer one as a :class:`VideoClips` stream, which the job iterates to
    encode clips as they are decoded (memory bounded whatever the video's length).
    ``modality="3d"``: a cloud ``[num_points, 3]``: farthest-point sampled to ``num_points`` and
    normalised into the unit sphere (:mod:`zoo.media.points`). An item of the
    other modality, or one that cannot be decoded, is a :class:`~zoo.errors.MediaError` naming
    its key; engines record it as a failure and go on. Build one for a model with
    :meth:`for_model`. Picklable (it holds no model).
    """

    modality: str
    image_size: int | tuple[int, int] | None = None
    sample_rate: int | None = None
    model: str = "the model"
    num_frames: int | None = None
    num_points: int | None = None
    overlap: int = 0

    @classmethod
    def for_model(cls, model: Any) -> ItemLoader:
        """The loader for a loaded zoo tokenizer: its card's modality, ``image_size``, ``sample_rate``."""
        card = getattr(model, "card", None)
        modality = getattr(card, "modality", None) or ("audio" if getattr(model, "sample_rate", None) else "image")
        size = getattr(model, "image_size", None)
        if isinstance(size, (list, tuple)):
            size = tuple(int(s) for s in size)
        rate = getattr(model, "sample_rate", None)
        frames = getattr(model, "num_frames", None) if modality == "video" else None
        points = getattr(model, "num_points", None) if modality == "3d" else None
        return cls(modality=modality, image_size=size, sample_rate=int(rate) if rate else None,
                   model=getattr(card, "name", None) or type(model).__name__,
                   num_frames=int(frames) if frames else None, num_points=int(points) if points else None)

    def _read(self, item: Item) -> bytes:
        """``item``'s bytes, after checking it is of this loader's modality."""
        self._check_named(item)
        data = item.read_bytes()
        self._check_sniffed(item, data)
        return data

    def _check_named(self, item: Item) -> None:
        if item.modality not in ("unknown", self.modality) and not self._gif_clip(item):
            raise MediaError(f"{item.key} is an {item.modality} input; {self.model} takes {self.modality}")

    def _check_sniffed(self, item: Item, head: bytes) -> None:
        if item.modality == "unknown" and sniff_modality(head) not in ("unknown", self.modality) and not self._gif_clip(item):
            raise MediaError(f"{item.key} holds {sniff_modality(head)} data; {self.model} takes {self.modality}")

    def _gif_clip(self, item: Item) -> bool:
        return self.modality == "video" and item.key.lower().endswith(".gif")

    def _video_source(self, item: Item) -> str | bytes:
        """What PyAV opens for a video item, after the modality checks: a file's path (read as
        decoding goes, never whole) or the bytes of a Parquet row / tar member."""
        if item.kind != "file":
            return self._read(item)
        self._check_named(item)
        try:
            with open(item.path, "rb") as f:
                head = f.read(16)
        except OSError as exc:
            raise MediaError(f"{item.key}: cannot read {item.path} ({exc.strerror or exc})") from None
        self._check_sniffed(item, head)
        return item.path

    def load(self, item: Item) -> Any:
        """``item`` decoded (see the class docstring); raises :class:`~zoo.errors.MediaError`."""
        data = self._read(item)
        if self.modality == "image":
            from zoo.media.image import open_image, to_tensor

            try:
                return to_tensor(open_image(data, name=item.key), size=self.image_size)[0]
            except MediaError as exc:
                raise MediaError(f"{item.key}: {exc}" if item.key not in str(exc) else str(exc)) from None
        if self.modality == "audio":
            from zoo.media.audio import load_audio, prepare_audio

            wav, rate = load_audio(data, name=item.key)
            return prepare_audio(wav, rate, self.sample_rate or rate) if self.sample_rate else wav.mean(0)
        if self.modality == "video":
            return self._load_clip(item, data)
        if self.modality == "3d":
            from zoo.media.points import load_points, normalize_points, sample_points

            pts = load_points(data, name=item.key)[None]
            return normalize_points(sample_points(pts, self.num_points) if self.num_points else pts)[0]
        raise InputError(f"{self.model} takes {self.modality!r} inputs; zoo reads images, audio, video and point clouds")

    def _load_clip(self, item: Item, data: bytes) -> Any:
        import torch

        from zoo.media.video import frames_to_tensor, read_frames

        frames, _ = read_frames(data, num_frames=self.num_frames)
        clip = frames_to_tensor(frames, self.image_size)[0]  # [3, T, H, W]
        if self.num_frames and clip.shape[1] < self.num_frames:
            clip = torch.cat([clip, clip[:, -1:].expand(-1, self.num_frames - clip.shape[1], -1, -1)], dim=1)
        return clip

    def iter_clips(self, item: Item) -> Iterator[tuple[Item, Any]]:
        """Every clip of a video item as ``(chunk item, [3, num_frames, S, S])``, decoded as they
        are yielded (at most one clip of frames held; see the class docstring for the keys); one
        ``(item, clip)`` when the video fits one clip. A decoding error names the item's key."""
        from dataclasses import replace

        from zoo.media.video import iter_chunks

        if not self.num_frames:
            yield item, self.load(item)
            return
        chunks = iter_chunks(self._video_source(item), self.num_frames, self.overlap, size=self.image_size,
                             name=item.key)

        def keyed(c: Any) -> tuple[Item, Any]:
            return replace(item, key=f"{item.key}#frames={c.start:06d}-{c.start + c.valid - 1:06d}"), c.video[0]

        try:
            head = [next(chunks)]
            head.append(next(chunks, None))  # one chunk of look-ahead tells a video that fits one clip
            if head[1] is None:
                yield item, head[0].video[0]
                return
            while head:
                yield keyed(head.pop(0))
            for c in chunks:
                yield keyed(c)
        except MediaError as exc:
            raise MediaError(f"{item.key}: {exc}" if item.key not in str(exc) else str(exc)) from None
        finally:
            chunks.close()

    def load_clips(self, item: Item) -> list[tuple[Item, Any]]:
        """:meth:`iter_clips` as a list: every clip of the video at once (memory grows with its length)."""
        return list(self.iter_clips(item))

    def load_video(self, item: Item) -> tuple[Item, Any]:
        """A video item as engines take it: ``(item, [3, num_frames, S, S])`` when the video fits
        one clip (decoded here, in the decode worker), else ``(item, VideoClips(self, item))``, a
        stream the job iterates to encode the clips as they are decoded (the first two clips are
        decoded here to tell, then dropped)."""
        clips = self.iter_clips(item)
        first = next(clips)
        if first[0].key == item.key:  # the whole video is one clip
            return first
        clips.close()
        return item, VideoClips(self, item)

    def load_many(self, items: Iterable[Item]) -> list[tuple[Item, Any, str | None]]:
        """``(item, tensor or None, error or None)`` for each item: the failure-tolerant form
        engines use (a zoo error or an OS error becomes its message; anything else propagates).
        A video longer than one clip comes as ``(item, VideoClips, None)`` (:meth:`load_video`).

        Example:
            >>> ItemLoader("image").load_many([Item("gone.png", "/no/such/gone.png", modality="image")])[0][2]
            'MediaError: gone.png: cannot read /no/such/gone.png (No such file or directory)'
        """
        from zoo.errors import ZooError

        out = []
        for item in items:
            try:
                if self.modality == "video":
                    out.append((*self.load_video(item), None))
                else:
                    out.append((item, self.load(item), None))
            except (ZooError, OSError) as exc:
                out.append((item, None, f"{type(exc).__name__}: {exc}"))
        return out


@dataclass(frozen=True)
class VideoClips:
    """A video longer than one clip, as :meth:`ItemLoader.load_many` hands it to a job: iterating
    decodes the file again and yields ``(chunk item, clip)`` one clip at a time
    (:meth:`ItemLoader.iter_clips`), so a job that encodes and drops clips as they come holds a
    bounded number of frames whatever the video's length. Small and picklable (no frames), so it
    travels from decode workers and Ray tasks to the job like a tensor would.

    Example:
        >>> clips = VideoClips(ItemLoader("video", num_frames=16), Item("walk.mp4", "/data/walk.mp4"))
        >>> clips.item.key
        'walk.mp4'
    """

    loader: ItemLoader
    item: Item

    def __iter__(self) -> Iterator[tuple[Item, Any]]:
        return self.loader.iter_clips(self.item)

    def __repr__(self) -> str:
        key = self.item.key if len(self.item.key) <= 80 else "..." + self.item.key[-77:]
        return (f"VideoClips({key!r}: clips of {self.loader.num_frames} frames, overlap {self.loader.overlap}, "
                "decoded as iterated)")
