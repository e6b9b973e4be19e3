"""Writers of bad files for the matrix (each returns the path it wrote)."""

from __future__ import annotations

import json
import os
import pickle
import struct
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file


class MarkerPayload:
    """Unpickling this runs ``os.system('touch MARKER')``: a pickle that executes code."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def patchvq_state(dim: int = 8) -> dict[str, torch.Tensor]:
    from zoo_patchvq.model import PatchVQ, PatchVQConfig

    torch.manual_seed(0)
    return {k: v.contiguous() for k, v in PatchVQ(PatchVQConfig(dim=dim)).state_dict().items()}


def release(folder: Path, state: dict[str, torch.Tensor] | None = None, config: object = None, raw_config: str | None = None) -> Path:
    """A patchvq release file with ``state`` and the given metadata config."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "model.safetensors"
    meta = {"config": raw_config if raw_config is not None else json.dumps({"dim": 8} if config is None else config)}
    save_file(patchvq_state() if state is None else state, str(path), metadata=meta)
    return path


def truncated(folder: Path, keep: float = 0.5) -> Path:
    path = release(folder)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def lying_header(folder: Path) -> Path:
    """A header that claims more bytes than the file has."""
    path = release(folder)
    data = path.read_bytes()
    path.write_bytes(struct.pack("<Q", len(data) * 10) + data[8:])
    return path


def garbage_header(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "model.safetensors"
    body = b"{not json at all"
    path.write_bytes(struct.pack("<Q", len(body)) + body)
    return path


def offsets_out_of_range(folder: Path) -> Path:
    """A valid JSON header whose tensor offsets point past the end of the file."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "model.safetensors"
    header = json.dumps({"codebook": {"dtype": "F32", "shape": [64, 8], "data_offsets": [0, 2048]}}).encode()
    path.write_bytes(struct.pack("<Q", len(header)) + header + b"\0" * 16)
    return path


def empty(folder: Path, name: str = "model.safetensors") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(b"")
    return path


def text_file(folder: Path, name: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text("this is not a picture or a sound\n")
    return path


def evil_pickle(folder: Path, marker: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "evil.bin"
    with open(path, "wb") as f:
        pickle.dump({"w": MarkerPayload(marker)}, f)
    return path


def random_bytes(folder: Path, name: str = "w.bin", n: int = 4096) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(np.random.default_rng(0).integers(0, 256, n, dtype=np.uint8).tobytes())
    return path


def truncated_torch_zip(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "w.pt"
    torch.save({"w": torch.zeros(1000)}, path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def png16(folder: Path, value: int) -> Path:
    """A 16-bit greyscale PNG (mode I;16) filled with ``value`` in [0, 65535]."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"grey16_{value}.png"
    Image.fromarray(np.full((32, 32), value, dtype=np.uint16)).save(path)
    return path


def truncated_png(folder: Path) -> Path:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "cut.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def rgb_png(folder: Path, size: int = 32, name: str = "ok.png", mode: str = "RGB") -> Path:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    image = Image.fromarray(np.random.default_rng(1).integers(0, 255, (size, size, 3), dtype=np.uint8))
    (image.convert(mode) if mode != "RGB" else image).save(path)
    return path


def wav(folder: Path, samples: np.ndarray, name: str = "a.wav", subtype: str = "FLOAT") -> Path:
    import soundfile

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    soundfile.write(str(path), samples, 24000, subtype=subtype)
    return path
