"""The ``digit`` builder: ``km_{8,16}k.npy`` (k-means centroids) + the DINOv2-reg4 ``.pth`` ->
:class:`~.model.DiGIT`.

* The centroids are read with ``numpy.load(allow_pickle=False)`` (a ``[K, D]`` float array, as
  faiss writes it) and become ``kmeans.centroids``; ``num_centroids`` comes from the file.
* DINOv2 is the backbone dependency (card ``dinov2.vitb14_reg4`` / ``dinov2.vitl14_reg4``): its
  facebookresearch ``*_pretrain.pth`` (a weights-only pickle of the state dict) loads under
  ``encoder.`` unchanged, strictly (``mask_token`` included: it is in the file and in the model).
  A DINOv2 file passed with the centroids (``weights=FOLDER`` holding both) is used and nothing is
  downloaded; otherwise the dependency card's file is resolved.

Example:
    >>> b = DiGITBuilder()
    >>> b.name, b.config_class.__name__
    ('digit', 'DiGITConfig')
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from zoo.builders import Checkpoint, CheckpointFiles, ModelBuilder
from zoo.errors import CheckpointError

from .config import DiGITConfig

__all__ = ["DiGITBuilder", "read_centroids"]

_WEIGHT_SUFFIXES = (".pth", ".pt", ".bin", ".safetensors")


def read_centroids(path: str | Path):
    """A ``[K, D]`` float tensor from ``km_*.npy`` (no pickles)."""
    import numpy as np
    import torch

    try:
        arr = np.load(Path(path), allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{path} is not a readable .npy array of k-means centroids ({exc}); download it again") from exc
    if arr.ndim != 2 or arr.dtype.kind != "f" or 0 in arr.shape:
        raise CheckpointError(f"{path} must hold [K, D] float centroids, got shape {arr.shape} dtype {arr.dtype}")
    return torch.from_numpy(np.ascontiguousarray(arr))


def _sibling_backbone(files: CheckpointFiles) -> Path | None:
    """A DINOv2 release next to the centroids (``weights=FOLDER`` holding both; zoo passes only the
    card's own files on, so the folder is searched for ``dinov2*`` weights)."""
    npy = [Path(p) for n, p in files.paths.items() if Path(n).suffix == ".npy"]
    if len(npy) != 1 or not files.origin.startswith("local-"):
        return None
    found = sorted(p for p in npy[0].parent.glob("dinov2*") if p.suffix in _WEIGHT_SUFFIXES and p.is_file())
    if len(found) > 1:
        raise CheckpointError(f"{npy[0].parent} holds {len(found)} DINOv2 files ({[p.name for p in found]}): keep the one "
                              "the card names (dinov2_vit*14_reg4_pretrain.pth)")
    return found[0] if found else None


def _backbone_file(files: CheckpointFiles) -> Path | None:
    for name, path in files.paths.items():
        if Path(name).suffix in _WEIGHT_SUFFIXES:
            return Path(path)
    sibling = _sibling_backbone(files)
    if sibling is not None:
        return sibling
    dep = files.deps.get("backbone")
    return Path(dep.primary) if dep is not None else None


class DiGITBuilder(ModelBuilder):
    """Builds ``digit.base_8k`` and ``digit.large_16k``."""

    name = "digit"
    config_class = DiGITConfig

    def needed_dependencies(self, files: CheckpointFiles, card) -> set[str]:
        has_backbone = any(Path(n).suffix in _WEIGHT_SUFFIXES for n in files.paths) or _sibling_backbone(files) is not None
        return set() if has_backbone else set(card.dependencies)

    def read_checkpoint(self, files: CheckpointFiles) -> Checkpoint:
        from zoo.weights import load_weights_file

        npy = [Path(p) for n, p in files.paths.items() if Path(n).suffix == ".npy"]
        if len(npy) != 1:
            raise CheckpointError(f"DiGIT needs exactly one k-means file (km_8k.npy / km_16k.npy) among {sorted(files.paths)} "
                                  f"({files.origin})")
        centroids = read_centroids(npy[0])
        backbone = _backbone_file(files)
        if backbone is None:
            raise CheckpointError(f"DiGIT needs the DINOv2-reg4 weights (dinov2_vit*14_reg4_pretrain.pth) beside {npy[0].name}: "
                                  "put the file in the same folder or let zoo resolve the backbone card")
        state, _ = load_weights_file(backbone)
        if isinstance(state, Mapping) and "cls_token" not in state and isinstance(state.get("model"), Mapping):
            state = state["model"]
        if not isinstance(state, Mapping) or "cls_token" not in state or "pos_embed" not in state:
            got = sorted(state)[:6] if isinstance(state, Mapping) else type(state).__name__
            raise CheckpointError(f"{backbone} is not a DINOv2 checkpoint (facebookresearch layout: cls_token, pos_embed, "
                                  f"register_tokens, blocks.*), got {got}")
        out = {f"encoder.{k}": v for k, v in state.items()}
        out["kmeans.centroids"] = centroids
        return Checkpoint(state_dict=out, config={"num_centroids": int(centroids.shape[0])},
                          extra={"centroids": str(npy[0]), "backbone": str(backbone)})

    def build(self, config: DiGITConfig):
        from .model import DiGIT

        return DiGIT(config)

    def convert(self, state_dict: Mapping[str, Any], config: DiGITConfig) -> Mapping[str, Any]:
        return dict(state_dict)
