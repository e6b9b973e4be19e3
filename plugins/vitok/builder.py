"""The ``vitok_v2`` builder: ViTok-v2's ``encoder.safetensors`` + ``decoder.safetensors`` -> :class:`~.model.ViTokV2`.

The two files load unchanged and together strictly: the encoder file holds ``patch_embed.*``,
``to_code.*`` and ``encoder_blocks.*``, the decoder file ``decoder_embed.*``, ``to_pixels.*`` and
``decoder_blocks.*`` (the reference's ``output_fn`` LayerNorm has no parameters). Nothing is
dropped. A key found in both files, or a file missing, is a :class:`~zoo.errors.CheckpointError`.
Block keys are renamed onto :class:`zoo.nn.prenorm.PreNormBlock`'s (:data:`BLOCK_KEYS`).

Example:
    >>> from_reference({"encoder_blocks.0.attn.qkv_proj.weight": 1, "encoder_blocks.0.ffn.fc1.weight": 2})
    {'encoder_blocks.0.attn.qkv.weight': 1, 'encoder_blocks.0.mlp.fc1.weight': 2}
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from zoo.builders import Checkpoint, CheckpointFiles, ModelBuilder
from zoo.errors import CheckpointError

from .config import ViTokConfig

__all__ = ["ViTokBuilder", "BLOCK_KEYS", "from_reference", "to_reference", "FILES"]

FILES = ("encoder.safetensors", "decoder.safetensors")
#: the reference's block-relative key stems -> zoo's (zoo.nn.prenorm canonical names)
BLOCK_KEYS = {"attn.qkv_proj.": "attn.qkv.", "attn.out_proj.": "attn.proj.", "attn.norm_q.": "attn.q_norm.",
              "attn.norm_k.": "attn.k_norm.", "ffn.": "mlp.", "layer_scale.": "ls.", "norm1.": "norm1."}
_BLOCK = re.compile(r"^((?:encoder|decoder)_blocks\.\d+\.)(.*)$")


def _rename(state: Mapping[str, Any], table: Mapping[str, str]) -> dict[str, Any]:
    out = {}
    for key, value in state.items():
        m = _BLOCK.match(key)
        if m:
            rest = m[2]
            for old, new in table.items():
                if rest.startswith(old):
                    rest = new + rest[len(old):]
                    break
            key = m[1] + rest
        out[key] = value
    return out


def from_reference(state: Mapping[str, Any]) -> dict[str, Any]:
    """The reference ``AE`` state dict (or manifest) -> zoo's keys."""
    return _rename(state, BLOCK_KEYS)


def to_reference(state: Mapping[str, Any]) -> dict[str, Any]:
    """zoo's keys (or manifest) -> the reference ``AE``'s."""
    return _rename(state, {v: k for k, v in BLOCK_KEYS.items()})


class ViTokBuilder(ModelBuilder):
    """ViTok-v2 (``philippehansen/ViTok-v2-*``)."""

    name = "vitok_v2"
    config_class = ViTokConfig

    def read_checkpoint(self, files: CheckpointFiles) -> Checkpoint:
        from zoo.weights import load_weights_file

        paths = {Path(n).name: Path(p) for n, p in files.paths.items()}
        missing = [f for f in FILES if f not in paths]
        if missing:
            folder = Path(files.primary).parent
            for f in missing:
                if (folder / f).exists():
                    paths[f] = folder / f
            missing = [f for f in FILES if f not in paths]
        if missing:
            raise CheckpointError(f"ViTok-v2 needs both {' and '.join(FILES)}; missing {missing} ({files.origin}): "
                                  "download both files of the hub repo and pass their folder as weights=")
        state: dict[str, Any] = {}
        for f in FILES:
            part, _ = load_weights_file(paths[f])
            expected = "encoder" if f.startswith("encoder") else "decoder"
            if not any(k.startswith(f"{expected}_blocks.") for k in part):
                raise CheckpointError(f"{paths[f]} is not a ViTok-v2 {expected} file: no {expected}_blocks.* keys "
                                      f"(got {sorted(part)[:4]})")
            both = set(state) & set(part)
            if both:
                raise CheckpointError(f"{paths[f]} repeats keys of the other file: {sorted(both)[:4]}")
            state.update(part)
        return Checkpoint(state_dict=state, extra={"paths": {f: str(p) for f, p in paths.items()}})

    def build(self, config: ViTokConfig):
        from .model import ViTokV2

        return ViTokV2(config)

    def convert(self, state_dict: Mapping[str, Any], config: ViTokConfig) -> Mapping[str, Any]:
        return from_reference(state_dict)
