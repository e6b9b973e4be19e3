"""Point clouds in and out: every zoo 3-D model takes ``[B, N, 3]`` float32 xyz tensors.

Files: ``.ply`` (ASCII or binary, the ``vertex`` element's ``x y z``), ``.npy`` (``[N, >=3]``, the
first three columns) and ``.xyz`` / ``.txt`` / ``.pts`` (whitespace or comma separated columns,
the first three). :func:`normalize_points` centres a cloud and scales it into the unit sphere
(Point-BERT's ``pc_norm``); :func:`sample_points` picks a fixed number of points.

:func:`farthest_point_sample` and :func:`knn` are pure-torch versions of the CUDA ops the point
models were trained with, deterministic and following those kernels' rules:

* FPS (``pointnet2_ops.furthest_point_sample``): starts at index 0; running distances start at
  ``1e10``; points with ``x*x + y*y + z*z <= 1e-3`` are never picked (the kernel skips them); the
  distance is ``(x2-x1)^2 + (y2-y1)^2 + (z2-z1)^2`` in float32 in that order; among equal maxima
  the kernel's winner is taken, with ``S = min(2^floor(log2 N), 512)`` threads: each thread
  scans indices ``t, t + S, ...`` keeping its first maximum (strict ``>``), then the tree
  reduction (halves ``S/2, S/4, ..., 1``, left wins ties) prefers the thread whose index has the
  smallest *bit-reversed* value (thread 256 beats thread 128 in a 512-thread block). nvcc may contract the distance into FMAs, so a
  GPU run can differ from this in the last bit, which only matters for exact float ties.
* kNN (``knn_cuda.KNN``): distances as the sum of squared coordinate differences, the ``k``
  nearest in ascending order, ties by the smaller index (the kernel's insertion sort is stable).
  ``distance="matmul"`` uses ``|q|^2 + |p|^2 - 2 q.p`` instead (Point-BERT's ``square_distance``).

:func:`render_points` draws clouds side by side into a PNG (orthographic view, depth-shaded,
PIL only).

Example:
    >>> import torch
    >>> xyz = torch.tensor([[[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, -1.0]]])
    >>> farthest_point_sample(xyz, 2).tolist()
    [[0, 3]]
    >>> knn(xyz[:, :1], xyz, 2)[1].tolist()
    [[[0, 1]]]
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from zoo.errors import InputTypeError, MediaError

__all__ = [
    "POINT_SUFFIXES", "check_points", "farthest_point_sample", "gather_points", "knn", "load_points",
    "normalize_points", "render_points", "sample_points", "save_ply",
]

POINT_SUFFIXES = (".ply", ".npy", ".xyz", ".txt", ".pts")
FPS_MAX_THREADS = 512  # pointnet2_ops' TOTAL_THREADS
FPS_SKIP_MAG = 1e-3  # the kernel never picks points with |p|^2 <= this
_PLY_TYPES = {"char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1", "short": "i2", "int16": "i2",
              "ushort": "u2", "uint16": "u2", "int": "i4", "int32": "i4", "uint": "u4", "uint32": "u4",
              "float": "f4", "float32": "f4", "double": "f8", "float64": "f8"}


# --------------------------------------------------------------------------- files


def _read_ply(path: Path, data: bytes) -> np.ndarray:
    end = data.find(b"end_header")
    if not data.startswith(b"ply") or end < 0:
        raise MediaError(f"{path} is not a PLY file (no 'ply' magic / 'end_header')")
    body_start = data.index(b"\n", end) + 1
    header = data[:end].decode("ascii", "replace").splitlines()
    fmt, elements, current = None, [], None
    for line in header:
        parts = line.split()
        if not parts:
            continue
        if parts[0] == "format":
            fmt = parts[1]
        elif parts[0] == "element":
            current = [parts[1], int(parts[2]), []]
            elements.append(current)
        elif parts[0] == "property" and current is not None:
            if parts[1] == "list":
                current[2].append((parts[-1], None))
            else:
                current[2].append((parts[-1], _PLY_TYPES.get(parts[1])))
    if fmt not in ("ascii", "binary_little_endian", "binary_big_endian"):
        raise MediaError(f"{path}: unsupported PLY format {fmt!r}")
    if not elements or elements[0][0] != "vertex":
        raise MediaError(f"{path}: the first PLY element must be 'vertex' with x, y, z properties")
    _, count, props = elements[0]
    names = [n for n, _ in props]
    if not {"x", "y", "z"} <= set(names) or any(t is None for _, t in props):
        raise MediaError(f"{path}: vertex properties {names} must include x, y, z (scalar types)")
    cols = [names.index(c) for c in ("x", "y", "z")]
    if fmt == "ascii":
        lines = data[body_start:].decode("ascii", "replace").splitlines()[:count]
        try:
            arr = np.array([[float(v) for v in ln.split()[: len(props)]] for ln in lines], dtype=np.float64)
        except ValueError as exc:
            raise MediaError(f"{path}: bad ASCII vertex line ({exc})") from None
        if arr.shape != (count, len(props)):
            raise MediaError(f"{path}: expected {count} vertices of {len(props)} values, the file is truncated")
        return arr[:, cols]
    order = "<" if fmt == "binary_little_endian" else ">"
    dtype = np.dtype([(n, order + t) for n, t in props])
    need = dtype.itemsize * count
    if len(data) - body_start < need:
        raise MediaError(f"{path}: expected {count} vertices ({need} bytes), the file is truncated")
    rec = np.frombuffer(data, dtype=dtype, count=count, offset=body_start)
    return np.stack([rec["x"], rec["y"], rec["z"]], axis=1).astype(np.float64)


def load_points(path: str | Path | bytes, *, name: str | None = None) -> torch.Tensor:
    """Read a point cloud file -> float32 ``[N, 3]`` (xyz only). Encoded bytes need ``name``
    (its suffix says the format).

    Example:
        >>> save_ply(torch.tensor([[0.0, 1.0, 2.0]]), "/tmp/zoo_doctest.ply").name
        'zoo_doctest.ply'
        >>> load_points("/tmp/zoo_doctest.ply").tolist()
        [[0.0, 1.0, 2.0]]
    """
    if isinstance(path, (bytes, bytearray, memoryview)):
        if not name:
            raise MediaError("load_points from bytes needs name= (e.g. 'shape.ply'): its suffix says the format")
        data, path = bytes(path), Path(name)
    else:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"point cloud not found: {path}")
        data = path.read_bytes()
    suffix = path.suffix.lower()
    if suffix == ".ply":
        arr = _read_ply(path, data)
    elif suffix == ".npy":
        import io

        try:
            arr = np.load(io.BytesIO(data), allow_pickle=False)
        except (ValueError, OSError) as exc:
            raise MediaError(f"{path} is not a readable .npy array ({exc})") from None
    elif suffix in (".xyz", ".txt", ".pts"):
        try:
            text = data.decode("utf-8").replace(",", " ")
            arr = np.array([[float(v) for v in ln.split()] for ln in text.splitlines() if ln.strip()], dtype=np.float64)
        except (ValueError, UnicodeDecodeError) as exc:
            raise MediaError(f"{path}: every line must hold numbers x y z ... ({exc})") from None
    else:
        raise MediaError(f"cannot read point clouds from {suffix!r} files; use one of {', '.join(POINT_SUFFIXES)}")
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] < 3:
        raise MediaError(f"{path}: expected an [N, >=3] array of points, got shape {arr.shape}")
    pts = torch.from_numpy(np.ascontiguousarray(arr[:, :3], dtype=np.float32))
    if not bool(torch.isfinite(pts).all()):
        raise MediaError(f"{path}: the points hold NaN/Inf coordinates")
    return pts


def save_ply(points: torch.Tensor, path: str | Path) -> Path:
    """Write ``[N, 3]`` points as a binary little-endian PLY (float32 x, y, z)."""
    path = Path(path)
    pts = points.detach().float().cpu().reshape(-1, 3).numpy().astype("<f4")
    header = f"ply\nformat binary_little_endian 1.0\nelement vertex {len(pts)}\nproperty float x\nproperty float y\nproperty float z\nend_header\n"
    path.write_bytes(header.encode("ascii") + pts.tobytes())
    return path


# --------------------------------------------------------------------------- tensors


def check_points(points: Any, *, num_points: int | None = None, model: str = "this model") -> torch.Tensor:
    """Check a batch of clouds before any compute: float ``[B, N, 3]`` (``[N, 3]`` gains the batch
    axis), B >= 1, N >= 1 (``num_points`` when given), finite. Raises
    :class:`~zoo.errors.MediaError` / :class:`~zoo.errors.InputTypeError` naming the fix.

    Example:
        >>> check_points(torch.zeros(5, 3)).shape
        torch.Size([1, 5, 3])
    """
    if not isinstance(points, torch.Tensor):
        raise InputTypeError(f"{model} takes a float tensor [B, N, 3] of xyz points, got {type(points).__name__}; "
                             "read files with zoo.media.points.load_points")
    if points.dim() == 2:
        points = points[None]
    if points.dim() != 3 or points.shape[-1] != 3:
        raise MediaError(f"{model} takes point clouds [B, N, 3] (xyz), got shape {tuple(points.shape)}")
    if not points.is_floating_point():
        raise InputTypeError(f"{model} takes float xyz coordinates, got {points.dtype}")
    if points.shape[0] == 0 or points.shape[1] == 0:
        raise MediaError(f"{model} got an empty batch of shape {tuple(points.shape)}")
    if num_points is not None and points.shape[1] != num_points:
        raise MediaError(f"{model} takes {num_points} points per cloud, got {points.shape[1]}; "
                         f"pick them with zoo.media.points.sample_points(x, {num_points})")
    if not bool(torch.isfinite(points).all()):
        raise MediaError(f"the point cloud holds NaN/Inf coordinates; {model} takes finite xyz")
    return points


def normalize_points(points: torch.Tensor) -> torch.Tensor:
    """Centre each cloud on its mean and scale it so the farthest point lies on the unit sphere
    (Point-BERT's ``pc_norm``); ``[N, 3]`` or ``[B, N, 3]``.

    Example:
        >>> normalize_points(torch.tensor([[1.0, 0, 0], [3.0, 0, 0]])).tolist()
        [[-1.0, 0.0, 0.0], [1.0, 0.0, 0.0]]
    """
    x = points - points.mean(dim=-2, keepdim=True)
    radius = x.pow(2).sum(-1).sqrt().amax(dim=-1, keepdim=True)[..., None]
    return x / radius.clamp_min(1e-12)


def gather_points(points: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """``points[b, idx[b, ...]]`` for ``points`` ``[B, N, C]`` and ``idx`` ``[B, ...]`` -> ``[B, ..., C]``."""
    b = points.shape[0]
    flat = idx.reshape(b, -1)
    out = torch.gather(points, 1, flat[..., None].expand(-1, -1, points.shape[-1]))
    return out.reshape(*idx.shape, points.shape[-1])


def _fps_threads(n: int) -> int:
    return max(min(1 << int(math.log(n) / math.log(2.0)), FPS_MAX_THREADS), 1) if n > 0 else 1


def _bit_reverse(t: torch.Tensor, stride: int) -> torch.Tensor:
    bits = stride.bit_length() - 1
    out = torch.zeros_like(t)
    for i in range(bits):
        out |= ((t >> i) & 1) << (bits - 1 - i)
    return out


def farthest_point_sample(xyz: torch.Tensor, m: int) -> torch.Tensor:
    """Indices ``[B, m]`` (int64) of ``m`` farthest points of ``xyz`` ``[B, N, 3]``, by the rules of
    ``pointnet2_ops.furthest_point_sample`` (see the module notes: start 0, the ``|p|^2 <= 1e-3``
    skip, the kernel's tie order). Computed in float32.
    """
    xyz = check_points(xyz, model="farthest_point_sample").float()
    b, n, _ = xyz.shape
    if not 1 <= m:
        raise MediaError(f"farthest_point_sample needs m >= 1, got {m}")
    x, y, z = xyz.unbind(-1)
    valid = (x * x + y * y + z * z) > FPS_SKIP_MAG
    stride = _fps_threads(n)
    ar = torch.arange(n, device=xyz.device)
    tie_key = _bit_reverse(ar % stride, stride) * n + ar  # the reduction's thread order, then index
    big = torch.iinfo(torch.int64).max
    temp = torch.full((b, n), 1e10, dtype=torch.float32, device=xyz.device)
    idx = torch.zeros(b, m, dtype=torch.int64, device=xyz.device)
    old = torch.zeros(b, dtype=torch.int64, device=xyz.device)
    rows = torch.arange(b, device=xyz.device)
    for j in range(1, m):
        x1, y1, z1 = x[rows, old, None], y[rows, old, None], z[rows, old, None]
        d = (x - x1) * (x - x1) + (y - y1) * (y - y1) + (z - z1) * (z - z1)
        temp = torch.where(valid, torch.minimum(d, temp), temp)
        vals = torch.where(valid, temp, torch.full_like(temp, -1.0))
        best = vals.amax(dim=1, keepdim=True)
        key = torch.where(vals == best, tie_key, torch.full_like(tie_key, big))
        old = key.argmin(dim=1)
        idx[:, j] = old
    return idx


def knn(query: torch.Tensor, points: torch.Tensor, k: int, *, distance: str = "exact") -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` nearest ``points`` ``[B, N, 3]`` of every ``query`` ``[B, S, 3]`` ->
    ``(distance [B, S, k], index [B, S, k])``, nearest first, ties by the smaller index.

    ``distance="exact"``: Euclidean distance from the summed squared differences (``knn_cuda``);
    ``"matmul"``: the squared distance ``|q|^2 + |p|^2 - 2 q.p`` (Point-BERT's
    ``square_distance``), returned squared.
    """
    if k < 1 or k > points.shape[1]:
        raise MediaError(f"knn needs 1 <= k <= {points.shape[1]} (points per cloud), got k={k}")
    if distance == "exact":
        d2 = (query[:, :, None, :] - points[:, None, :, :]).pow(2)
        d2 = d2[..., 0] + d2[..., 1] + d2[..., 2]
    elif distance == "matmul":
        d2 = -2 * torch.matmul(query, points.transpose(1, 2))
        d2 = d2 + query.pow(2).sum(-1)[..., None]
        d2 = d2 + points.pow(2).sum(-1)[:, None, :]
    else:
        raise MediaError(f"knn distance must be 'exact' or 'matmul', got {distance!r}")
    vals, idx = _k_smallest(d2, k)
    return (vals.sqrt() if distance == "exact" else vals), idx


def _k_smallest(d: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` smallest values of each row in ascending order, ties by the smaller index: a
    ``topk`` (5x cheaper than a full sort) whose ties are then put in index order; rows where the
    k-th value ties with a value left out fall back to a stable sort (exact, rare)."""
    vals, idx = d.topk(k, dim=-1, largest=False, sorted=True)
    if bool(((d <= vals[..., -1:]).sum(-1) > k).any()):  # a tie across the cut: which index stays matters
        vals, idx = torch.sort(d, dim=-1, stable=True)
        return vals[..., :k], idx[..., :k]
    order = idx.argsort(dim=-1)  # index order, then a stable sort by value keeps it within ties
    vals, idx = vals.gather(-1, order), idx.gather(-1, order)
    order = torch.sort(vals, dim=-1, stable=True).indices
    return vals.gather(-1, order), idx.gather(-1, order)


def sample_points(points: torch.Tensor, num_points: int, *, method: str = "fps") -> torch.Tensor:
    """``num_points`` of each cloud ``[B, N, 3]``: ``"fps"`` (farthest point sampling), or
    ``"first"`` (the first ones); fewer points than asked are repeated cyclically.

    Example:
        >>> sample_points(torch.randn(1, 100, 3), 16).shape
        torch.Size([1, 16, 3])
    """
    points = check_points(points, model="sample_points")
    n = points.shape[1]
    if n < num_points:
        reps = torch.arange(num_points, device=points.device) % n
        return points[:, reps]
    if method == "first":
        return points[:, :num_points]
    if method != "fps":
        raise MediaError(f"sample_points method must be 'fps' or 'first', got {method!r}")
    return gather_points(points, farthest_point_sample(points, num_points))


# --------------------------------------------------------------------------- rendering


def _view_matrix(elev: float, azim: float) -> torch.Tensor:
    a, e = math.radians(azim), math.radians(elev)
    rz = torch.tensor([[math.cos(a), -math.sin(a), 0.0], [math.sin(a), math.cos(a), 0.0], [0.0, 0.0, 1.0]])
    rx = torch.tensor([[1.0, 0.0, 0.0], [0.0, math.cos(e), -math.sin(e)], [0.0, math.sin(e), math.cos(e)]])
    return rx @ rz


def render_points(clouds: Sequence[torch.Tensor], path: str | Path, *, labels: Sequence[str] | None = None,
                  size: int = 320, elev: float = 25.0, azim: float = -60.0, up: str = "y") -> Path:
    """Draw point clouds ``[N, 3]`` side by side into a PNG: one shared orthographic view
    (``elev``/``azim`` degrees, ``up`` axis ``"y"`` as in ShapeNet or ``"z"``), points as
    depth-shaded dots drawn back to front, all panels at one scale so sizes compare.

    Example:
        >>> render_points([torch.randn(64, 3), torch.randn(64, 3)], "/tmp/zoo_doctest_points.png",
        ...               labels=["input", "output"]).suffix
        '.png'
    """
    from PIL import Image, ImageDraw

    if not clouds:
        raise MediaError("render_points needs at least one cloud")
    pts = [check_points(c, model="render_points")[0].detach().float().cpu() for c in clouds]
    if up == "y":
        pts = [p[:, [0, 2, 1]] * torch.tensor([1.0, -1.0, 1.0]) for p in pts]
    elif up != "z":
        raise MediaError(f"render_points up must be 'y' or 'z', got {up!r}")
    rot = _view_matrix(elev, azim)
    views = [p @ rot.t() for p in pts]  # screen x = col 0, depth = col 1, screen y = col 2
    centre = torch.cat(views).mean(0)
    extent = max(float((v - centre).abs()[:, [0, 2]].max()) for v in views) or 1.0
    header = 18 if labels else 0
    pad = 8
    canvas = Image.new("RGB", (len(views) * (size + pad) + pad, size + header + pad), "white")
    draw = ImageDraw.Draw(canvas)
    for j, label in enumerate(labels or []):
        draw.text((pad + j * (size + pad) + 4, 3), str(label), fill="black")
    half = (size - 8) / 2
    for j, v in enumerate(views):
        v = v - centre
        sx = (v[:, 0] / extent * half + size / 2 + pad + j * (size + pad)).tolist()
        sy = (-v[:, 2] / extent * half + size / 2 + header).tolist()
        depth = v[:, 1]
        dn = ((depth - depth.min()) / (depth.max() - depth.min()).clamp_min(1e-9)).tolist()
        r = max(1.0, min(3.0, 600.0 / math.sqrt(len(sx) + 1) / 10))
        for i in sorted(range(len(sx)), key=lambda i: -dn[i]):  # far (large depth) first
            shade = int(40 + 160 * dn[i])
            draw.ellipse((sx[i] - r, sy[i] - r, sx[i] + r, sy[i] + r), fill=(shade, int(90 + 0.5 * shade), 200))
    path = Path(path)
    canvas.save(path)
    return path
