"""One KL autoencoder for every family: diffusers' ``AutoencoderKL`` and the LDM/MAR/VA-VAE KL-VAEs.

:class:`AutoencoderKL` is the conv core (:mod:`zoo.nn.conv_ae`) plus the ``quant_conv`` /
``post_quant_conv`` 1x1 convs and a :class:`~zoo.nn.posterior.DiagonalGaussian` posterior. Its
keys equal diffusers' ``AutoencoderKL`` (``DownEncoderBlock2D`` / ``UpDecoderBlock2D``), so
diffusers-layout releases (``config.json`` + ``diffusion_pytorch_model.safetensors``, e.g.
FlexTok's ``EPFL-VILAB/flextok_vae_c{4,8,16}``) load unchanged with ``strict=True``; LDM-layout
releases (MAR's ``kl16.ckpt``, VA-VAE) go through :func:`zoo.nn.conv_layouts.convert_state_dict`.

Two ways to build one:

* :meth:`AutoencoderKL.from_config` with a diffusers ``config.json`` dict (or a
  :class:`VAEConfig`, its typed form; unknown fields are a :class:`~zoo.errors.ConfigError`);
* ``AutoencoderKL(KLConfig(conv=ConvAEConfig(...), embed_dim=...))`` for LDM-style configs
  (``ddconfig`` + ``embed_dim``), which may put attention inside levels.

Semantics: ``encode`` returns the posterior mean (``.mode()``) or, with ``sample=True``,
``mean + std * randn`` drawn as diffusers draws it; *unscaled* latents unless ``scaled=True``.

Example:
    >>> import torch
    >>> vae = AutoencoderKL.from_config({"block_out_channels": [32, 32], "norm_num_groups": 8,
    ...     "down_block_types": ["DownEncoderBlock2D"] * 2, "up_block_types": ["UpDecoderBlock2D"] * 2,
    ...     "latent_channels": 4}).eval()
    >>> z = vae.encode(torch.zeros(1, 3, 16, 16))
    >>> z.shape, vae.decode(z).shape
    (torch.Size([1, 4, 8, 8]), torch.Size([1, 3, 16, 16]))
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from zoo.errors import ConfigError
from zoo.model import ZooModel
from zoo.nn.conv_ae import ConvAEConfig, Decoder, Encoder, channels_last_, set_fold_upsample, set_winograd
from zoo.nn.posterior import DiagonalGaussian, GeneratorArg

__all__ = [
    "AutoencoderKL", "KLConfig", "VAEConfig", "convert_diffusers_state_dict", "load_state_dict_strict",
    "load_vae", "parse_vae_config",
]


@dataclass(frozen=True)
class VAEConfig:
    """Fields of diffusers' ``AutoencoderKL`` (same names, same defaults as diffusers).

    Supported: ``DownEncoderBlock2D`` / ``UpDecoderBlock2D`` blocks and SiLU activations.
    ``scaling_factor``/``shift_factor``/``latents_mean``/``latents_std``/``force_upcast``/
    ``sample_size`` are carried as data (pipelines use them; the autoencoder itself does not).

    Example:
        >>> cfg = parse_vae_config({"_class_name": "AutoencoderKL", "latent_channels": 16,
        ...                         "block_out_channels": [128, 256, 512, 512],
        ...                         "down_block_types": ["DownEncoderBlock2D"] * 4,
        ...                         "up_block_types": ["UpDecoderBlock2D"] * 4, "layers_per_block": 2})
        >>> cfg.latent_channels, cfg.downsample_factor, cfg.to_kl_config().conv.ch_mult
        (16, 8, (1, 2, 4, 4))
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

    def to_kl_config(self) -> KLConfig:
        """The same architecture as a :class:`KLConfig` (widths as ``ch * ch_mult``)."""
        widths = self.block_out_channels
        ch = widths[0]
        if any(w % ch for w in widths):
            raise ConfigError(f"block_out_channels {list(widths)} are not multiples of the first width {ch}; "
                              "zoo's conv core needs widths ch * ch_mult")
        conv = ConvAEConfig(in_channels=self.in_channels, out_channels=self.out_channels, ch=ch,
                            ch_mult=tuple(w // ch for w in widths), num_res_blocks=self.layers_per_block,
                            z_channels=self.latent_channels, double_z=True,
                            mid_attention=self.mid_block_add_attention, norm_groups=self.norm_num_groups)
        return KLConfig(conv=conv, embed_dim=self.latent_channels, use_quant_conv=self.use_quant_conv,
                        use_post_quant_conv=self.use_post_quant_conv, scaling_factor=self.scaling_factor,
                        shift_factor=self.shift_factor)


@dataclass(frozen=True)
class KLConfig:
    """An LDM-style KL autoencoder: the conv core (``conv``, with ``double_z=True``) and ``embed_dim``
    latent channels (``quant_conv``: ``2 * z_channels -> 2 * embed_dim``; ``post_quant_conv``:
    ``embed_dim -> z_channels``).

    Example:
        >>> KLConfig(conv=ConvAEConfig(z_channels=16, double_z=True), embed_dim=16).downsample_factor
        16
    """

    conv: ConvAEConfig
    embed_dim: int
    use_quant_conv: bool = True
    use_post_quant_conv: bool = True
    scaling_factor: float = 1.0
    shift_factor: float | None = None

    def __post_init__(self) -> None:
        if not self.conv.double_z:
            raise ConfigError("a KL autoencoder's encoder outputs mean and log-variance: set double_z=True")
        if isinstance(self.embed_dim, bool) or not isinstance(self.embed_dim, int) or self.embed_dim < 1:
            raise ConfigError(f"embed_dim must be a positive int, got {self.embed_dim!r}")
        if not self.use_quant_conv and self.embed_dim != self.conv.z_channels:
            raise ConfigError(f"without quant_conv, embed_dim ({self.embed_dim}) must equal z_channels ({self.conv.z_channels})")

    @property
    def downsample_factor(self) -> int:
        return self.conv.downsample_factor

    @property
    def latent_channels(self) -> int:
        return self.embed_dim

    @property
    def in_channels(self) -> int:
        return self.conv.in_channels


_DOWN_BLOCKS = ("DownEncoderBlock2D",)
_UP_BLOCKS = ("UpDecoderBlock2D",)
_ACTIVATIONS = ("silu", "swish")


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


# --------------------------------------------------------------------------- the model


class AutoencoderKL(ZooModel, nn.Module):
    """KL autoencoder on the shared conv core; keys equal diffusers' ``AutoencoderKL``.

    Example:
        >>> vae = AutoencoderKL.from_config({"block_out_channels": [32, 64], "norm_num_groups": 8,
        ...     "down_block_types": ["DownEncoderBlock2D"] * 2, "up_block_types": ["UpDecoderBlock2D"] * 2,
        ...     "latent_channels": 16})
        >>> vae.latent_channels, vae.downsample_factor
        (16, 2)
    """

    def __init__(self, config: VAEConfig | KLConfig):
        super().__init__()
        # ``vae_config`` is the config this module was built from (a diffusers VAEConfig or a
        # KLConfig); ``config`` is informational and may be replaced by zoo.load.
        self.vae_config = config
        self.config = config
        kl = config.to_kl_config() if isinstance(config, VAEConfig) else config
        self.kl_config = kl
        self.encoder = Encoder(kl.conv)
        self.decoder = Decoder(kl.conv)
        z = kl.conv.z_channels
        self.quant_conv = nn.Conv2d(2 * z, 2 * kl.embed_dim, 1) if kl.use_quant_conv else None
        self.post_quant_conv = nn.Conv2d(kl.embed_dim, z, 1) if kl.use_post_quant_conv else None
        # Activations and conv weights live channels-last; state_dict() hands out contiguous
        # tensors, so the state dict saves with safetensors and matches diffusers' files exactly.
        self.channels_last = True
        channels_last_(self)

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any] | VAEConfig | KLConfig) -> AutoencoderKL:
        """Build (random init) from a diffusers ``config.json`` dict (unknown keys raise ConfigError),
        a :class:`VAEConfig` or a :class:`KLConfig`."""
        return cls(cfg if isinstance(cfg, (VAEConfig, KLConfig)) else parse_vae_config(cfg))

    # ---------------------------------------------------------------- properties

    @property
    def scaling_factor(self) -> float:
        return float(self.kl_config.scaling_factor)

    @property
    def shift_factor(self) -> float:
        return float(self.kl_config.shift_factor or 0.0)

    @property
    def downsample_factor(self) -> int:
        return self.kl_config.downsample_factor

    @property
    def latent_channels(self) -> int:
        return self.kl_config.embed_dim

    def set_winograd(self, enabled: bool = True, min_channels: int = 256) -> AutoencoderKL:
        """Run the resnets' 3x3 convs with >= ``min_channels`` inputs as Winograd F(2x2,3x3) (CPU, fp32).

        About 1.15x faster encode and decode at 256x256 on one CPU core, with outputs as close
        to the reference as the direct convolution's (see :func:`zoo.nn.conv_ops.winograd_conv3x3`).
        Costs memory: a cached ``[16, I, O]`` transformed weight per conv (+~0.4 GB for FlexTok's
        c16 VAE at the default threshold), built on first use. Off by default.

        Example:
            >>> vae = AutoencoderKL.from_config({"block_out_channels": [32], "norm_num_groups": 8}).set_winograd()
        """
        set_winograd(self, enabled, min_channels)
        return self

    def set_fold_upsample(self, enabled: bool) -> AutoencoderKL:
        """Turn the folded upsample conv on (default, faster) or off (the literal reference ops)."""
        set_fold_upsample(self, enabled)
        return self

    # ---------------------------------------------------------------- api

    def _layout(self, x: torch.Tensor) -> torch.Tensor:
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def _check(self, x: torch.Tensor, channels: int, what: str) -> None:
        from zoo.errors import InputTypeError, MediaError

        if not isinstance(x, torch.Tensor):
            raise InputTypeError(f"{what} must be a [B, {channels}, H, W] float tensor, got {type(x).__name__}")
        if x.dim() != 4 or x.shape[1] != channels:
            raise MediaError(f"{what} must be [B, {channels}, H, W], got {tuple(x.shape)}")
        if not x.is_floating_point():
            raise InputTypeError(f"{what} must be a float tensor (images in [-1, 1]), got {x.dtype}; "
                                 "convert uint8 images with x.float() / 127.5 - 1")
        if 0 in x.shape:
            raise MediaError(f"{what} are empty: shape {tuple(x.shape)}")
        if not bool(torch.isfinite(x).all()):
            raise MediaError(f"{what} hold NaN/Inf values; the VAE takes finite values only")

    def encode_moments(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior ``(mean, logvar)`` of images ``x`` [B, 3, H, W] in [-1, 1] (logvar clamped to [-30, 20]).

        Any H, W work as in the references (each downsampling maps n to ceil(n / 2)); multiples of
        :attr:`downsample_factor` decode back to the same size.
        """
        post = self.posterior(x)
        return post.mean.contiguous(), post.logvar.contiguous()

    def posterior(self, x: torch.Tensor) -> DiagonalGaussian:
        """The :class:`~zoo.nn.posterior.DiagonalGaussian` of images ``x`` [B, 3, H, W] in [-1, 1]."""
        self._check(x, self.kl_config.in_channels, "images")
        p = next(self.parameters())
        h = self.encoder(self._layout(x.to(dtype=p.dtype)))
        if self.quant_conv is not None:
            h = self.quant_conv(h)
        return DiagonalGaussian(h)

    def encode(self, x: torch.Tensor, sample: bool = False, generator: GeneratorArg = None,
               scaled: bool = False) -> torch.Tensor:
        """Images [B, 3, H, W] in [-1, 1] -> latents [B, C, H/f, W/f].

        The posterior mean (``latent_dist.mode()``), or with ``sample=True``
        ``mean + std * noise`` with noise drawn as diffusers' ``latent_dist.sample(generator)``
        (``generator=None`` uses the global RNG, like the references). ``scaled=True`` returns
        ``(z - shift_factor) * scaling_factor``.

        Example:
            >>> vae = AutoencoderKL.from_config({"block_out_channels": [32], "norm_num_groups": 8}).eval()
            >>> vae.encode(torch.zeros(2, 3, 8, 8)).shape
            torch.Size([2, 4, 8, 8])
        """
        post = self.posterior(x)
        z = post.sample(generator) if sample else post.mode()
        z = z.contiguous()
        if scaled:
            z = (z - self.shift_factor) * self.scaling_factor
        return z

    def decode(self, z: torch.Tensor, scaled: bool = False) -> torch.Tensor:
        """Latents [B, C, h, w] -> images [B, 3, f*h, f*w] (about [-1, 1]; not clamped, like the references).

        ``scaled=True`` first undoes :meth:`encode`'s scaling: ``z / scaling_factor + shift_factor``.

        Example:
            >>> vae = AutoencoderKL.from_config({"block_out_channels": [32], "norm_num_groups": 8}).eval()
            >>> vae.decode(torch.zeros(1, 4, 8, 8)).shape
            torch.Size([1, 3, 8, 8])
        """
        self._check(z, self.latent_channels, "latents")
        p = next(self.parameters())
        z = z.to(dtype=p.dtype)
        if scaled:
            z = z / self.scaling_factor + self.shift_factor
        z = self._layout(z)
        if self.post_quant_conv is not None:
            z = self.post_quant_conv(z)
        return self.decoder(z).contiguous()

    def forward(self, x: torch.Tensor, sample: bool = False, generator: GeneratorArg = None) -> torch.Tensor:
        """Autoencode: ``decode(encode(x, sample, generator))``."""
        return self.decode(self.encode(x, sample=sample, generator=generator))


# --------------------------------------------------------------------------- loading


_DEPRECATED_ATTN = {"query": "to_q", "key": "to_k", "value": "to_v", "proj_attn": "to_out.0"}


def convert_diffusers_state_dict(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Accept diffusers' pre-0.14 attention names (``query``/``key``/``value``/``proj_attn``).

    Current diffusers files already use ``to_q``/``to_k``/``to_v``/``to_out.0``; they pass
    through unchanged (as do all other keys). Legacy 1x1-conv-shaped attention weights
    ``[C, C, 1, 1]`` are squeezed to ``[C, C]``, as diffusers does on load.

    Example:
        >>> sorted(convert_diffusers_state_dict({"encoder.mid_block.attentions.0.query.bias": 0}))
        ['encoder.mid_block.attentions.0.to_q.bias']
    """
    out: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        parts = key.split(".")
        if ".attentions." in key and len(parts) >= 2 and parts[-2] in _DEPRECATED_ATTN:
            key = ".".join(parts[:-2] + [_DEPRECATED_ATTN[parts[-2]], parts[-1]])
            if isinstance(value, torch.Tensor) and value.dim() == 4:
                value = value[:, :, 0, 0]
        out[key] = value
    return out


def load_state_dict_strict(model: nn.Module, state_dict: Mapping[str, torch.Tensor]) -> None:
    """``model.load_state_dict(state_dict, strict=True)`` with an error naming every bad key."""
    from zoo.errors import CheckpointError

    own = model.state_dict()
    missing = sorted(set(own) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(own))
    shapes = [f"{k}: checkpoint {tuple(state_dict[k].shape)} vs model {tuple(own[k].shape)}"
              for k in sorted(set(own) & set(state_dict)) if tuple(state_dict[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or shapes:
        msg = ["the VAE checkpoint does not fit the config (is config.json the one shipped with these weights?):"]
        if missing:
            msg.append(f"  missing keys ({len(missing)}): {missing[:8]}{' ...' if len(missing) > 8 else ''}")
        if unexpected:
            msg.append(f"  unexpected keys ({len(unexpected)}): {unexpected[:8]}{' ...' if len(unexpected) > 8 else ''}")
        if shapes:
            msg.append(f"  shape mismatches ({len(shapes)}): {shapes[:8]}")
        raise CheckpointError("\n".join(msg))
    model.load_state_dict(state_dict, strict=True)


def load_vae(path: str | Path, weights: str | Path | None = None) -> AutoencoderKL:
    """Load a VAE in diffusers layout: a folder with ``config.json`` and
    ``diffusion_pytorch_model.safetensors`` (or the config path plus ``weights=``).

    Example:
        >>> vae = load_vae("flextok_vae_c16/")          # doctest: +SKIP
    """
    from safetensors.torch import load_file

    path = Path(path)
    cfg_path = path / "config.json" if path.is_dir() else path
    weights = Path(weights) if weights is not None else cfg_path.parent / "diffusion_pytorch_model.safetensors"
    for p in (cfg_path, weights):
        if not p.exists():
            raise FileNotFoundError(f"{p} not found; a diffusers VAE folder holds config.json and "
                                    "diffusion_pytorch_model.safetensors")
    vae = AutoencoderKL.from_config(json.loads(cfg_path.read_text()))
    load_state_dict_strict(vae, convert_diffusers_state_dict(load_file(str(weights))))
    return vae.eval()
