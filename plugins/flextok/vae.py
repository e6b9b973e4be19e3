"""FlexTok's VAE: diffusers' ``AutoencoderKL`` written from scratch, without diffusers.

State-dict keys, shapes and outputs equal diffusers' ``AutoencoderKL`` (``DownEncoderBlock2D``
/ ``UpDecoderBlock2D`` blocks, one mid-block self-attention), so the published
``EPFL-VILAB/flextok_vae_c{4,8,16}`` files (``config.json`` +
``diffusion_pytorch_model.safetensors``) load unchanged with ``strict=True``.

Semantics, as ml-flextok uses them: ``encode`` returns the posterior mean (``.mode()``) or,
with ``sample=True``, ``mean + std * randn`` drawn exactly as diffusers draws it; the
*unscaled* latents are returned, like diffusers' ``AutoencoderKL`` (FlexTok's wrapper then
multiplies by ``scaling_factor`` and divides by it before ``decode``; see
:meth:`AutoencoderKL.encode`'s ``scaled`` flag).

Speed (inference, no autograd): activations and conv weights are channels-last; GroupNorm+SiLU
and residual adds are done in place; 1x1 shortcut convs run as one GEMM (PyTorch's batch-1
path for them is ~7x slower); "nearest-upsample then 3x3 conv" is one stride-2 transposed
conv (2.25x fewer FLOPs, see :mod:`vae_ops`); the attention runs through
:func:`zoo.nn.attention.attention`. Opt-in: :meth:`AutoencoderKL.set_winograd` (Winograd
F(2x2,3x3) resnet convs, faster again, more memory). With autograd on, the plain reference
op sequence runs.

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

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from zoo.errors import InputError
from zoo.model import ZooModel

from .vae_config import ConfigError, VAEConfig, flextok_vae_config, parse_vae_config
from .vae_ops import (
    conv1x1,
    downsample_pad,
    fold_upsample_conv_weight,
    group_norm_silu,
    upsample_conv,
    winograd_conv3x3,
    winograd_weight,
)

__all__ = [
    "AutoencoderKL",
    "ConfigError",
    "VAEConfig",
    "convert_diffusers_state_dict",
    "flextok_vae_config",
    "load_vae",
    "parse_vae_config",
]

_EPS = 1e-6  # diffusers hard-codes resnet_eps / GroupNorm eps to 1e-6 in the VAE


def _attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, backend: str | None) -> torch.Tensor:
    """The one place this module calls zoo's attention dispatch ([B, H, L, D])."""
    from zoo.nn.attention import attention

    return attention(q, k, v, backend=backend)


def _no_grad_path() -> bool:
    return not torch.is_grad_enabled()


# --------------------------------------------------------------------------- layers


