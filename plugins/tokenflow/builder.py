"""The ``tokenflow`` builder: ``tokenflow_*.pt`` -> :class:`~.model.TokenFlow`.

* ``read_checkpoint`` loads the ``.pt`` with ``weights_only=True`` (tensors and dicts only) and
  takes its ``"ema"``, else ``"model"``, else ``"state_dict"`` entry as the reference's loader does;
  a bare state dict and safetensors are accepted too.
* ``convert`` drops :data:`DROPPED_KEYS` by name and renames the reference layout onto zoo's:
  the conv encoder/decoder (LlamaGen names) through :func:`zoo.nn.conv_layouts.convert_state_dict`,
  ``quantize.embedding_vqkd`` / ``embedding_vqgan`` -> ``quantize.embedding.semantic`` / ``.pixel``,
  the BEiT feature decoder's ``attn.q_bias`` + ``attn.v_bias`` -> ``attn.qkv.bias`` (``[q | 0 | v]``,
  as the reference assembles it). Everything else keeps its name; the load is strict.

Example:
    >>> b = TokenFlowBuilder()
    >>> b.name, b.config_class.__name__
    ('tokenflow', 'TokenFlowConfig')
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from zoo.builders import Checkpoint, CheckpointFiles, ModelBuilder
from zoo.errors import CheckpointError

from .config import TokenFlowConfig

__all__ = ["DROPPED_KEYS", "TokenFlowBuilder", "from_reference"]

#: Reference keys inference does not use, dropped by name: the codebook usage ring buffer of
#: ``codebook_show_usage``. (CLIP's ``proj`` is not in the release: the reference deletes it.)
DROPPED_KEYS = ("quantize.codebook_used",)

_QV = re.compile(r"^(decoder_vqkd\.blocks\.\d+\.attn)\.(q_bias|v_bias)$")


def _is_dropped(key: str) -> bool:
    return key in DROPPED_KEYS


def from_reference(state: Mapping[str, Any], config: TokenFlowConfig) -> dict[str, Any]:
    """The reference ``TokenFlow`` state dict (or manifest ``{key: (shape, dtype)}``) -> zoo's keys
    (dropped keys removed)."""
    import torch

    from zoo.nn.conv_layouts import convert_state_dict

    out: dict[str, Any] = {}
    qv: dict[str, dict[str, Any]] = {}
    for k, v in state.items():
        if _is_dropped(k):
            continue
        m = _QV.match(k)
        if m:
            qv.setdefault(m.group(1), {})[m.group(2)] = v
            continue
        k = k.replace("quantize.embedding_vqkd.", "quantize.embedding.semantic.")
        k = k.replace("quantize.embedding_vqgan.", "quantize.embedding.pixel.")
        out[k] = v
    for prefix, pair in qv.items():
        if set(pair) != {"q_bias", "v_bias"}:
            raise CheckpointError(f"{prefix} has {sorted(pair)} but needs both q_bias and v_bias")
        q, v = pair["q_bias"], pair["v_bias"]
        if isinstance(q, torch.Tensor):
            out[prefix + ".qkv.bias"] = torch.cat([q, torch.zeros_like(v), v])
        else:  # a manifest entry (shape, dtype)
            out[prefix + ".qkv.bias"] = ((3 * tuple(q[0])[0],), q[1])
    return convert_state_dict(out, "llamagen", "diffusers", num_levels=len(config.encoder_ch_mult))


class TokenFlowBuilder(ModelBuilder):
    """Builds both TokenFlow releases (``tokenflow_clipb_32k_enhanced.pt``, ``tokenflow_siglip_32k.pt``)."""

    name = "tokenflow"
    config_class = TokenFlowConfig

    def read_checkpoint(self, files: CheckpointFiles) -> Checkpoint:
        from zoo.weights import load_weights_file

        path = Path(files.primary)
        state, _ = load_weights_file(path)
        for entry in ("ema", "model", "state_dict"):  # the reference's order (reconstruction_vq_ddp.py)
            if isinstance(state, Mapping) and isinstance(state.get(entry), Mapping):
                state = state[entry]
                break
        if not isinstance(state, Mapping) or not any(str(k).startswith("encoder_vqkd.") for k in state):
            got = sorted(state)[:6] if isinstance(state, Mapping) else type(state).__name__
            raise CheckpointError(f"{path} is not a TokenFlow checkpoint: expected encoder_vqkd.* / encoder.* / "
                                  f"quantize.* keys (optionally under 'model'), got {got}")
        return Checkpoint(state_dict=dict(state), extra={"path": str(path)})

    def build(self, config: TokenFlowConfig):
        from .model import TokenFlow

        return TokenFlow(config)

    def convert(self, state_dict: Mapping[str, Any], config: TokenFlowConfig) -> Mapping[str, Any]:
        return from_reference(state_dict, config)
