"""Small on-disk datasets for the tokenize tests: images, audio, a Parquet file and a WebDataset
tar shard, made with PIL / soundfile / pyarrow in a temporary folder."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import numpy as np
import pytest

DEMO = "flextok.demo_128"  # the embedded demo image tokenizer (weights inside the package, offline)


def png_bytes(seed: int, size: tuple[int, int] = (20, 24)) -> bytes:
    from PIL import Image

    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def wav_bytes(seed: int, samples: int = 1600, rate: int = 16000) -> bytes:
    import soundfile as sf

    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    sf.write(buf, (rng.standard_normal(samples) * 0.1).astype(np.float32), rate, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def write_tar(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 0
            tar.addfile(info, io.BytesIO(data))
    return path


def write_parquet(path: Path, columns: dict[str, list]) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table(columns), path, row_group_size=2)
    return path


@pytest.fixture
def image_dir(tmp_path) -> Path:
    """7 images in nested folders, one corrupt file, a hidden file and a label file."""
    root = tmp_path / "images"
    for i in range(6):
        sub = root / ("cats" if i % 2 else "dogs")
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"{i:02d}.png").write_bytes(png_bytes(i))
    (root / "broken.png").write_bytes(b"\x89PNG not really")
    (root / ".hidden.png").write_bytes(png_bytes(99))
    (root / "labels.txt").write_text("cat dog\n")
    return root
