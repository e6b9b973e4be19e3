"""The ``var`` and ``var_vqvae`` builders: FoundationVision/VAR's ``var_d*.pth`` and
``vae_ch160v4096z32.pth`` (weights-only pickles of bare state dicts) -> :class:`~.model.VAR` /
:class:`~.vqvae.VARVQVAE`; both load strictly.

* ``var``: :data:`VAR_DROPPED` constant buffers of the release are dropped by name (zoo rebuilds
  them: ``lvl_1L`` the scale index per position, ``attn_bias_for_masking`` the ``[1, 1, L, L]``
  teacher-forcing mask, ``blocks.i.attn.zero_k_bias`` zeros). The generator's file does not hold
  the VQVAE; the tokenizer card is loaded when a generation first needs it (a dependency on
  demand: :meth:`VARBuilder.needed_dependencies` resolves nothing at load).
* ``var_vqvae``: ``quantize.ema_vocab_hit_SV`` (training-time codebook usage statistics) is
  dropped; the encoder/decoder keys (LDM layout, attention as one ``qkv`` 1x1 conv) are split and
  renamed onto zoo's conv core with :func:`zoo.nn.conv_layouts.convert_state_dict`.

Example:
    >>> VARBuilder().name, VQVAEBuilder().name
    ('var', 'var_vqvae')
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from zoo.builders import Checkpoint, CheckpointFiles, ModelBuilder
from zoo.errors import CheckpointError

from .config import VARConfig, VQVAEConfig

__all__ = ["VAE_DROPPED", "VAR_DROPPED", "VARBuilder", "VQVAEBuilder", "vae_from_reference", "vae_to_reference",
           "var_from_reference"]

VAR_DROPPED = ("lvl_1L", "attn_bias_for_masking", r"blocks\.\d+\.attn\.zero_k_bias")
VAE_DROPPED = ("quantize.ema_vocab_hit_SV",)
_QKV = re.compile(r"^((?:encoder|decoder)\.(?:.*\.)?(?:attn\.\d+|attn_1)\.)qkv\.(weight|bias)$")


def _dropped(key: str, patterns: tuple[str, ...]) -> bool:
    return any(re.fullmatch(p, key) for p in patterns)


def var_from_reference(state: Mapping[str, Any]) -> dict[str, Any]:
    """The reference ``VAR`` state dict (or manifest) -> zoo's (the constant buffers dropped)."""
    return {k: v for k, v in state.items() if not _dropped(k, VAR_DROPPED)}


def _split3(value: Any) -> list[Any]:
    if isinstance(value, tuple):  # manifest entry (shape, dtype)
        shape, *rest = value
        return [((shape[0] // 3, *shape[1:]), *rest)] * 3
    return list(value.chunk(3, dim=0))


def vae_from_reference(state: Mapping[str, Any], config: VQVAEConfig) -> dict[str, Any]:
    """The reference ``VQVAE`` state dict (or manifest) -> zoo's keys."""
    from zoo.nn.conv_layouts import convert_state_dict

    split: dict[str, Any] = {}
    for k, v in state.items():
        if k in VAE_DROPPED:
            continue
        m = _QKV.match(k)
        if m:
            for name, part in zip("qkv", _split3(v)):
                split[f"{m.group(1)}{name}.{m.group(2)}"] = part
        else:
            split[k] = v
    return convert_state_dict(split, "ldm", "diffusers", num_levels=len(config.ch_mult))


def vae_to_reference(state: Mapping[str, Any], config: VQVAEConfig) -> dict[str, Any]:
    """zoo's ``VARVQVAE`` state dict (or manifest) -> the reference keys (without the dropped buffer)."""
    import torch

    from zoo.nn.conv_layouts import convert_state_dict

    ldm = convert_state_dict(state, "diffusers", "ldm", num_levels=len(config.ch_mult))
    out: dict[str, Any] = {}
    for k, v in ldm.items():
        m = re.match(r"^(.*\.)([qkv])\.(weight|bias)$", k)
        if m and (".attn." in k or ".attn_1." in k):
            key = f"{m.group(1)}qkv.{m.group(3)}"
            if m.group(2) == "q":
                parts = [ldm[f"{m.group(1)}{n}.{m.group(3)}"] for n in "qkv"]
                if isinstance(v, tuple):
                    shape, *rest = v
                    out[key] = ((shape[0] * 3, *shape[1:]), *rest)
                else:
                    out[key] = torch.cat(parts, dim=0)
            continue
        out[k] = v
    return out


def _read(files: CheckpointFiles, what: str, marker: str) -> dict[str, Any]:
    from zoo.weights import load_weights_file

    path = files.primary
    state, _ = load_weights_file(path)
    if isinstance(state, Mapping) and not any(str(k).startswith(marker) for k in state):
        for inner in ("model", "state_dict", "trainer"):  # training checkpoints wrap the weights
            if isinstance(state.get(inner), Mapping):
                state = state[inner]
                break
    if not isinstance(state, Mapping) or not any(str(k).startswith(marker) for k in state):
        got = sorted(state)[:6] if isinstance(state, Mapping) else type(state).__name__
        raise CheckpointError(f"{path} is not a {what} checkpoint: expected a state dict with {marker}* keys, got {got}")
    return dict(state)


class VARBuilder(ModelBuilder):
    """Builds every VAR transformer (``var_d16`` ... ``var_d30``, ``var_d36`` at 512 px)."""

    name = "var"
    config_class = VARConfig

    def needed_dependencies(self, files: CheckpointFiles, card: Any) -> set[str]:
        """Nothing at load: the VQVAE card is loaded when a generation first needs it."""
        return set()

    def read_checkpoint(self, files: CheckpointFiles) -> Checkpoint:
        return Checkpoint(state_dict=_read(files, "VAR transformer", "blocks."))

    def build(self, config: VARConfig):
        from .model import VAR

        return VAR(config)

    def convert(self, state_dict: Mapping[str, Any], config: VARConfig) -> Mapping[str, Any]:
        return var_from_reference(state_dict)

    def finalize(self, model: Any, files: CheckpointFiles | None, config: Any) -> Any:
        model._pretrained = files is not None  # the paired VQVAE is loaded alike (random when this is)
        return model


class VQVAEBuilder(ModelBuilder):
    """Builds VAR's multi-scale VQVAE (``vae_ch160v4096z32.pth``)."""

    name = "var_vqvae"
    config_class = VQVAEConfig

    def read_checkpoint(self, files: CheckpointFiles) -> Checkpoint:
        return Checkpoint(state_dict=_read(files, "VAR VQVAE", "encoder."))

    def build(self, config: VQVAEConfig):
        from .vqvae import VARVQVAE

        return VARVQVAE(config)

    def convert(self, state_dict: Mapping[str, Any], config: VQVAEConfig) -> Mapping[str, Any]:
        return vae_from_reference(state_dict, config)
