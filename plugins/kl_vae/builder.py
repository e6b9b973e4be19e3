"""The ``mar_vae`` and ``va_vae`` builders: LDM-layout KL-VAE releases -> :class:`~.model.KLVAE`.

* MAR KL-16 (``mar_vae``): the official ``kl16.ckpt`` (a pickle of ``{"model": state_dict}``,
  read with ``weights_only=True``, nothing allow-listed) or the community safetensors copy
  ``kl16.safetensors``. Nothing is dropped: a key the model does not have is an error.
* VA-VAE (``va_vae``): ``vavae-imagenet256-f16d32-dinov2.pt`` (``{"state_dict": ...}``, read with
  ``weights_only=True``) plus ``latents_stats.pt`` (``{"mean", "std"}`` of shape ``[1, 32, 1, 1]``).
  The training-only prefixes of :data:`VAVAE_DROPPED_PREFIXES` are dropped by name, as the
  reference's loader filters ``loss``: the LPIPS/discriminator loss, the frozen DINOv2
  (``foundation_model.``) and the VF-loss projection (``linear_proj.``).

Both convert the LDM layout (``down.i.block.j``, ``mid.attn_1``, ``up.i`` by resolution, 1x1-conv
attention) onto zoo's conv core with :func:`zoo.nn.conv_layouts.convert_state_dict`, under ``vae.``.

Example:
    >>> MarVAEBuilder().name, VAVAEBuilder().name
    ('mar_vae', 'va_vae')
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from zoo.builders import Checkpoint, CheckpointFiles, ModelBuilder
from zoo.errors import CheckpointError

from .config import KLVAEConfig

__all__ = ["MarVAEBuilder", "VAVAEBuilder", "VAVAE_DROPPED_PREFIXES", "from_reference", "to_reference"]

#: Training-only parts of the VA-VAE checkpoint, dropped by name before the strict load.
VAVAE_DROPPED_PREFIXES = ("loss.", "foundation_model.", "linear_proj.")
_STATS_FILE = "latents_stats.pt"


def from_reference(state: Mapping[str, Any], config: KLVAEConfig) -> dict[str, Any]:
    """The reference LDM ``AutoencoderKL`` state dict (or manifest) -> zoo's keys (``vae.`` prefix)."""
    from zoo.nn.conv_layouts import convert_state_dict

    conv = convert_state_dict(state, "ldm", "diffusers", num_levels=len(config.ch_mult))
    return {f"vae.{k}": v for k, v in conv.items()}


def to_reference(state: Mapping[str, Any], config: KLVAEConfig) -> dict[str, Any]:
    """zoo's ``vae.*`` keys (or manifest) -> the reference LDM ``AutoencoderKL`` keys."""
    from zoo.nn.conv_layouts import convert_state_dict

    inner = {k[len("vae."):]: v for k, v in state.items() if k.startswith("vae.")}
    return convert_state_dict(inner, "diffusers", "ldm", num_levels=len(config.ch_mult))


def _read_state(path: Path, nested: tuple[str, ...]) -> dict[str, Any]:
    from zoo.weights import load_weights_file

    state, _ = load_weights_file(path)
    for key in nested:
        if isinstance(state, Mapping) and isinstance(state.get(key), Mapping):
            state = state[key]
            break
    if not isinstance(state, Mapping) or not any(str(k).startswith("encoder.") for k in state):
        got = sorted(state)[:6] if isinstance(state, Mapping) else type(state).__name__
        raise CheckpointError(f"{path} is not an LDM KL-VAE checkpoint: expected encoder.* / decoder.* / quant_conv.* "
                              f"keys (under {' or '.join(repr(k) for k in nested)}), got {got}")
    return dict(state)


class _KLVAEBuilder(ModelBuilder):
    config_class = KLVAEConfig
    nested: tuple[str, ...] = ()

    def build(self, config: KLVAEConfig):
        from .model import KLVAE

        return KLVAE(config)

    def _weights(self, files: CheckpointFiles) -> Path:
        paths = [p for n, p in files.paths.items() if Path(n).name != _STATS_FILE]
        if not paths:
            raise CheckpointError(f"no weights file among {sorted(files.paths)} ({files.origin})")
        return Path(paths[0])


class MarVAEBuilder(_KLVAEBuilder):
    """MAR's KL-16 (``kl16.ckpt`` or ``kl16.safetensors``)."""

    name = "mar_vae"
    nested = ("model",)

    def read_checkpoint(self, files: CheckpointFiles) -> Checkpoint:
        path = self._weights(files)
        return Checkpoint(state_dict=_read_state(path, self.nested), extra={"path": str(path)})

    def convert(self, state_dict: Mapping[str, Any], config: KLVAEConfig) -> Mapping[str, Any]:
        return from_reference(state_dict, config)


class VAVAEBuilder(_KLVAEBuilder):
    """VA-VAE (``vavae-imagenet256-f16d32-dinov2.pt`` + ``latents_stats.pt``)."""

    name = "va_vae"
    nested = ("state_dict",)

    def read_checkpoint(self, files: CheckpointFiles) -> Checkpoint:
        from zoo.weights import load_pickle

        path = self._weights(files)
        state = _read_state(path, self.nested)
        stats_path = next((p for n, p in files.paths.items() if Path(n).name == _STATS_FILE), None)
        if stats_path is None and path.parent.joinpath(_STATS_FILE).exists():
            stats_path = path.parent / _STATS_FILE
        if stats_path is None:
            raise CheckpointError(f"VA-VAE needs {_STATS_FILE} (the latent channel statistics) next to {path.name}: "
                                  "download it from hustvl/vavae-imagenet256-f16d32-dinov2 and pass the folder as weights=")
        stats = load_pickle(stats_path)
        if not isinstance(stats, Mapping) or not {"mean", "std"} <= set(stats):
            raise CheckpointError(f"{stats_path} must hold {{'mean': tensor, 'std': tensor}}, got "
                                  f"{sorted(stats) if isinstance(stats, Mapping) else type(stats).__name__}")
        state["latent_mean"], state["latent_std"] = stats["mean"], stats["std"]
        return Checkpoint(state_dict=state, extra={"path": str(path)})

    def convert(self, state_dict: Mapping[str, Any], config: KLVAEConfig) -> Mapping[str, Any]:
        stats = {k: state_dict[k].reshape(1, -1, 1, 1) for k in ("latent_mean", "latent_std") if k in state_dict}
        kept = {k: v for k, v in state_dict.items()
                if k not in stats and not k.startswith(VAVAE_DROPPED_PREFIXES)}
        return {**from_reference(kept, config), **stats}
