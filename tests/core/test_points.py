"""zoo.media.points: files, normalisation, the CUDA-rule FPS and kNN, rendering."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from zoo.errors import InputTypeError, MediaError
from zoo.media import points as P


def _kernel_fps(xyz: np.ndarray, m: int) -> list[int]:
    """A literal, thread-by-thread transcription of pointnet2_ops' furthest_point_sampling_kernel."""
    n = len(xyz)
    stride = max(min(1 << int(np.log(n) / np.log(2.0)), 512), 1)
    temp = np.full(n, 1e10, dtype=np.float32)
    xyz = xyz.astype(np.float32)
    old, out = 0, [0]
    for _ in range(1, m):
        x1, y1, z1 = xyz[old]
        dists, dists_i = [], []
        for tid in range(stride):
            best, besti = np.float32(-1), 0
            for k in range(tid, n, stride):
                x2, y2, z2 = xyz[k]
                if x2 * x2 + y2 * y2 + z2 * z2 <= np.float32(1e-3):
                    continue
                d = (x2 - x1) * (x2 - x1) + (y2 - y1) * (y2 - y1) + (z2 - z1) * (z2 - z1)
                d2 = min(d, temp[k])
                temp[k] = d2
                besti = k if d2 > best else besti
                best = d2 if d2 > best else best
            dists.append(best)
            dists_i.append(besti)
        s = stride // 2
        while s >= 1:
            for tid in range(s):
                v1, v2 = dists[tid], dists[tid + s]
                i1, i2 = dists_i[tid], dists_i[tid + s]
                dists[tid] = max(v1, v2)
                dists_i[tid] = i2 if v2 > v1 else i1
            s //= 2
        old = dists_i[0]
        out.append(old)
    return out


GRID = np.stack(np.meshgrid(*[np.arange(3.0) - 1] * 3, indexing="ij"), -1).reshape(-1, 3)  # exact ties everywhere

FPS_CASES = {
    "random": np.random.default_rng(0).normal(size=(37, 3)),
    "grid_ties": GRID,
    "near_origin_skipped": np.concatenate([np.zeros((1, 3)), np.full((3, 3), 0.01), np.random.default_rng(1).normal(size=(20, 3))]),
    "duplicates": np.repeat(np.random.default_rng(2).normal(size=(6, 3)), 3, axis=0),
    "many_threads": np.random.default_rng(3).integers(-2, 3, size=(600, 3)).astype(np.float64),  # 512 threads, ties
}


@pytest.mark.parametrize("name", sorted(FPS_CASES))
def test_fps_follows_the_cuda_kernel(name):
    xyz = FPS_CASES[name]
    m = min(len(xyz), 12)
    got = P.farthest_point_sample(torch.tensor(xyz, dtype=torch.float32)[None], m)[0].tolist()
    assert got == _kernel_fps(xyz, m)


def test_fps_never_picks_points_near_the_origin_and_batches_independently():
    xyz = torch.tensor(FPS_CASES["near_origin_skipped"], dtype=torch.float32)
    idx = P.farthest_point_sample(torch.stack([xyz, xyz.flip(0)]), 10)
    assert idx[0, 0] == 0 and not set(idx[0, 1:].tolist()) & {0, 1, 2, 3}
    assert idx[1].tolist() == P.farthest_point_sample(xyz.flip(0)[None], 10)[0].tolist()


@pytest.mark.parametrize("distance", ["exact", "matmul"])
def test_knn_nearest_first_ties_by_index(distance):
    pts = torch.tensor(GRID, dtype=torch.float32)[None]
    q = torch.tensor([[[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]]])
    d, idx = P.knn(q, pts, 7, distance=distance)
    full = ((q[0, :, None] - pts[0, None]) ** 2).sum(-1)
    for s in range(2):
        order = sorted(range(27), key=lambda i: (float(full[s, i]), i))[:7]
        assert idx[0, s].tolist() == order
    want = full.gather(1, idx[0])
    torch.testing.assert_close(d[0] if distance == "matmul" else d[0] ** 2, want, atol=1e-5, rtol=0)


def test_gather_and_sample_points():
    pts = torch.randn(2, 50, 3)
    idx = torch.tensor([[3, 4], [0, 49]])
    assert torch.equal(P.gather_points(pts, idx)[1, 1], pts[1, 49])
    assert P.sample_points(pts, 8).shape == (2, 8, 3)
    assert torch.equal(P.sample_points(pts[:, :3], 5)[0, 3], pts[0, 0])  # too few: cyclic repeat


