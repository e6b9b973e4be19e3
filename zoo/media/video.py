"""Video in and out: every zoo video model takes ``[B, 3, T, H, W]`` float tensors in ``[-1, 1]``.

Files (mp4, webm, mkv, avi, gif, ...) are decoded with **PyAV** (``pip install 'zoo[video]'``):
FFmpeg's own decoders through wheels that bundle FFmpeg, so nothing is needed on the system, every
container FFmpeg reads works, frames are decoded one at a time (long videos stream in bounded
memory) and the same library writes mp4/webm. ``torchvision.io`` is not used: its video readers
were deprecated (0.22) and moved to TorchCodec, and the torchvision wheel on PyPI is built for
CUDA torch (it does not import on this CPU torch without a shim). A folder of images (sorted by
name) is a video too; its frame rate is whatever ``folder_fps`` says.

Conventions: frames resampled to ``fps`` by nearest earlier frame (``index = floor(k * src/dst)``,
the rule of the common video datasets), resized so the shorter side is ``size`` (bilinear,
antialiased: torchvision's ``Resize`` on tensors) and centre-cropped, then scaled to ``[-1, 1]``.
:func:`iter_chunks` cuts a long video into overlapping chunks of ``length`` frames while decoding
(the last chunk is padded by repeating its last frame and says how many frames are real).
:func:`write_video` / :class:`VideoWriter` write mp4/webm (PyAV, H.264/VP9, even sizes; streamed) or
gif (PIL), and
:func:`side_by_side` puts input and reconstruction next to each other.

Example:
    >>> import torch
    >>> clip = torch.rand(1, 3, 8, 32, 48) * 2 - 1                   # [B, C, T, H, W]
    >>> check_video(clip).shape
    torch.Size([1, 3, 8, 32, 48])
    >>> side_by_side(clip, clip).shape                                # input | output
    torch.Size([1, 3, 8, 32, 100])
    >>> [(c.start, c.valid) for c in chunk_video(torch.zeros(1, 3, 10, 4, 4), 4, overlap=1)]
    [(0, 4), (3, 4), (6, 4)]
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from zoo.errors import InputTypeError, MediaError

__all__ = [
    "Chunk", "VideoInfo", "check_video", "chunk_video", "frames_to_tensor", "iter_chunks", "load_video",
    "probe_video", "read_frames", "VideoWriter", "resample_indices", "side_by_side", "stitch_chunks", "video_fps",
    "write_video",
    "IMAGE_SUFFIXES", "VIDEO_SUFFIXES",
]

VIDEO_SUFFIXES = (".mp4", ".webm", ".mkv", ".avi", ".mov", ".m4v", ".gif")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")


def _av():
    try:
        import av  # noqa: PLC0415 - optional dependency
    except ImportError:
        raise MediaError("reading/writing video files needs PyAV: `pip install 'zoo[video]'` (or `pip install av`)") from None
    return av


@dataclass(frozen=True)
class VideoInfo:
    """What a video file holds: frame count (decoded, or the container's estimate), frame rate, size."""

    frames: int
    fps: float
    height: int
    width: int


@dataclass(frozen=True)
class Chunk:
    """One chunk of a long video: ``video`` ``[1, 3, length, H, W]`` starting at frame ``start``
    (after resampling); its first ``valid`` frames are real, the rest repeat the last one."""

    video: torch.Tensor
    start: int
    valid: int


def resample_indices(num_frames: int, src_fps: float, dst_fps: float | None) -> list[int]:
    """Indices of the source frames kept when ``num_frames`` frames at ``src_fps`` are resampled to
    ``dst_fps`` (nearest earlier frame; ``None`` keeps every frame).

    Example:
        >>> resample_indices(10, 30, 15)
        [0, 2, 4, 6, 8]
        >>> resample_indices(4, 10, 20)
        [0, 0, 1, 1, 2, 2, 3, 3]
    """
    if dst_fps is None or num_frames == 0:
        return list(range(num_frames))
    if not (src_fps > 0 and dst_fps > 0):
        raise MediaError(f"frame rates must be positive, got source {src_fps} and target {dst_fps}")
    step = src_fps / dst_fps
    count = max(1, int(math.floor(num_frames / step + 1e-9)))
    return [min(num_frames - 1, int(math.floor(k * step + 1e-9))) for k in range(count)]


def _image_files(folder: Path) -> list[Path]:
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise MediaError(f"{folder} holds no image frames ({', '.join(IMAGE_SUFFIXES)})")
    return files


def _iter_source(path: Path | bytes, folder_fps: float, name: str | None = None) -> tuple[Iterator[np.ndarray], float]:
    """Frames (uint8 ``[H, W, 3]``) of a file, image folder or encoded bytes, decoded lazily, and the
    frame rate; error messages call the source ``name`` when given."""
    if isinstance(path, (bytes, bytearray, memoryview)):
        import io

        data, path = bytes(path), Path(name or "<bytes>")
        opener = lambda av: av.open(io.BytesIO(data))  # noqa: E731
    else:
        opener = None
    if opener is None and path.is_dir():
        from zoo.media.image import open_image

        def frames() -> Iterator[np.ndarray]:
            for f in _image_files(path):
                yield np.asarray(open_image(f).convert("RGB"))

        return frames(), float(folder_fps)
    if opener is None and not path.is_file():
        raise FileNotFoundError(f"video not found: {path}")
    av = _av()
    target = str(path)
    if opener is None and name:
        path = Path(name)  # what messages call it
    try:
        container = opener(av) if opener is not None else av.open(target)
        stream = container.streams.video[0]
    except (av.error.FFmpegError, IndexError, OSError) as exc:
        raise MediaError(f"{path} is not a video file FFmpeg can read ({exc}); is it truncated or corrupt?") from None
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    fps = float(rate) if rate else float(folder_fps)

    def frames() -> Iterator[np.ndarray]:
        try:
            for frame in container.decode(stream):
                yield frame.to_ndarray(format="rgb24")
        except av.error.FFmpegError as exc:
            raise MediaError(f"{path}: decoding failed ({exc}); is the file truncated or corrupt?") from None
        finally:
            container.close()

    return frames(), fps


def _source(path: str | Path | bytes) -> Path | bytes:
    return path if isinstance(path, (bytes, bytearray, memoryview)) else Path(path)


def probe_video(path: str | Path | bytes, folder_fps: float = 8.0) -> VideoInfo:
    """Frame count, frame rate and size of a video file or image folder (decodes the file once).

    Example:
        >>> probe_video("clip.mp4")  # doctest: +SKIP
        VideoInfo(frames=48, fps=24.0, height=128, width=160)
    """
    frames, fps = _iter_source(_source(path), folder_fps)
    n, shape = 0, None
    for f in frames:
        n, shape = n + 1, f.shape
    if n == 0:
        raise MediaError(f"{path} holds no video frames")
    return VideoInfo(frames=n, fps=fps, height=int(shape[0]), width=int(shape[1]))


def video_fps(path: str | Path | bytes, folder_fps: float = 8.0) -> float:
    """The frame rate of a video file (read from its header: no frame is decoded, unlike
    :func:`probe_video`) or of an image folder (``folder_fps``).

    Example:
        >>> video_fps(write_video(torch.zeros(3, 8, 16, 16), "/tmp/zoo_doctest_fps.mp4", fps=4))
        4.0
    """
    frames, fps = _iter_source(_source(path), folder_fps)
    frames.close()
    return fps


def read_frames(path: str | Path | bytes, *, fps: float | None = None, start: int = 0, num_frames: int | None = None,
                folder_fps: float = 8.0) -> tuple[np.ndarray, float]:
    """Decode frames of a video file, image folder or encoded bytes -> uint8 ``[T, H, W, 3]`` and
    their frame rate.

    ``fps`` resamples (see :func:`resample_indices`); ``start``/``num_frames`` select frames after
    resampling. Decoding stops once the last frame needed is read.
    """
    frames, src_fps = _iter_source(_source(path), folder_fps)
    step = 1.0 if fps is None else src_fps / fps
    if step <= 0:
        raise MediaError(f"fps must be positive, got {fps}")
    out: list[np.ndarray] = []
    k = start
    for i, f in enumerate(frames):
        while int(math.floor(k * step + 1e-9)) == i and (num_frames is None or len(out) < num_frames):
            out.append(f)
            k += 1
        if num_frames is not None and len(out) >= num_frames:
            break
    if not out:
        raise MediaError(f"{path}: no frames at start={start} (fps={fps}); the video is shorter")
    return np.stack(out), (src_fps if fps is None else float(fps))


def frames_to_tensor(frames: Any, size: int | tuple[int, int] | None = None) -> torch.Tensor:
    """uint8 frames ``[T, H, W, 3]`` (numpy or torch) -> ``[1, 3, T, h, w]`` float in ``[-1, 1]``.

    ``size``: an int resizes the shorter side to it and centre-crops a square; ``(h, w)`` resizes
    to cover ``h x w`` and centre-crops (bilinear, antialiased).

    Example:
        >>> frames_to_tensor(np.zeros((2, 6, 8, 3), dtype=np.uint8), size=4).shape
        torch.Size([1, 3, 2, 4, 4])
    """
    t = torch.as_tensor(np.asarray(frames)) if not isinstance(frames, torch.Tensor) else frames
    if t.dtype != torch.uint8:
        raise InputTypeError(f"frames must be uint8 [T, H, W, 3], got {t.dtype}; float video tensors in [-1, 1] go to models directly")
    if t.dim() != 4 or t.shape[-1] != 3 or 0 in t.shape:
        raise MediaError(f"frames must be [T, H, W, 3] with T, H, W > 0, got {tuple(t.shape)}")
    x = t.permute(0, 3, 1, 2).float()  # [T, 3, H, W]
    if size is not None:
        h, w = (size, size) if isinstance(size, int) else tuple(size)
        scale = max(h / x.shape[-2], w / x.shape[-1])
        rh, rw = max(h, round(x.shape[-2] * scale)), max(w, round(x.shape[-1] * scale))
        if (rh, rw) != tuple(x.shape[-2:]):
            x = F.interpolate(x, size=(rh, rw), mode="bilinear", align_corners=False, antialias=True)
        top, left = (rh - h) // 2, (rw - w) // 2
        x = x[..., top:top + h, left:left + w]
    return (x / 127.5 - 1.0).clamp(-1, 1).permute(1, 0, 2, 3)[None].contiguous()


def load_video(path: str | Path | bytes, *, size: int | tuple[int, int] | None = None, fps: float | None = None,
               start: int = 0, num_frames: int | None = None, folder_fps: float = 8.0) -> torch.Tensor:
    """Read a clip -> ``[1, 3, T, H, W]`` in ``[-1, 1]`` (see :func:`read_frames`, :func:`frames_to_tensor`).

    Example:
        >>> clip = load_video("clip.mp4", size=128, fps=8, num_frames=16)  # doctest: +SKIP
        >>> clip.shape                                                      # doctest: +SKIP
        torch.Size([1, 3, 16, 128, 128])
    """
    frames, _ = read_frames(path, fps=fps, start=start, num_frames=num_frames, folder_fps=folder_fps)
    return frames_to_tensor(frames, size)


def check_video(video: Any, *, frames: int | None = None, size: int | tuple[int, int] | None = None,
                model: str = "this model") -> torch.Tensor:
    """Check a video batch before any compute: float ``[B, 3, T, H, W]`` (a ``[3, T, H, W]`` clip
    gains the batch axis), B >= 1, finite, in about ``[-1, 1]``, with ``frames`` frames and
    ``size`` (an int: square) when given. Raises :class:`~zoo.errors.MediaError` /
    :class:`~zoo.errors.InputTypeError` naming the fix.

    Example:
        >>> check_video(torch.zeros(3, 4, 8, 8)).shape
        torch.Size([1, 3, 4, 8, 8])
        >>> check_video(torch.zeros(1, 3, 4, 8, 8), frames=16)
        Traceback (most recent call last):
        ...
        zoo.errors.MediaError: this model takes clips of 16 frames, got 4; load with num_frames=16 or use iter_chunks for longer videos
    """
    if not isinstance(video, torch.Tensor):
        raise InputTypeError(f"{model} takes a float video tensor [B, 3, T, H, W] in [-1, 1], got {type(video).__name__}; "
                             "read files with zoo.media.video.load_video")
    if video.dim() == 4:
        video = video[None]
    if video.dim() != 5 or video.shape[1] != 3:
        raise MediaError(f"{model} takes videos [B, 3, T, H, W], got shape {tuple(video.shape)}")
    if not video.is_floating_point():
        raise InputTypeError(f"{model} takes float videos in [-1, 1], got {video.dtype}; convert uint8 frames with frames_to_tensor")
    if video.shape[0] == 0:
        raise MediaError(f"{model} got an empty batch (0 videos)")
    if 0 in video.shape:
        raise MediaError(f"{model} got an empty video of shape {tuple(video.shape)}")
    if frames is not None and video.shape[2] != frames:
        raise MediaError(f"{model} takes clips of {frames} frames, got {video.shape[2]}; "
                         f"load with num_frames={frames} or use iter_chunks for longer videos")
    if size is not None:
        want = (size, size) if isinstance(size, int) else tuple(size)
        if tuple(video.shape[-2:]) != want:
            raise MediaError(f"{model} takes {want[0]}x{want[1]} frames, got {video.shape[-2]}x{video.shape[-1]}; "
                             f"load with size={size}")
    if not bool(torch.isfinite(video).all()):
        raise MediaError(f"the video holds NaN/Inf values; {model} takes finite pixels in [-1, 1]")
    lo, hi = float(video.min()), float(video.max())
    if lo < -1.001 or hi > 1.001:
        raise MediaError(f"videos must lie in [-1, 1], got values in [{lo:.3g}, {hi:.3g}]; "
                         "convert [0, 1] videos with x * 2 - 1 and uint8 with x / 127.5 - 1")
    return video


def _chunk_starts(total: int, length: int, overlap: int) -> list[int]:
    if length < 1 or not 0 <= overlap < length:
        raise MediaError(f"chunks need length >= 1 and 0 <= overlap < length, got length={length}, overlap={overlap}")
    hop = length - overlap
    starts = [0]
    while starts[-1] + length < total:
        starts.append(starts[-1] + hop)
    return starts


def _pad_frames(x: torch.Tensor, length: int) -> torch.Tensor:
    if x.shape[2] >= length:
        return x
    return torch.cat([x, x[:, :, -1:].expand(-1, -1, length - x.shape[2], -1, -1)], dim=2)


def chunk_video(video: torch.Tensor, length: int, overlap: int = 0) -> list[Chunk]:
    """Cut ``[1, 3, T, H, W]`` into chunks of ``length`` frames that overlap by ``overlap``
    (the last one padded by repeating its last frame)."""
    starts = _chunk_starts(video.shape[2], length, overlap)
    return [Chunk(_pad_frames(video[:, :, s:s + length], length), s, min(length, video.shape[2] - s)) for s in starts]


def iter_chunks(path: str | Path | bytes, length: int, overlap: int = 0, *, size: int | tuple[int, int] | None = None,
                fps: float | None = None, folder_fps: float = 8.0, name: str | None = None) -> Iterator[Chunk]:
    """Stream a long video as :class:`Chunk` s of ``length`` frames overlapping by ``overlap``,
    decoding as it goes: at most ``length`` frames are held at a time, whatever the video's length
    (a file path is read as decoding goes; ``bytes`` are held whole). ``name`` is what error
    messages call the source (default: the path).

    Example:
        >>> for chunk in iter_chunks("long.mp4", 16, overlap=4, size=128, fps=8):  # doctest: +SKIP
        ...     tokens = model.encode(chunk.video)
    """
    if length < 1 or not 0 <= overlap < length:
        raise MediaError(f"chunks need length >= 1 and 0 <= overlap < length, got length={length}, overlap={overlap}")
    frames, src_fps = _iter_source(_source(path), folder_fps, name)
    step = 1.0 if fps is None else src_fps / fps
    buf: list[torch.Tensor] = []
    start, k, emitted = 0, 0, False
    for i, f in enumerate(frames):
        while int(math.floor(k * step + 1e-9)) == i:
            buf.append(frames_to_tensor(f[None], size))
            k += 1
            if len(buf) == length:
                yield Chunk(torch.cat(buf, dim=2), start, length)
                emitted = True
                buf = buf[length - overlap:] if overlap else []
                start += length - overlap
    if buf and (not emitted or len(buf) > overlap):
        valid = len(buf)
        yield Chunk(_pad_frames(torch.cat(buf, dim=2), length), start, valid)
    elif not emitted:
        raise MediaError(f"{name or path} holds no video frames")


def stitch_chunks(chunks: Sequence[Chunk], overlap: int = 0) -> torch.Tensor:
    """Put decoded chunks back into one video ``[B, 3, T, H, W]``: each chunk's valid frames,
    the first ``overlap // 2`` of every chunk after the first (and its predecessor's last
    ``overlap - overlap // 2``) dropped so each frame comes from the chunk where it is most central.

    Example:
        >>> v = torch.arange(10.).view(1, 1, 10, 1, 1).expand(1, 3, 10, 1, 1)
        >>> stitch_chunks(chunk_video(v, 4, overlap=2), overlap=2)[0, 0, :, 0, 0].tolist()
        [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]
    """
    if not chunks:
        raise MediaError("no chunks to stitch")
    head, tail = overlap // 2, overlap - overlap // 2
    parts = []
    for j, c in enumerate(chunks):
        lo = head if j > 0 else 0
        hi = c.valid - (tail if j < len(chunks) - 1 else 0)
        parts.append(c.video[:, :, lo:max(lo, hi)])
    return torch.cat(parts, dim=2)


def side_by_side(left: torch.Tensor, right: torch.Tensor, pad: int = 4) -> torch.Tensor:
    """Two videos ``[B, 3, T, H, W]`` (``[3, T, H, W]`` too) next to each other with a white
    ``pad``-pixel bar between (``right`` resized to ``left``'s height and frame count if they differ)."""
    if left.dim() == 4:
        left = left[None]
    if right.dim() == 4:
        right = right[None]
    right = right.to(left.dtype)
    if right.shape[2:] != left.shape[2:]:
        t, h = left.shape[2], left.shape[3]
        w = max(1, round(right.shape[4] * h / right.shape[3]))
        right = F.interpolate(right.float(), size=(t, h, w), mode="nearest").to(left.dtype)
    bar = left.new_ones(left.shape[0], 3, left.shape[2], left.shape[3], pad)
    return torch.cat([left, bar, right], dim=4)


def _to_uint8(video: torch.Tensor) -> np.ndarray:
    if video.dim() == 5:
        if video.shape[0] != 1:
            raise MediaError(f"write_video writes one video; got a batch of {video.shape[0]} (index it, or side_by_side them)")
        video = video[0]
    if video.dim() != 4 or video.shape[0] != 3:
        raise MediaError(f"write_video takes [3, T, H, W] (or [1, 3, T, H, W]) in [-1, 1], got {tuple(video.shape)}")
    x = ((video.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return x.permute(1, 2, 3, 0).contiguous().numpy()  # [T, H, W, 3]


class VideoWriter:
    """Write video frames as they come: ``.gif`` (PIL, looping; frames are kept until
    :meth:`close`, as GIF needs a global palette pass) or ``.mp4`` / ``.webm`` / ``.mkv`` / ``.mov``
    (PyAV, H.264 or VP9, yuv420p, odd sizes padded by one pixel; frames are encoded as written,
    so memory stays bounded). Use as a context manager.

    Example:
        >>> with VideoWriter("/tmp/zoo_doctest_stream.gif", fps=4) as w:
        ...     w.write(torch.zeros(1, 3, 2, 8, 8))
        ...     w.write(torch.ones(1, 3, 1, 8, 8))
        >>> w.frames
        3
    """

    def __init__(self, path: str | Path, fps: float = 8.0):
        self.path, self.fps, self.frames = Path(path), float(fps), 0
        self.suffix = self.path.suffix.lower()
        if self.suffix not in (".gif", ".mp4", ".webm", ".mkv", ".mov"):
            raise MediaError(f"cannot write video format {self.suffix!r}; use .mp4, .webm, .mkv or .gif")
        if not fps > 0:
            raise MediaError(f"fps must be positive, got {fps}")
        self._gif: list = []
        self._container = self._stream = None
        self._size: tuple[int, int] | None = None

    def _open(self, h: int, w: int) -> None:
        from fractions import Fraction

        av = _av()
        codec = "libvpx-vp9" if self.suffix == ".webm" else "libx264"
        self._container = av.open(str(self.path), mode="w")
        self._stream = self._container.add_stream(codec, rate=Fraction(self.fps).limit_denominator(1001))
        self._stream.width, self._stream.height, self._stream.pix_fmt = w + w % 2, h + h % 2, "yuv420p"
        if codec == "libx264":
            self._stream.options = {"crf": "18"}

    def write(self, video: torch.Tensor) -> None:
        """Append ``[3, T, H, W]`` / ``[1, 3, T, H, W]`` frames in ``[-1, 1]`` (all of one size)."""
        frames = _to_uint8(video)
        t, h, w, _ = frames.shape
        if self._size is not None and self._size != (h, w):
            raise MediaError(f"frames of {h}x{w} after frames of {self._size[0]}x{self._size[1]}: a video has one size")
        self._size = (h, w)
        self.frames += t
        if self.suffix == ".gif":
            from PIL import Image

            self._gif.extend(Image.fromarray(f) for f in frames)
            return
        if self._container is None:
            self._open(h, w)
        av = _av()
        if h % 2 or w % 2:
            frames = np.pad(frames, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)), mode="edge")
        for f in frames:
            for packet in self._stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")):
                self._container.mux(packet)

    def close(self) -> Path:
        """Finish the file (nothing written is an error); returns its path."""
        if self.frames == 0:
            raise MediaError(f"no frames were written to {self.path}")
        if self.suffix == ".gif":
            if self._gif:
                self._gif[0].save(self.path, save_all=True, append_images=self._gif[1:],
                                  duration=max(1, round(1000 / self.fps)), loop=0)
                self._gif = []
        elif self._container is not None:
            for packet in self._stream.encode():
                self._container.mux(packet)
            self._container.close()
            self._container = None
        return self.path

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        elif self._container is not None:
            self._container.close()


def write_video(video: torch.Tensor, path: str | Path, fps: float = 8.0) -> Path:
    """Write ``[3, T, H, W]`` / ``[1, 3, T, H, W]`` in ``[-1, 1]`` to ``path`` (``.gif``, ``.mp4``,
    ``.webm``, ``.mkv``, ``.mov``; see :class:`VideoWriter`). Returns the path.

    Example:
        >>> write_video(torch.zeros(3, 4, 16, 16), "/tmp/zoo_doctest.gif", fps=4).suffix
        '.gif'
    """
    with VideoWriter(path, fps) as writer:
        writer.write(video)
    return writer.path
