"""The typed config of FlexTok's VAE, read from a diffusers ``AutoencoderKL`` ``config.json``.

The published VAEs (``EPFL-VILAB/flextok_vae_c4``, ``_c8``, ``_c16``) ship in diffusers
layout: ``config.json`` + ``diffusion_pytorch_model.safetensors``. :func:`parse_vae_config`
maps that json dict onto :class:`VAEConfig`, rejecting by name any field it does not know
rather than guessing, and ignoring diffusers' bookkeeping keys (``_class_name``,
``_diffusers_version``, ``_name_or_path``, ...).

Example:
    >>> cfg = parse_vae_config({"_class_name": "AutoencoderKL", "latent_channels": 16,
    ...                         "block_out_channels": [128, 256, 512, 512],
    ...                         "down_block_types": ["DownEncoderBlock2D"] * 4,
    ...                         "up_block_types": ["UpDecoderBlock2D"] * 4, "layers_per_block": 2})
    >>> cfg.latent_channels, cfg.downsample_factor
    (16, 8)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

try:  # zoo core's error type when core is present; a local stand-in keeps this module usable alone
    from zoo.errors import ConfigError
except ImportError:  # pragma: no cover - only before core lands
    class ConfigError(ValueError):  # type: ignore[no-redef]
        """A config field that is unknown, of the wrong type, or missing."""

__all__ = ["ConfigError", "VAEConfig", "flextok_vae_config", "parse_vae_config"]

_DOWN_BLOCKS = ("DownEncoderBlock2D",)
_UP_BLOCKS = ("UpDecoderBlock2D",)
_ACTIVATIONS = ("silu", "swish")


@dataclass(frozen=True)
class VAEConfig:
    """Fields of diffusers' ``AutoencoderKL`` (same names, same defaults as diffusers).

    Only the architecture FlexTok uses is supported: ``DownEncoderBlock2D`` /
    ``UpDecoderBlock2D`` blocks and SiLU activations. ``scaling_factor``/``shift_factor``/
    ``latents_mean``/``latents_std``/``force_upcast``/``sample_size`` are carried as data
    (pipelines use them; the autoencoder itself does not).
    """

    in_channels: int = 3
    out_channels: int = 3
    down_block_types: tuple[str, ...] = ("DownEncoderBlock2D",)
    up_block_types: tuple[str, ...] = ("UpDecoderBlock2D",)
    block_out_channels: tuple[int, ...] = (64,)
    layers_per_block: int = 1
    act_fn: str = "silu"
    latent_channels: int = 4
    norm_num_groups: int = 32
    sample_size: int | tuple[int, ...] = 32
    scaling_factor: float = 0.18215
    shift_factor: float | None = None
    latents_mean: tuple[float, ...] | None = None
    latents_std: tuple[float, ...] | None = None
    force_upcast: bool = True
    use_quant_conv: bool = True
    use_post_quant_conv: bool = True
    mid_block_add_attention: bool = True
    extra: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def downsample_factor(self) -> int:
        """Spatial reduction of the encoder (8 for four blocks)."""
        return 2 ** (len(self.block_out_channels) - 1)

    def to_dict(self) -> dict[str, Any]:
        """The diffusers ``config.json`` form of this config (lists, not tuples)."""
        out = {}
        for f in dataclasses.fields(self):
            if f.name == "extra":
                continue
            v = getattr(self, f.name)
            out[f.name] = list(v) if isinstance(v, tuple) else v
        return out


_FIELDS = {f.name for f in dataclasses.fields(VAEConfig)} - {"extra"}
_TUPLE_FIELDS = ("down_block_types", "up_block_types", "block_out_channels", "latents_mean", "latents_std")


def parse_vae_config(cfg: Mapping[str, Any]) -> VAEConfig:
    """Map a diffusers ``AutoencoderKL`` config dict onto :class:`VAEConfig`, validating it.

    Keys starting with ``_`` are diffusers bookkeeping and are ignored (kept in ``extra``),
    except that ``_class_name``, when present, must be ``"AutoencoderKL"``.

    Example:
        >>> parse_vae_config({"latent_channels": 8}).latent_channels
        8
        >>> try:
        ...     parse_vae_config({"latent_chanels": 8})
        ... except ConfigError as e:
        ...     print(str(e)[:56])
        unknown AutoencoderKL config field(s) ['latent_chanels']
    """
    if not isinstance(cfg, Mapping):
        raise ConfigError(f"an AutoencoderKL config must be a dict (config.json), got {type(cfg).__name__}")
    cls_name = cfg.get("_class_name", "AutoencoderKL")
    if cls_name != "AutoencoderKL":
        raise ConfigError(f"config.json describes a {cls_name!r}, not an 'AutoencoderKL'; "
                          "point the loader at the VAE's own config.json")
    private = {k: v for k, v in cfg.items() if str(k).startswith("_")}
    public = {k: v for k, v in cfg.items() if not str(k).startswith("_")}
    unknown = sorted(set(public) - _FIELDS)
    if unknown:
        raise ConfigError(f"unknown AutoencoderKL config field(s) {unknown}; known fields are "
                          f"{sorted(_FIELDS)} (remove the unknown ones or fix their spelling)")
    kwargs: dict[str, Any] = {}
    for k, v in public.items():
        if k in _TUPLE_FIELDS and v is not None:
            if not isinstance(v, (list, tuple)):
                raise ConfigError(f"AutoencoderKL config field {k!r} must be a list, got {v!r}")
            v = tuple(v)
        if k == "sample_size" and isinstance(v, list):
            v = tuple(v)
        if k == "scaling_factor" and v is None:
            continue  # FlexTok's base config leaves it None "to be overwritten": keep diffusers' default
        kwargs[k] = v
    out = VAEConfig(**kwargs, extra=private)
    _validate(out)
    return out


def _validate(c: VAEConfig) -> None:
    n = len(c.block_out_channels)
    if n == 0:
        raise ConfigError("block_out_channels must name at least one block width")
    for name, types, allowed in (("down_block_types", c.down_block_types, _DOWN_BLOCKS),
                                 ("up_block_types", c.up_block_types, _UP_BLOCKS)):
        if len(types) != n:
            raise ConfigError(f"{name} has {len(types)} entries but block_out_channels has {n}; they must match")
        bad = sorted({t for t in types if t not in allowed})
        if bad:
            raise ConfigError(f"{name} {bad} is not supported by zoo's AutoencoderKL (supported: {list(allowed)})")
    if c.act_fn not in _ACTIVATIONS:
        raise ConfigError(f"act_fn {c.act_fn!r} is not supported (supported: {list(_ACTIVATIONS)})")
    for w in c.block_out_channels:
        if w % c.norm_num_groups:
            raise ConfigError(f"block width {w} is not divisible by norm_num_groups={c.norm_num_groups}")
    for k in ("in_channels", "out_channels", "latent_channels", "layers_per_block", "norm_num_groups"):
        v = getattr(c, k)
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise ConfigError(f"AutoencoderKL config field {k!r} must be a positive int, got {v!r}")


def flextok_vae_config(latent_channels: int = 16, scaling_factor: float | None = None) -> dict[str, Any]:
    """The ``config.json`` dict of FlexTok's VAEs (``flextok_vae_c{4,8,16}``), reconstructed.

    Architecture fields are ml-flextok's ``VAE_BASE_CFG`` (diffusers 0.18 era): widths
    [128, 256, 512, 512], two resnets per block, 32 groups, SiLU, f8. ``scaling_factor`` is
    set per published model and is not in the reference code; ``None`` leaves diffusers'
    default.

    Example:
        >>> flextok_vae_config(16)["latent_channels"]
        16
    """
    cfg: dict[str, Any] = {
        "_class_name": "AutoencoderKL",
        "_diffusers_version": "0.18.0.dev0",
        "act_fn": "silu",
        "block_out_channels": [128, 256, 512, 512],
        "down_block_types": ["DownEncoderBlock2D"] * 4,
        "in_channels": 3,
        "latent_channels": latent_channels,
        "layers_per_block": 2,
        "norm_num_groups": 32,
        "out_channels": 3,
        "sample_size": 1024,
        "up_block_types": ["UpDecoderBlock2D"] * 4,
    }
    if scaling_factor is not None:
        cfg["scaling_factor"] = scaling_factor
    return cfg