def test_normalize_points_unit_sphere():
    x = torch.randn(3, 100, 3) * 5 + 2
    y = P.normalize_points(x)
    torch.testing.assert_close(y.mean(1), torch.zeros(3, 3), atol=1e-5, rtol=0)
    torch.testing.assert_close(y.norm(dim=-1).amax(1), torch.ones(3))


@pytest.mark.parametrize("fmt", ["ply_binary", "ply_ascii", "npy", "xyz", "csv_txt"])
def test_files_round_trip(tmp_path, fmt):
    pts = torch.randn(17, 3)
    if fmt == "ply_binary":
        path = P.save_ply(pts, tmp_path / "a.ply")
    elif fmt == "ply_ascii":
        path = tmp_path / "a.ply"
        rows = "\n".join(f"{a} {b} {c} 255 0 0" for a, b, c in pts.tolist())
        path.write_text("ply\nformat ascii 1.0\ncomment x\nelement vertex 17\nproperty float x\nproperty float y\n"
                        "property float z\nproperty uchar red\nproperty uchar green\nproperty uchar blue\n"
                        "element face 0\nproperty list uchar int vertex_indices\nend_header\n" + rows + "\n")
    elif fmt == "npy":
        path = tmp_path / "a.npy"
        np.save(path, np.concatenate([pts.numpy(), np.ones((17, 3), np.float32)], 1))
    elif fmt == "xyz":
        path = tmp_path / "a.xyz"
        path.write_text("\n".join(" ".join(map(repr, r)) for r in pts.tolist()))
    else:
        path = tmp_path / "a.txt"
        path.write_text("\n".join(",".join(map(repr, r)) + ",0.5,0.5,0.5" for r in pts.tolist()))
    torch.testing.assert_close(P.load_points(path), pts)


@pytest.mark.parametrize("content,suffix,match", [
    (b"not a ply", ".ply", "not a PLY"),
    (b"ply\nformat binary_little_endian 1.0\nelement vertex 10\nproperty float x\nproperty float y\nproperty float z\nend_header\n\x00\x00", ".ply", "truncated"),
    (b"1 2\n3 4\n", ".xyz", r"\[N, >=3\]"),
    (b"1 2 x\n", ".xyz", "numbers"),
    (b"nan 1 2\n", ".xyz", "NaN"),
    (b"", ".obj", "cannot read"),
])
def test_bad_files(tmp_path, content, suffix, match):
    path = tmp_path / f"bad{suffix}"
    path.write_bytes(content)
    with pytest.raises(MediaError, match=match):
        P.load_points(path)


def test_missing_file():
    with pytest.raises(FileNotFoundError):
        P.load_points("/nonexistent/x.ply")


@pytest.mark.parametrize("value,err", [
    ([[0.0, 0.0, 0.0]], InputTypeError),
    (torch.zeros(2, 5, 2), MediaError),
    (torch.zeros(0, 5, 3), MediaError),
    (torch.zeros(1, 5, 3, dtype=torch.int64), InputTypeError),
    (torch.tensor([[[float("nan"), 0.0, 0.0]]]), MediaError),
])
def test_check_points_rejects(value, err):
    with pytest.raises(err):
        P.check_points(value)


def test_render_points_draws_every_panel(tmp_path):
    from PIL import Image

    path = P.render_points([torch.randn(200, 3), torch.randn(200, 3) * 0.5], tmp_path / "p.png", labels=["in", "out"])
    img = np.asarray(Image.open(path).convert("RGB"))
    w = img.shape[1]
    for panel in (img[:, : w // 2], img[:, w // 2:]):
        assert (panel.sum(-1) < 600).sum() > 100  # each panel holds drawn points


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("distance", ["exact", "matmul"])
def test_knn_equals_a_stable_sort_on_tie_heavy_grids(seed, distance):
    """The topk fast path with its tie handling gives exactly the first k of a stable sort."""
    g = torch.Generator().manual_seed(seed)
    q, p = torch.randint(-2, 3, (2, 6, 3), generator=g).float(), torch.randint(-2, 3, (2, 50, 3), generator=g).float()
    for k in (1, 7, 25, 50):
        _, idx = P.knn(q, p, k, distance=distance)
        if distance == "exact":
            full = ((q[:, :, None] - p[:, None]) ** 2).sum(-1)
        else:
            full = -2 * q @ p.transpose(1, 2) + (q**2).sum(-1)[..., None] + (p**2).sum(-1)[:, None]
        assert torch.equal(idx, torch.sort(full, dim=-1, stable=True).indices[..., :k])
