"""The ``flextok`` builder: official ``model.safetensors`` (+ the VAE card's files) -> :class:`FlexTok`.

Data flow: the safetensors header's Hydra config is parsed as data
(:func:`~zoo_plugins.flextok.metadata.config_from_metadata`), the VAE's diffusers
``config.json`` (dependency ``vae``) fills the VAE architecture and scaling factor, and the
state dict loads unchanged with ``strict=True``. If a FlexTok file lacks the ``vae.vae.*``
weights, they are taken from the VAE card's ``diffusion_pytorch_model.safetensors``.

The VAE card is a dependency *on demand* (:meth:`FlexTokBuilder.needed_dependencies`): a file
that holds the ``vae.vae.*`` weights and whose metadata gives the VAE's ``latent_channels`` and
``scaling_factor`` is self-contained -- the reference builds that VAE from its built-in base
config plus those two values, and so does zoo -- so it loads without the VAE card (offline).

Example:
    >>> FlexTokBuilder().name
    'flextok'
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from zoo.builders import Checkpoint, CheckpointFiles, ModelBuilder
from zoo.errors import CheckpointError, ConfigError, InputError

from .config import FlexTokConfig

__all__ = ["FlexTokBuilder", "read_vae_config"]

_VAE_ARCH = ("block_out_channels", "layers_per_block", "norm_num_groups", "in_channels", "out_channels")
_VAE_PREFIX = "vae.vae."


def read_vae_config(raw: Mapping[str, Any], latent_channels: int | None = None) -> dict[str, Any]:
    """Map a diffusers ``config.json`` dict onto :class:`VAEConfig` fields.

    Example:
        >>> read_vae_config({"latent_channels": 16, "scaling_factor": 0.5, "block_out_channels": [8]})["scaling_factor"]
        0.5
    """
    if raw.get("_class_name", "AutoencoderKL") != "AutoencoderKL":
        raise ConfigError(f"the FlexTok VAE must be a diffusers AutoencoderKL, its config.json says {raw.get('_class_name')!r}")
    lc = raw.get("latent_channels")
    if latent_channels is not None and lc is not None and int(lc) != int(latent_channels):
        raise ConfigError(f"the VAE has {lc} latent channels but the FlexTok checkpoint expects {latent_channels}; "
                          "pair the tokenizer with the VAE its card names")
    out: dict[str, Any] = {k: raw[k] for k in _VAE_ARCH if k in raw}
    if "scaling_factor" in raw:
        out["scaling_factor"] = float(raw["scaling_factor"])
    out["extra"] = {k: v for k, v in raw.items() if k not in _VAE_ARCH and k not in ("scaling_factor", "latent_channels")
                    and not k.startswith("_") and k not in ("down_block_types", "up_block_types", "act_fn")}
    return out


def _safetensors_header(path: Any) -> dict[str, Any]:
    """The JSON header of a safetensors file (tensor names -> info, ``__metadata__``), no tensors read."""
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        if not 0 < n <= 100_000_000:
            raise InputError(f"{path}: not a safetensors file (header length {n})")
        return json.loads(f.read(n))


class FlexTokBuilder(ModelBuilder):
    """Builds :class:`zoo_plugins.flextok.model.FlexTok` from the official release files."""

    name = "flextok"
    config_class = FlexTokConfig

    def needed_dependencies(self, files: CheckpointFiles, card: Any) -> set[str]:
        """``{"vae"}`` unless the file holds the VAE weights and its scaling factor (then nothing)."""
        from .metadata import config_from_metadata

        needed = set(card.dependencies)
        if "vae" not in needed:
            return needed
        path = files.paths.get("model.safetensors") or files.primary
        try:
            header = _safetensors_header(path)
        except (OSError, ValueError):  # not a safetensors file: read_checkpoint names the problem
            return needed
        if not any(k.startswith(_VAE_PREFIX) for k in header):
            return needed
        meta = header.get("__metadata__") or {}
        vae = config_from_metadata(meta)["vae"] if meta else {}
        if vae.get("latent_channels") is None or vae.get("scaling_factor") is None:
            return needed
        return needed - {"vae"}

    def read_checkpoint(self, files: CheckpointFiles) -> Checkpoint:
        from zoo.weights import load_safetensors

        from .metadata import config_from_metadata

        path = files.paths.get("model.safetensors") or files.primary
        state, meta = load_safetensors(path)
        if not meta:
            raise ConfigError(f"{path} has no FlexTok config in its safetensors metadata; official FlexTok "
                              "files store it there (top keys vae, encoder, decoder, regularizer, ...)")
        config = config_from_metadata(meta)
        vae_files = files.deps.get("vae")
        if vae_files is not None:
            cfg_path = vae_files.paths.get("config.json")
            if cfg_path is not None:
                vae_cfg = read_vae_config(json.loads(cfg_path.read_text()), config["vae"]["latent_channels"])
                if config["vae"].get("scaling_factor") is not None:  # the tokenizer's own value wins
                    vae_cfg.pop("scaling_factor", None)
                config["vae"].update(vae_cfg)
            if not any(k.startswith(_VAE_PREFIX) for k in state):
                wpath = vae_files.paths.get("diffusion_pytorch_model.safetensors")
                if wpath is None:
                    raise CheckpointError(f"{path} holds no VAE weights ({_VAE_PREFIX}*) and the VAE card gives none")
                vae_state, _ = load_safetensors(wpath)
                from .vae import convert_diffusers_state_dict

                state = {**state, **{_VAE_PREFIX + k: v for k, v in convert_diffusers_state_dict(vae_state).items()}}
        return Checkpoint(state_dict=state, config=config)

    def build(self, config: FlexTokConfig):
        from .model import FlexTok

        return FlexTok(config)

    def convert(self, state_dict, config):
        """Identity, except legacy diffusers attention names inside ``vae.vae.*`` are renamed."""
        from .vae import convert_diffusers_state_dict

        vae = {k[len(_VAE_PREFIX):]: v for k, v in state_dict.items() if k.startswith(_VAE_PREFIX)}
        if not vae:
            return state_dict
        rest = {k: v for k, v in state_dict.items() if not k.startswith(_VAE_PREFIX)}
        return {**rest, **{_VAE_PREFIX + k: v for k, v in convert_diffusers_state_dict(vae).items()}}


class FlexTokVAEBuilder(ModelBuilder):
    """Builds FlexTok's VAE (diffusers ``AutoencoderKL`` layout) from ``config.json`` +
    ``diffusion_pytorch_model.safetensors``; the config is the diffusers dict, validated by
    :func:`zoo_plugins.flextok.vae.parse_vae_config` (unknown keys are errors)."""

    name = "flextok_vae"
    config_class = dict

    def read_checkpoint(self, files: CheckpointFiles) -> Checkpoint:
        from zoo.weights import load_safetensors

        config = json.loads(files["config.json"].read_text())
        state, _ = load_safetensors(files["diffusion_pytorch_model.safetensors"])
        return Checkpoint(state_dict=state, config=config)

    def build(self, config: Mapping[str, Any]):
        from .vae import AutoencoderKL

        if "block_out_channels" not in config:  # no config.json (pretrained=False): FlexTok's VAE base + the card's fields
            from .vae_config import flextok_vae_config

            config = {**flextok_vae_config(int(config.get("latent_channels", 16))), **config}
        return AutoencoderKL.from_config(dict(config))

    def convert(self, state_dict, config):
        from .vae import convert_diffusers_state_dict

        return convert_diffusers_state_dict(state_dict)
