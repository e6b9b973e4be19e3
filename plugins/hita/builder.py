"""The ``hita`` builder: ``hita-tok.pt`` / ``hita-ultra.pt`` (+ the DINOv2-L-reg4 ``.pth``) -> :class:`~.model.Hita`.

* ``read_checkpoint`` loads the ``.pt`` with ``weights_only=True`` and takes its ``"ema"``, else
  ``"model"``, else ``"state_dict"`` entry (the reference's ``vqgan_test.py`` order).
* The release does not hold the frozen DINOv2 (the reference loads it with ``strict=False`` and
  checks that only ``backbone`` keys are missing): its facebookresearch ``*_pretrain.pth`` comes
  from the dependency card ``dinov2.vitl14_reg4`` (or from a ``dinov2*`` file beside the release,
  ``weights=FOLDER``) and loads under ``encode_transformer.backbone.pretrained_encoder.``.
* ``convert`` renames the conv encoder/decoder from LlamaGen's layout
  (:func:`zoo.nn.conv_layouts.convert_state_dict`) and drops :data:`DROPPED_KEYS` by name. The
  load is strict.

Example:
    >>> HitaBuilder().name
    'hita'
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from zoo.builders import Checkpoint, CheckpointFiles, ModelBuilder
from zoo.errors import CheckpointError

from .config import HitaConfig

__all__ = ["BACKBONE_PREFIX", "DROPPED_KEYS", "HitaBuilder", "from_reference"]

#: Training-only buffers in the release: the codebook usage ring buffers of both quantizers.
DROPPED_KEYS = ("quantize.codebook_used", "slot_quantize.codebook_used")
BACKBONE_PREFIX = "encode_transformer.backbone.pretrained_encoder."
_WEIGHT_SUFFIXES = (".pth", ".pt", ".bin", ".safetensors")
_DINO = re.compile(r"^dinov2.*")


def from_reference(state: Mapping[str, Any], config: HitaConfig) -> dict[str, Any]:
    """The reference ``VQModel`` state dict (or manifest ``{key: (shape, dtype)}``) -> zoo's keys."""
    from zoo.nn.conv_layouts import convert_state_dict

    out = {k: v for k, v in state.items() if k not in DROPPED_KEYS}
    return convert_state_dict(out, "llamagen", "diffusers", num_levels=len(config.ch_mult))


def _sibling_backbone(files: CheckpointFiles) -> Path | None:
    if not files.origin.startswith("local-"):
        return None
    found = sorted(p for p in Path(files.primary).parent.iterdir()
                   if _DINO.match(p.name) and p.suffix in _WEIGHT_SUFFIXES and p.is_file())
    if len(found) > 1:
        raise CheckpointError(f"{Path(files.primary).parent} holds {len(found)} DINOv2 files ({[p.name for p in found]}): "
                              "keep dinov2_vitl14_reg4_pretrain.pth only")
    return found[0] if found else None


def _read(path: Path) -> Mapping[str, Any]:
    from zoo.weights import load_weights_file

    state, _ = load_weights_file(path)
    return state


class HitaBuilder(ModelBuilder):
    """Builds ``hita.vanilla`` and ``hita.ultra``."""

    name = "hita"
    config_class = HitaConfig

    def needed_dependencies(self, files: CheckpointFiles, card) -> set[str]:
        return set() if _sibling_backbone(files) is not None else set(card.dependencies)

    def read_checkpoint(self, files: CheckpointFiles) -> Checkpoint:
        path = Path(files.primary)
        state = _read(path)
        for entry in ("ema", "model", "state_dict"):
            if isinstance(state, Mapping) and isinstance(state.get(entry), Mapping):
                state = state[entry]
                break
        if not isinstance(state, Mapping) or not any(str(k).startswith("encode_transformer.") for k in state):
            got = sorted(state)[:6] if isinstance(state, Mapping) else type(state).__name__
            raise CheckpointError(f"{path} is not a Hita tokenizer checkpoint: expected encode_transformer.* / encoder.* / "
                                  f"quantize.* keys (optionally under 'ema' or 'model'), got {got}")
        state = dict(state)
        config: dict[str, Any] = {"enable_vfm_recon": any(k.startswith("decode_transformer.proj.") for k in state)}
        if not any(k.startswith(BACKBONE_PREFIX) for k in state):
            backbone = _sibling_backbone(files)
            if backbone is None and "backbone" in files.deps:
                backbone = Path(files.deps["backbone"].primary)
            if backbone is None:
                raise CheckpointError(f"{path.name} does not hold the frozen DINOv2: put dinov2_vitl14_reg4_pretrain.pth "
                                      "beside it (weights=FOLDER) or let zoo resolve dinov2.vitl14_reg4")
            dino = _read(backbone)
            if not isinstance(dino, Mapping) or "cls_token" not in dino:
                raise CheckpointError(f"{backbone} is not a DINOv2 checkpoint (facebookresearch layout: cls_token, pos_embed, blocks.*)")
            state.update({BACKBONE_PREFIX + k: v for k, v in dino.items()})
        return Checkpoint(state_dict=state, config=config, extra={"path": str(path)})

    def build(self, config: HitaConfig):
        from .model import Hita

        return Hita(config)

    def convert(self, state_dict: Mapping[str, Any], config: HitaConfig) -> Mapping[str, Any]:
        return from_reference(state_dict, config)
