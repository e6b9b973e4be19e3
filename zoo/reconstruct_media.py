"""``zoo reconstruct`` for video and point-cloud tokenizers (the image/audio paths live in ``zoo.cli``).

* Video (``modality: video``): the clip is read chunk by chunk (:func:`zoo.media.video.iter_chunks`,
  the model's frame count and size, native frame rate), each chunk encoded and decoded, and the
  input | reconstruction pair written side by side as ``.mp4`` / ``.webm`` / ``.gif`` as it goes:
  memory is bounded by one chunk whatever the video's length (a ``.gif`` holds its frames until
  the end). The last chunk is padded by repeating its last frame; only its real frames are written.
* An image into a joint image-video tokenizer (OmniTokenizer: ``model.takes_images``): one frame,
  input | reconstruction as ``.png``.
* Point clouds (``modality: 3d``): the file is read, normalised and sampled as the model expects
  (``model.prepare_points``), encoded, decoded, and input | reconstruction drawn into a ``.png``.

Every argument, the input file and the output path are checked before the model is loaded.

Example:
    >>> sorted(VIDEO_OUTPUTS), POINT_OUTPUTS
    (['.gif', '.mkv', '.mp4', '.webm'], ('.png',))
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterator

from zoo.errors import MediaError, ZooError

__all__ = ["VIDEO_OUTPUTS", "POINT_OUTPUTS", "MODALITIES", "check_media_request", "encode_video_chunks", "reconstruct_points",
           "reconstruct_video"]

VIDEO_OUTPUTS = (".mp4", ".webm", ".mkv", ".gif")
POINT_OUTPUTS = (".png",)
MODALITIES = ("video", "3d")


def check_media_request(modality: str, inputs: tuple[str, ...], out: str, token_counts: list[int] | None,
                        codebook_counts: list[int] | None, steps: int | None, guidance_scale: float | None) -> None:
    """Raise :class:`~zoo.errors.ZooError` for arguments a video / 3-D reconstruction cannot take."""
    what = "video" if modality == "video" else "point-cloud"
    if len(inputs) != 1:
        raise ZooError(f"{what} reconstruct takes one input file, got {len(inputs)}")
    for flag, value in (("--tokens", token_counts), ("--codebooks", codebook_counts), ("--steps", steps),
                        ("--guidance-scale", guidance_scale)):
        if value:
            raise ZooError(f"{flag} does not apply to {what} tokenizers")
    image_in = modality == "video" and _is_image(inputs[0])
    allowed = POINT_OUTPUTS if modality == "3d" or image_in else VIDEO_OUTPUTS
    if image_in:
        what = "image"
    if Path(out).suffix.lower() not in allowed:
        raise ZooError(f"--out {out!r}: a {what} reconstruction is written as {' / '.join(allowed)}")
    if not Path(out).resolve().parent.is_dir():
        raise ZooError(f"--out {out!r}: the folder {Path(out).resolve().parent} does not exist")
    if image_in:
        from zoo.media.image import open_image

        open_image(inputs[0])
    elif modality == "video":  # an unreadable input fails here, before the model loads
        from zoo.media.video import read_frames

        read_frames(inputs[0], num_frames=1)
    else:
        from zoo.media.points import load_points

        load_points(inputs[0])


def _is_image(path: str | Path) -> bool:
    from zoo.media.video import IMAGE_SUFFIXES

    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def encode_video_chunks(model: Any, path: str | Path, *, overlap: int = 0, device: str = "cpu") -> Iterator[tuple[Any, Any]]:
    """``(chunk, tokens)`` for every chunk of a video file, encoded as it is decoded: the model's
    frame count and size, native frame rate, ``overlap`` frames shared by neighbours. Memory stays
    bounded by one chunk whatever the video's length (each chunk is dropped once yielded unless
    the caller keeps it); ``chunk.valid`` says how many of its frames are real.

    Example:
        >>> for chunk, tokens in encode_video_chunks(zoo.load("larp"), "long.mp4"):  # doctest: +SKIP
        ...     print(chunk.start, tokens.ids.shape)
        0 torch.Size([1, 1024])
    """
    import torch

    from zoo.media.video import iter_chunks

    for chunk in iter_chunks(path, int(model.num_frames), overlap, size=int(model.image_size)):
        with torch.inference_mode():
            yield chunk, model.encode(chunk.video.to(device))


def reconstruct_video(model: Any, path: str | Path, out: str | Path, *, device: str = "cpu",
                      echo: Callable[[str], None] = print) -> Path:
    """Encode and decode a video chunk by chunk, writing input | reconstruction to ``out``; an
    image file into a joint image-video tokenizer (``model.takes_images``) gives a PNG pair."""
    import torch

    if _is_image(path):
        return _reconstruct_image(model, path, out, device=device, echo=echo)

    from zoo.media.video import VideoWriter, side_by_side, video_fps

    frames = int(model.num_frames)
    fps = video_fps(path)  # from the header (an unreadable file fails here); the clip is decoded once, below
    chunks = tokens = 0
    with VideoWriter(out, fps=fps) as writer:
        for chunk, tok in encode_video_chunks(model, path, device=device):
            with torch.inference_mode():
                y = model.decode(tok)
            writer.write(side_by_side(chunk.video, y.cpu())[:, :, : chunk.valid])
            chunks, tokens = chunks + 1, tokens + int(tok.ids.numel())
    echo(f"wrote {out} ({writer.frames} frames at {fps:g} fps: input | reconstruction; "
         f"{chunks} chunk(s) of {frames} frames, {tokens} tokens)")
    return Path(out)


def _reconstruct_image(model: Any, path: str | Path, out: str | Path, *, device: str, echo: Callable[[str], None]) -> Path:
    import torch

    from zoo.media.image import load_images, save_grid

    if not getattr(model, "takes_images", False):
        raise ZooError(f"{getattr(model, 'name', 'this model')} tokenizes video clips only; pass a video file (.mp4, .webm, .gif)")
    images = load_images([path], size=int(model.image_size)).to(device)
    with torch.inference_mode():
        tok = model.encode(images)
        recon = model.decode(tok)
    save_grid([[images[0].cpu(), recon[0].cpu()]], out, col_labels=["input", "reconstruction"])
    echo(f"wrote {out} (input | reconstruction; {tok.max_length} tokens)")
    return Path(out)


def reconstruct_points(model: Any, path: str | Path, out: str | Path, *, device: str = "cpu",
                       echo: Callable[[str], None] = print) -> Path:
    """Encode and decode one point cloud, drawing input | reconstruction into ``out`` (PNG)."""
    import torch

    from zoo.media.points import load_points, render_points

    pts = load_points(path)
    if not hasattr(model, "prepare_points"):
        raise MediaError(f"{model!r} does not say how it takes point clouds (no prepare_points)")
    x = model.prepare_points(pts[None]).to(device)
    with torch.inference_mode():
        tok = model.encode(x)
        y = model.decode(tok)
    render_points([x[0], y[0]], out, labels=[f"input ({x.shape[1]} points)", f"reconstruction ({y.shape[1]} points)"])
    echo(f"wrote {out} (input | reconstruction; {int(tok.ids.numel())} tokens)")
    return Path(out)