class ResnetBlock2D(nn.Module):
    """GroupNorm-SiLU-Conv twice plus a (1x1-projected when widths differ) shortcut."""

    def __init__(self, in_channels: int, out_channels: int, groups: int):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, in_channels, eps=_EPS)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.norm2 = nn.GroupNorm(groups, out_channels, eps=_EPS)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.conv_shortcut = nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else None
        self.winograd_min_channels: int | None = None  # see AutoencoderKL.set_winograd
        self._wino: dict[str, tuple[tuple, torch.Tensor]] = {}

    def _conv3x3(self, name: str, x: torch.Tensor) -> torch.Tensor:
        conv: nn.Conv2d = getattr(self, name)
        lim = self.winograd_min_channels
        if (lim is None or conv.in_channels < lim or torch.is_grad_enabled() or x.device.type != "cpu"
                or x.dtype != torch.float32 or x.shape[-2] % 2 or x.shape[-1] % 2
                or not x.is_contiguous(memory_format=torch.channels_last)):
            return conv(x)
        w = conv.weight
        key = (w.data_ptr(), w._version, w.dtype, w.device)
        cached = self._wino.get(name)
        if cached is None or cached[0] != key:
            cached = self._wino[name] = (key, winograd_weight(w.detach()))
        return winograd_conv3x3(x, cached[1], conv.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self._conv3x3("conv1", group_norm_silu(x, self.norm1))
        h = self._conv3x3("conv2", group_norm_silu(h, self.norm2))
        shortcut = x if self.conv_shortcut is None else conv1x1(x, self.conv_shortcut)
        return h.add_(shortcut) if _no_grad_path() else h + shortcut


class Attention(nn.Module):
    """diffusers' VAE mid-block attention: GroupNorm, single-head self-attention, residual."""

    def __init__(self, channels: int, groups: int, head_dim: int | None = None):
        super().__init__()
        self.heads = channels // (head_dim or channels)
        self.group_norm = nn.GroupNorm(groups, channels, eps=_EPS)
        self.to_q = nn.Linear(channels, channels)
        self.to_k = nn.Linear(channels, channels)
        self.to_v = nn.Linear(channels, channels)
        self.to_out = nn.ModuleList([nn.Linear(channels, channels)])  # diffusers' [Linear, Dropout]
        self.attn_backend: str | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, hh, ww = x.shape
        h = F.group_norm(x, self.group_norm.num_groups, self.group_norm.weight, self.group_norm.bias,
                         self.group_norm.eps)
        h = h.flatten(2).transpose(1, 2)  # [B, L, C]; a free view when x is channels-last
        heads, d = self.heads, c // self.heads

        def split(t: torch.Tensor) -> torch.Tensor:
            return t.view(b, -1, heads, d).transpose(1, 2)

        q, k, v = split(self.to_q(h)), split(self.to_k(h)), split(self.to_v(h))
        o = _attention(q, k, v, self.attn_backend).transpose(1, 2).reshape(b, -1, c)
        o = self.to_out[0](o)
        o = o.transpose(1, 2).reshape(b, c, hh, ww)  # channels-last view of [B, L, C]
        return o.add_(x) if _no_grad_path() else o + x


class Downsample2D(nn.Module):
    """Pad one zero row/column at the end, then a stride-2 3x3 conv (diffusers ``padding=0``)."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(downsample_pad(x))


class Upsample2D(nn.Module):
    """Nearest 2x upsampling then a 3x3 conv; outside autograd one folded transposed conv."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)
        self.fold = True  # False: run the literal interpolate + conv (bit-closer to diffusers)
        self._folded: tuple[tuple, torch.Tensor] | None = None

    def _folded_weight(self) -> torch.Tensor:
        w = self.conv.weight
        key = (w.data_ptr(), w._version, w.dtype, w.device)
        if self._folded is None or self._folded[0] != key:
            with torch.no_grad():
                self._folded = (key, fold_upsample_conv_weight(w.detach()))
        return self._folded[1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fold and _no_grad_path():
            return upsample_conv(x, self._folded_weight(), self.conv.bias)
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class DownEncoderBlock2D(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, layers: int, groups: int, downsample: bool):
        super().__init__()
        self.resnets = nn.ModuleList(
            ResnetBlock2D(in_channels if i == 0 else out_channels, out_channels, groups) for i in range(layers)
        )
        self.downsamplers = nn.ModuleList([Downsample2D(out_channels)]) if downsample else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for r in self.resnets:
            x = r(x)
        if self.downsamplers is not None:
            x = self.downsamplers[0](x)
        return x


class UpDecoderBlock2D(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, layers: int, groups: int, upsample: bool):
        super().__init__()
        self.resnets = nn.ModuleList(
            ResnetBlock2D(in_channels if i == 0 else out_channels, out_channels, groups) for i in range(layers)
        )
        self.upsamplers = nn.ModuleList([Upsample2D(out_channels)]) if upsample else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for r in self.resnets:
            x = r(x)
        if self.upsamplers is not None:
            x = self.upsamplers[0](x)
        return x


class UNetMidBlock2D(nn.Module):
    """resnet, (attention, resnet): diffusers' mid block with ``num_layers=1``."""

    def __init__(self, channels: int, groups: int, add_attention: bool):
        super().__init__()
        self.attentions = nn.ModuleList([Attention(channels, groups)]) if add_attention else None
        self.resnets = nn.ModuleList([ResnetBlock2D(channels, channels, groups) for _ in range(2)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.resnets[0](x)
        if self.attentions is not None:
            x = self.attentions[0](x)
        return self.resnets[1](x)


class Encoder(nn.Module):
    def __init__(self, c: VAEConfig):
        super().__init__()
        widths, g = c.block_out_channels, c.norm_num_groups
        self.conv_in = nn.Conv2d(c.in_channels, widths[0], 3, padding=1)
        self.down_blocks = nn.ModuleList(
            DownEncoderBlock2D(widths[max(i - 1, 0)], w, c.layers_per_block, g, downsample=i < len(widths) - 1)
            for i, w in enumerate(widths)
        )
        self.mid_block = UNetMidBlock2D(widths[-1], g, c.mid_block_add_attention)
        self.conv_norm_out = nn.GroupNorm(g, widths[-1], eps=_EPS)
        self.conv_out = nn.Conv2d(widths[-1], 2 * c.latent_channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv_in(x)
        for blk in self.down_blocks:
            x = blk(x)
        x = self.mid_block(x)
        return self.conv_out(group_norm_silu(x, self.conv_norm_out))


class Decoder(nn.Module):
    def __init__(self, c: VAEConfig):
        super().__init__()
        widths, g = c.block_out_channels, c.norm_num_groups
        rev = list(reversed(widths))
        self.conv_in = nn.Conv2d(c.latent_channels, widths[-1], 3, padding=1)
        self.mid_block = UNetMidBlock2D(widths[-1], g, c.mid_block_add_attention)
        self.up_blocks = nn.ModuleList(
            UpDecoderBlock2D(rev[max(i - 1, 0)], w, c.layers_per_block + 1, g, upsample=i < len(rev) - 1)
            for i, w in enumerate(rev)
        )
        self.conv_norm_out = nn.GroupNorm(g, widths[0], eps=_EPS)
        self.conv_out = nn.Conv2d(widths[0], c.out_channels, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.mid_block(self.conv_in(z))
        for blk in self.up_blocks:
            x = blk(x)
        return self.conv_out(group_norm_silu(x, self.conv_norm_out))


# --------------------------------------------------------------------------- the model


def _randn(shape: Sequence[int], generator, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """diffusers' ``randn_tensor``: CPU generators draw on CPU; a list draws one ``[1, ...]``
    tensor per batch item from its own generator (a list of one acts as that generator)."""
    if isinstance(generator, (list, tuple)) and len(generator) == 1:
        generator = generator[0]
    if isinstance(generator, (list, tuple)):
        if len(generator) < shape[0]:
            raise InputError(f"got {len(generator)} generators for a batch of {shape[0]}; pass one per image")
        return torch.cat([_randn((1, *shape[1:]), generator[i], device, dtype) for i in range(shape[0])])
    rand_device = device
    if generator is not None and generator.device.type != device.type:
        if generator.device.type != "cpu":
            raise InputError(f"a {generator.device.type} generator cannot draw noise for {device.type} tensors")
        rand_device = torch.device("cpu")
    return torch.randn(tuple(shape), generator=generator, device=rand_device, dtype=dtype).to(device)


def _contiguous_state(module: nn.Module, state_dict: dict, prefix: str, local_metadata: dict) -> None:
    """state_dict post-hook: channels-last conv weights -> contiguous (safetensors needs it)."""
    for key, value in state_dict.items():
        if key.startswith(prefix) and isinstance(value, torch.Tensor) and not value.is_contiguous():
            state_dict[key] = value.detach().contiguous()


class AutoencoderKL(ZooModel, nn.Module):
    """diffusers-compatible KL autoencoder (FlexTok's VAE). Keys equal diffusers'.

    Example:
        >>> vae = AutoencoderKL.from_config(flextok_vae_config(16))
        >>> vae.vae_config.latent_channels, vae.downsample_factor
        (16, 8)
    """

    def __init__(self, config: VAEConfig):
        super().__init__()
        # ``vae_config`` is what this module reads; ``config`` is informational and may be
        # replaced by zoo.load with the merged card/checkpoint config.
        self.vae_config = config
        self.config = config
        c = config
        self.encoder = Encoder(c)
        self.decoder = Decoder(c)
        lat = c.latent_channels
        self.quant_conv = nn.Conv2d(2 * lat, 2 * lat, 1) if c.use_quant_conv else None
        self.post_quant_conv = nn.Conv2d(lat, lat, 1) if c.use_post_quant_conv else None
        # Activations and conv weights live channels-last: oneDNN convolutions then need no
        # per-call weight/activation reorders. state_dict() hands out contiguous tensors, so
        # the state dict saves with safetensors and matches diffusers' files exactly.
        self.channels_last = True
        self.to(memory_format=torch.channels_last)
        self.register_state_dict_post_hook(_contiguous_state)

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any] | VAEConfig) -> AutoencoderKL:
        """Build (random init) from a diffusers ``config.json`` dict; unknown keys raise ConfigError."""
        return cls(cfg if isinstance(cfg, VAEConfig) else parse_vae_config(cfg))

    # ---------------------------------------------------------------- properties

    @property
    def scaling_factor(self) -> float:
        return float(self.vae_config.scaling_factor)

    @property
    def shift_factor(self) -> float:
        return float(self.vae_config.shift_factor or 0.0)

    @property
    def downsample_factor(self) -> int:
        return self.vae_config.downsample_factor

    @property
    def latent_channels(self) -> int:
        return self.vae_config.latent_channels

    def set_winograd(self, enabled: bool = True, min_channels: int = 256) -> AutoencoderKL:
        """Run the resnets' 3x3 convs with >= ``min_channels`` inputs as Winograd F(2x2,3x3) (CPU, fp32).

        About 1.15x faster encode and decode at 256x256 on one CPU core, with outputs as close
        to diffusers' as the direct convolution's (see :func:`vae_ops.winograd_conv3x3`). Costs
        memory: a cached ``[16, I, O]`` transformed weight per conv (+~0.4 GB for the c16 VAE
        at the default threshold), built on first use. Off by default.

        Example:
            >>> vae = AutoencoderKL.from_config(flextok_vae_config(16)).set_winograd()  # doctest: +SKIP
        """
        for m in self.modules():
            if isinstance(m, ResnetBlock2D):
                m.winograd_min_channels = min_channels if enabled else None
                m._wino.clear()
        return self

    def set_fold_upsample(self, enabled: bool) -> AutoencoderKL:
        """Turn the folded upsample conv on (default, faster) or off (literal diffusers ops)."""
        for m in self.modules():
            if isinstance(m, Upsample2D):
                m.fold = enabled
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

        Any H, W work as in diffusers (each downsampling maps n to ceil(n / 2)); multiples of
        :attr:`downsample_factor` decode back to the same size.
        """
        self._check(x, self.vae_config.in_channels, "images")
        p = next(self.parameters())
        h = self.encoder(self._layout(x.to(dtype=p.dtype)))
        if self.quant_conv is not None:
            h = self.quant_conv(h)
        mean, logvar = torch.chunk(h, 2, dim=1)
        return mean.contiguous(), torch.clamp(logvar, -30.0, 20.0).contiguous()

    def encode(self, x: torch.Tensor, sample: bool = False, generator=None, scaled: bool = False) -> torch.Tensor:
        """Images [B, 3, H, W] in [-1, 1] -> latents [B, C, H/8, W/8].

        The posterior mean (diffusers ``latent_dist.mode()``), or with ``sample=True``
        ``mean + std * noise`` with noise drawn as diffusers' ``latent_dist.sample(generator)``
        (``generator=None`` uses the global RNG, like ml-flextok). ``scaled=True`` returns
        ``(z - shift_factor) * scaling_factor`` (ml-flextok multiplies by ``scaling_factor``).

        Example:
            >>> vae = AutoencoderKL.from_config({"block_out_channels": [32], "norm_num_groups": 8}).eval()
            >>> vae.encode(torch.zeros(2, 3, 8, 8)).shape
            torch.Size([2, 4, 8, 8])
        """
        mean, logvar = self.encode_moments(x)
        z = mean
        if sample:
            std = torch.exp(0.5 * logvar)
            z = mean + std * _randn(mean.shape, generator, mean.device, mean.dtype)
        if scaled:
            z = (z - self.shift_factor) * self.scaling_factor
        return z

    def decode(self, z: torch.Tensor, scaled: bool = False) -> torch.Tensor:
        """Latents [B, C, h, w] -> images [B, 3, 8h, 8w] (about [-1, 1]; not clamped, like diffusers).

        ``scaled=True`` first undoes :meth:`encode`'s scaling: ``z / scaling_factor + shift_factor``.

        Example:
            >>> vae = AutoencoderKL.from_config({"block_out_channels": [32], "norm_num_groups": 8}).eval()
            >>> vae.decode(torch.zeros(1, 4, 8, 8)).shape
            torch.Size([1, 3, 8, 8])
        """
        self._check(z, self.vae_config.latent_channels, "latents")
        p = next(self.parameters())
        z = z.to(dtype=p.dtype)
        if scaled:
            z = z / self.scaling_factor + self.shift_factor
        z = self._layout(z)
        if self.post_quant_conv is not None:
            z = self.post_quant_conv(z)
        return self.decoder(z).contiguous()

    def forward(self, x: torch.Tensor, sample: bool = False, generator=None) -> torch.Tensor:
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
    try:
        from zoo.errors import CheckpointError
    except ImportError:  # pragma: no cover
        CheckpointError = RuntimeError  # type: ignore[misc,assignment]
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
