"""Deterministic random weights and key/shape manifests for parity tests.

Official checkpoints are too large to commit, so parity tests regenerate weights in the
official key names and shapes from a per-key seed (a hash of the key name), identically in the
fixture recorder (which runs the reference) and in the test (which runs zoo).

Example:
    >>> import torch
    >>> sd = seeded_state_dict({"w": ((2, 3), "float32")}, seed=0)
    >>> torch.equal(sd["w"], seeded_state_dict({"w": ((2, 3), "float32")}, seed=0)["w"])
    True
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Callable, Mapping

import torch

__all__ = ["key_seed", "seeded_tensor", "seeded_state_dict", "load_seeded", "state_manifest", "assert_manifest_equal", "save_manifest", "load_manifest"]

Manifest = dict[str, tuple[tuple[int, ...], str]]


def key_seed(key: str, seed: int = 0) -> int:
    """A stable 63-bit seed for one state-dict key (independent of Python's hash salt)."""
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def seeded_tensor(key: str, shape: tuple[int, ...], dtype: torch.dtype = torch.float32, *, seed: int = 0, std: float = 0.02, mean: float = 0.0) -> torch.Tensor:
    """Normal(mean, std) values drawn from the key's own generator (integer dtypes: zeros)."""
    if not dtype.is_floating_point:
        return torch.zeros(shape, dtype=dtype)
    g = torch.Generator().manual_seed(key_seed(key, seed))
    return (torch.randn(shape, generator=g, dtype=torch.float32) * std + mean).to(dtype)


def default_init(key: str, shape: tuple[int, ...]) -> tuple[float, float]:
    """(mean, std) for a key: norm weights near 1, biases small, matrices ~ 1/sqrt(fan_in)."""
    leaf = key.rsplit(".", 1)[-1]
    if len(shape) == 1 and leaf in ("weight", "gamma", "scale", "g"):
        return 1.0, 0.02
    if len(shape) <= 1:
        return 0.0, 0.02
    fan_in = 1
    for s in shape[1:]:
        fan_in *= s
    return 0.0, fan_in**-0.5


def seeded_state_dict(manifest: Mapping[str, tuple], *, seed: int = 0, init: Callable[[str, tuple[int, ...]], tuple[float, float]] = default_init) -> dict[str, torch.Tensor]:
    """A full state dict for ``manifest`` (``{key: (shape, dtype_name)}``), deterministic per key.

    Example:
        >>> sd = seeded_state_dict({"ln.weight": ((4,), "float32")})
        >>> round(float(sd["ln.weight"].mean()))
        1
    """
    out = {}
    for key, (shape, dtype) in manifest.items():
        shape = tuple(int(s) for s in shape)
        mean, std = init(key, shape)
        out[key] = seeded_tensor(key, shape, getattr(torch, str(dtype).replace("torch.", "")), seed=seed, std=std, mean=mean)
    return out


def load_seeded(model: torch.nn.Module, expected: Mapping[str, tuple] | None = None, *, seed: int = 0) -> Manifest:
    """Fill ``model`` with :func:`seeded_state_dict` weights (strict); returns its manifest.

    With ``expected`` (e.g. a recorded reference manifest) the model's keys and shapes must
    equal it first.

    Example:
        >>> m = torch.nn.Linear(2, 3)
        >>> load_seeded(m)["weight"]
        ((3, 2), 'float32')
    """
    manifest = state_manifest(model)
    if expected is not None:
        assert_manifest_equal(manifest, {k: (tuple(s), d) for k, (s, d) in expected.items()})
    model.load_state_dict(seeded_state_dict(manifest, seed=seed), strict=True)
    return manifest


def state_manifest(module_or_state: torch.nn.Module | Mapping[str, torch.Tensor]) -> Manifest:
    """``{key: (shape, dtype)}`` of a module's state dict (or of a state dict), sorted by key."""
    sd = module_or_state.state_dict() if isinstance(module_or_state, torch.nn.Module) else module_or_state
    return {k: (tuple(v.shape), str(v.dtype).replace("torch.", "")) for k, v in sorted(sd.items())}


def save_manifest(manifest: Manifest, path: str | Path) -> None:
    """Write a manifest as sorted JSON (small, diff-friendly)."""
    Path(path).write_text(json.dumps({k: [list(s), d] for k, (s, d) in sorted(manifest.items())}, indent=0) + "\n")


def load_manifest(path: str | Path) -> Manifest:
    """Read a manifest written by :func:`save_manifest`."""
    return {k: (tuple(s), d) for k, (s, d) in json.loads(Path(path).read_text()).items()}


def assert_manifest_equal(actual: Manifest, expected: Manifest, *, what: str = "model") -> None:
    """Fail with the missing / unexpected keys and shape mismatches, as a strict load would."""
    missing = sorted(set(expected) - set(actual))
    unexpected = sorted(set(actual) - set(expected))
    shapes = [f"{k}: {actual[k][0]} != {expected[k][0]}" for k in sorted(set(actual) & set(expected)) if tuple(actual[k][0]) != tuple(expected[k][0])]
    if missing or unexpected or shapes:
        lines = [f"{what}: key/shape manifest differs"]
        for title, items in (("missing", missing), ("unexpected", unexpected), ("shape mismatch", shapes)):
            if items:
                lines.append(f"  {title} ({len(items)}): " + ", ".join(items[:20]) + (" ..." if len(items) > 20 else ""))
        raise AssertionError("\n".join(lines))
