"""The convolutional encoder/decoder of taming-transformers, LDM, LlamaGen and diffusers, once.

One topology serves VQGAN tokenizers (LlamaGen VQ and its copies), KL-VAEs (LDM, MAR, VA-VAE)
and diffusers' ``AutoencoderKL`` (FlexTok): ``conv_in``, one level per entry of ``ch_mult``
(``num_res_blocks`` ResNet blocks, optional self-attention after each, an asymmetric-pad
stride-2 downsample on all but the last level), a middle (ResNet, attention, ResNet), then
GroupNorm-SiLU-``conv_out``. The decoder mirrors it with ``num_res_blocks + 1`` blocks per level
and nearest-x2 + 3x3-conv upsampling.

Module names follow diffusers (``down_blocks.i.resnets.j``, ``mid_block.attentions.0``,
``up_blocks.i`` in execution order, attention as ``to_q``/``to_k``/``to_v``/``to_out.0``
linears). The other official layouts (LDM/taming ``down.i.block.j``, LlamaGen
``conv_blocks.i.res.j``) are mapped onto these names as data, in :mod:`zoo.nn.conv_layouts`.

Hooks for variants (Open-MAGVIT2-style decoders and the like):

* ``norm=`` — a factory ``channels -> nn.Module`` used for every normalisation layer (default
  ``GroupNorm(norm_groups, channels, eps=norm_eps)``). A norm module with an attribute
  ``conditional = True`` is called as ``norm(x, cond)`` with the ``cond`` passed to
  :meth:`Decoder.forward` / :meth:`Encoder.forward` (AdaptiveGroupNorm conditioned on the
  quantised latent, for instance).
* ``downsample=`` / ``upsample=`` — factories ``channels -> nn.Module`` replacing
  :class:`Downsample` / :class:`Upsample` (a depth-to-space upsampler, for instance); they keep
  their own parameter names under ``downsamplers.0`` / ``upsamplers.0``.

Speed (inference, no autograd): see :mod:`zoo.nn.conv_ops` — GroupNorm+SiLU and residual adds
in place, 1x1 shortcut convs as one GEMM on channels-last activations, "nearest-upsample then
3x3 conv" folded into one stride-2 transposed conv, opt-in Winograd resnet convs
(:func:`set_winograd`). With autograd on, the plain reference op sequence runs.

Example:
    >>> import torch
    >>> cfg = ConvAEConfig(ch=32, ch_mult=(1, 2), num_res_blocks=1, z_channels=4, norm_groups=8,
    ...                    resolution=16, attn_resolutions=(8,))
    >>> enc, dec = Encoder(cfg).eval(), Decoder(cfg).eval()
    >>> z = enc(torch.zeros(1, 3, 16, 16))
    >>> z.shape, dec(z).shape
    (torch.Size([1, 4, 8, 8]), torch.Size([1, 3, 16, 16]))
    >>> cfg.downsample_factor, cfg.widths
    (2, (32, 64))
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from zoo.errors import ConfigError
from zoo.nn.conv_ops import (
    conv1x1,
    downsample_pad,
    fold_upsample_conv_weight,
    group_norm_silu,
    upsample_conv,
    winograd_conv3x3,
    winograd_weight,
)

__all__ = [
    "AttnBlock", "ConvAEConfig", "Decoder", "DownBlock", "Downsample", "Encoder", "MidBlock", "NormFactory",
    "ResnetBlock", "UpBlock", "Upsample", "channels_last_", "norm_act", "set_fold_upsample", "set_winograd",
]

NormFactory = Callable[[int], nn.Module]
ResampleFactory = Callable[[int], nn.Module]


@dataclass(frozen=True)
class ConvAEConfig:
    """Architecture of a conv encoder/decoder pair, in taming/LDM terms.

    ``ch * ch_mult[i]`` is the width of level ``i`` (level 0 at full resolution, ``conv_in``
    outputs ``ch``). Attention follows every ResNet block of a level whose resolution
    ``resolution // 2**i`` is in ``attn_resolutions`` (encoder) or
    ``decoder_attn_resolutions`` (decoder; ``None`` = same as the encoder), as LDM decides it.
    ``decoder_res_blocks`` defaults to ``num_res_blocks + 1``. The encoder ends in
    ``2 * z_channels`` channels when ``double_z`` (a Gaussian posterior's mean and log-variance),
    else ``z_channels``; the decoder starts from ``z_channels``.

    Example:
        >>> c = ConvAEConfig(ch_mult=(1, 1, 2, 2, 4), resolution=256, attn_resolutions=(16,))
        >>> c.encoder_attn_levels, c.downsample_factor
        ((4,), 16)
        >>> ConvAEConfig(ch=48, norm_groups=32)
        Traceback (most recent call last):
        ...
        zoo.errors.ConfigError: conv autoencoder width 48 (ch * ch_mult) is not divisible by norm_groups=32
    """

    in_channels: int = 3
    out_channels: int = 3
    ch: int = 128
    ch_mult: tuple[int, ...] = (1, 1, 2, 2, 4)
    num_res_blocks: int = 2
    decoder_res_blocks: int | None = None
    z_channels: int = 256
    double_z: bool = False
    resolution: int = 256
    attn_resolutions: tuple[int, ...] = ()
    decoder_attn_resolutions: tuple[int, ...] | None = None
    mid_attention: bool = True
    norm_groups: int = 32
    norm_eps: float = 1e-6

    def __post_init__(self) -> None:
        for name in ("ch_mult", "attn_resolutions", "decoder_attn_resolutions"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, tuple):
                if not isinstance(value, (list, tuple)):
                    raise ConfigError(f"conv autoencoder field {name!r} must be a list of ints, got {value!r}")
                object.__setattr__(self, name, tuple(value))
        for name in ("in_channels", "out_channels", "ch", "num_res_blocks", "z_channels", "resolution", "norm_groups"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ConfigError(f"conv autoencoder field {name!r} must be a positive int, got {v!r}")
        if not self.ch_mult or any(isinstance(m, bool) or not isinstance(m, int) or m < 1 for m in self.ch_mult):
            raise ConfigError(f"ch_mult must be a non-empty list of positive ints, got {self.ch_mult!r}")
        if self.decoder_res_blocks is not None and (not isinstance(self.decoder_res_blocks, int) or self.decoder_res_blocks < 1):
            raise ConfigError(f"decoder_res_blocks must be a positive int or None, got {self.decoder_res_blocks!r}")
        for w in (self.ch, *self.widths):
            if w % self.norm_groups:
                raise ConfigError(f"conv autoencoder width {w} (ch * ch_mult) is not divisible by norm_groups={self.norm_groups}")

    @property
    def widths(self) -> tuple[int, ...]:
        """Output width of every level, ``ch * ch_mult[i]``."""
        return tuple(self.ch * m for m in self.ch_mult)

    @property
    def num_levels(self) -> int:
        return len(self.ch_mult)

    @property
    def downsample_factor(self) -> int:
        """Spatial reduction of the encoder: ``2 ** (levels - 1)``."""
        return 2 ** (self.num_levels - 1)

    @property
    def decoder_blocks(self) -> int:
        return self.num_res_blocks + 1 if self.decoder_res_blocks is None else self.decoder_res_blocks

    def _levels(self, resolutions: Sequence[int]) -> tuple[int, ...]:
        return tuple(i for i in range(self.num_levels) if self.resolution // 2**i in resolutions)

    @property
    def encoder_attn_levels(self) -> tuple[int, ...]:
        """Levels (0 = full resolution) whose ResNet blocks are followed by attention in the encoder."""
        return self._levels(self.attn_resolutions)

    @property
    def decoder_attn_levels(self) -> tuple[int, ...]:
        """Levels (0 = full resolution) with attention in the decoder."""
        res = self.attn_resolutions if self.decoder_attn_resolutions is None else self.decoder_attn_resolutions
        return self._levels(res)


def _no_grad_path() -> bool:
    return not torch.is_grad_enabled()


def _group_norm_factory(groups: int, eps: float) -> NormFactory:
    def make(channels: int) -> nn.Module:
        return nn.GroupNorm(groups, channels, eps=eps)

    return make


def _norm(norm: nn.Module, x: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
    return norm(x, cond) if getattr(norm, "conditional", False) else norm(x)


def norm_act(x: torch.Tensor, norm: nn.Module, cond: torch.Tensor | None = None) -> torch.Tensor:
    """``silu(norm(x))`` (``norm(x, cond)`` for a conditional norm); GroupNorm takes the fused path.

    Example:
        >>> gn = nn.GroupNorm(2, 4)
        >>> x = torch.randn(1, 4, 3, 3)
        >>> bool(torch.allclose(norm_act(x, gn), F.silu(gn(x))))
        True
    """
    if type(norm) is nn.GroupNorm:
        return group_norm_silu(x, norm)
    return F.silu(_norm(norm, x, cond))


class ResnetBlock(nn.Module):
    """Norm-SiLU-Conv3x3 twice plus a shortcut (a 1x1 conv when the widths differ).

    Keys: ``norm1 conv1 norm2 conv2 [conv_shortcut]`` (LDM/LlamaGen call the shortcut
    ``nin_shortcut``; :mod:`zoo.nn.conv_layouts` renames it).
    """

    def __init__(self, in_channels: int, out_channels: int, norm: NormFactory):
        super().__init__()
        self.norm1 = norm(in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.norm2 = norm(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.conv_shortcut = nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else None
        self.winograd_min_channels: int | None = None  # see set_winograd
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

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        h = self._conv3x3("conv1", norm_act(x, self.norm1, cond))
        h = norm_act(h, self.norm2, cond)  # rebinding frees conv1's output before conv2 runs (one full-size tensor less)
        h = self._conv3x3("conv2", h)
        shortcut = x if self.conv_shortcut is None else conv1x1(x, self.conv_shortcut)
        return h.add_(shortcut) if _no_grad_path() else h + shortcut


class AttnBlock(nn.Module):
    """Norm, single-head self-attention over all pixels, output projection, residual.

    Keys: ``group_norm to_q to_k to_v to_out.0`` (linears, as diffusers); LDM/LlamaGen's
    ``norm q k v proj_out`` 1x1 convs map onto them. Runs through
    :func:`zoo.nn.attention.attention` (``attn_backend`` as every zoo attention module).
    """

    def __init__(self, channels: int, norm: NormFactory, head_dim: int | None = None):
        super().__init__()
        self.heads = channels // (head_dim or channels)
        self.group_norm = norm(channels)
        self.to_q = nn.Linear(channels, channels)
        self.to_k = nn.Linear(channels, channels)
        self.to_v = nn.Linear(channels, channels)
        self.to_out = nn.ModuleList([nn.Linear(channels, channels)])  # diffusers' [Linear, Dropout]
        self.attn_backend: str | None = None

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        from zoo.nn.attention import attention

        b, c, hh, ww = x.shape
        g = self.group_norm
        if type(g) is nn.GroupNorm:
            h = F.group_norm(x, g.num_groups, g.weight, g.bias, g.eps)
        else:
            h = _norm(g, x, cond)
        h = h.flatten(2).transpose(1, 2)  # [B, L, C]; a free view when x is channels-last
        heads, d = self.heads, c // self.heads

        def split(t: torch.Tensor) -> torch.Tensor:
            return t.view(b, -1, heads, d).transpose(1, 2)

        q, k, v = split(self.to_q(h)), split(self.to_k(h)), split(self.to_v(h))
        o = attention(q, k, v, backend=self.attn_backend).transpose(1, 2).reshape(b, -1, c)
        o = self.to_out[0](o)
        o = o.transpose(1, 2).reshape(b, c, hh, ww)  # channels-last view of [B, L, C]
        return o.add_(x) if _no_grad_path() else o + x


class Downsample(nn.Module):
    """Pad one zero row/column at the end, then a stride-2 3x3 conv (``padding=0``). Key: ``conv``."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(downsample_pad(x))


class Upsample(nn.Module):
    """Nearest 2x upsampling then a 3x3 conv; outside autograd one folded transposed conv. Key: ``conv``.

    The folded ``[I, O, 4, 4]`` weight is rebuilt on every call (a few ms for 512 channels) rather
    than cached: a cache would keep ~1.8x the upsample convs' weights resident (26 MB for LlamaGen's
    decoder), while built per call it is freed before the full-resolution levels run.
    """

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)
        self.fold = True  # False: run the literal interpolate + conv (bit-closer to the references)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fold and _no_grad_path():
            return upsample_conv(x, fold_upsample_conv_weight(self.conv.weight.detach()), self.conv.bias)
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


def _call(module: nn.Module, x: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
    return module(x) if cond is None else module(x, cond)


class _Level(nn.Module):
    """ResNet blocks, each followed by attention when the level has it."""

    resnets: nn.ModuleList
    attentions: nn.ModuleList | None

    def _blocks(self, x: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        for j, r in enumerate(self.resnets):
            x = _call(r, x, cond)
            if self.attentions is not None:
                x = _call(self.attentions[j], x, cond)
        return x


class DownBlock(_Level):
    """One encoder level. Keys: ``resnets.j``, ``attentions.j``, ``downsamplers.0``."""

    def __init__(self, in_channels: int, out_channels: int, layers: int, norm: NormFactory, attention: bool,
                 downsample: ResampleFactory | None):
        super().__init__()
        self.resnets = nn.ModuleList(
            ResnetBlock(in_channels if i == 0 else out_channels, out_channels, norm) for i in range(layers))
        self.attentions = nn.ModuleList(AttnBlock(out_channels, norm) for _ in range(layers)) if attention else None
        self.downsamplers = nn.ModuleList([downsample(out_channels)]) if downsample is not None else None

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        x = self._blocks(x, cond)
        return self.downsamplers[0](x) if self.downsamplers is not None else x


class UpBlock(_Level):
    """One decoder level. Keys: ``resnets.j``, ``attentions.j``, ``upsamplers.0``."""

    def __init__(self, in_channels: int, out_channels: int, layers: int, norm: NormFactory, attention: bool,
                 upsample: ResampleFactory | None):
        super().__init__()
        self.resnets = nn.ModuleList(
            ResnetBlock(in_channels if i == 0 else out_channels, out_channels, norm) for i in range(layers))
        self.attentions = nn.ModuleList(AttnBlock(out_channels, norm) for _ in range(layers)) if attention else None
        self.upsamplers = nn.ModuleList([upsample(out_channels)]) if upsample is not None else None

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        x = self._blocks(x, cond)
        return self.upsamplers[0](x) if self.upsamplers is not None else x


class MidBlock(nn.Module):
    """ResNet, (attention,) ResNet. Keys: ``resnets.0``, ``attentions.0``, ``resnets.1``."""

    def __init__(self, channels: int, norm: NormFactory, attention: bool):
        super().__init__()
        self.attentions = nn.ModuleList([AttnBlock(channels, norm)]) if attention else None
        self.resnets = nn.ModuleList([ResnetBlock(channels, channels, norm) for _ in range(2)])

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        x = _call(self.resnets[0], x, cond)
        if self.attentions is not None:
            x = _call(self.attentions[0], x, cond)
        return _call(self.resnets[1], x, cond)


class Encoder(nn.Module):
    """Images ``[B, in_channels, H, W]`` -> ``[B, (2 *) z_channels, H/f, W/f]``, ``f = downsample_factor``.

    Keys: ``conv_in``, ``down_blocks.i.*``, ``mid_block.*``, ``conv_norm_out``, ``conv_out``.
    Any H, W work (each downsampling maps n to ceil(n / 2)).
    """

    def __init__(self, config: ConvAEConfig, *, norm: NormFactory | None = None,
                 downsample: ResampleFactory | None = None):
        super().__init__()
        c = config
        self.config = c
        norm = norm or _group_norm_factory(c.norm_groups, c.norm_eps)
        downsample = downsample or Downsample
        widths, attn = c.widths, c.encoder_attn_levels
        self.conv_in = nn.Conv2d(c.in_channels, c.ch, 3, padding=1)
        self.down_blocks = nn.ModuleList(
            DownBlock(c.ch if i == 0 else widths[i - 1], w, c.num_res_blocks, norm, i in attn,
                      downsample if i < c.num_levels - 1 else None)
            for i, w in enumerate(widths))
        self.mid_block = MidBlock(widths[-1], norm, c.mid_attention)
        self.conv_norm_out = norm(widths[-1])
        self.conv_out = nn.Conv2d(widths[-1], 2 * c.z_channels if c.double_z else c.z_channels, 3, padding=1)

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        # One flat loop in this frame (not blk(x) per level): a level's input is then freed as soon
        # as its first block has run, instead of living in the caller's frame for the whole level.
        x = self.conv_in(x)
        for blk in self.down_blocks:
            for j, r in enumerate(blk.resnets):
                x = _call(r, x, cond)
                if blk.attentions is not None:
                    x = _call(blk.attentions[j], x, cond)
            if blk.downsamplers is not None:
                x = blk.downsamplers[0](x)
        mid = self.mid_block
        x = _call(mid.resnets[0], x, cond)
        if mid.attentions is not None:
            x = _call(mid.attentions[0], x, cond)
        x = _call(mid.resnets[1], x, cond)
        return self.conv_out(norm_act(x, self.conv_norm_out, cond))


class Decoder(nn.Module):
    """``[B, z_channels, h, w]`` -> ``[B, out_channels, h*f, w*f]``. ``up_blocks.0`` runs first (lowest resolution).

    Keys: ``conv_in``, ``mid_block.*``, ``up_blocks.i.*``, ``conv_norm_out``, ``conv_out``.
    ``cond`` reaches every conditional norm (see the module docstring).
    """

    def __init__(self, config: ConvAEConfig, *, norm: NormFactory | None = None,
                 upsample: ResampleFactory | None = None):
        super().__init__()
        c = config
        self.config = c
        norm = norm or _group_norm_factory(c.norm_groups, c.norm_eps)
        upsample = upsample or Upsample
        rev = list(reversed(c.widths))
        attn = {c.num_levels - 1 - i for i in c.decoder_attn_levels}
        self.conv_in = nn.Conv2d(c.z_channels, rev[0], 3, padding=1)
        self.mid_block = MidBlock(rev[0], norm, c.mid_attention)
        self.up_blocks = nn.ModuleList(
            UpBlock(rev[max(i - 1, 0)], w, c.decoder_blocks, norm, i in attn,
                    upsample if i < c.num_levels - 1 else None)
            for i, w in enumerate(rev))
        self.conv_norm_out = norm(rev[-1])
        self.conv_out = nn.Conv2d(rev[-1], c.out_channels, 3, padding=1)

    def forward(self, z: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        mid = self.mid_block  # flat, as in Encoder.forward (frees each block's input early)
        x = _call(mid.resnets[0], self.conv_in(z), cond)
        if mid.attentions is not None:
            x = _call(mid.attentions[0], x, cond)
        x = _call(mid.resnets[1], x, cond)
        for blk in self.up_blocks:
            for j, r in enumerate(blk.resnets):
                x = _call(r, x, cond)
                if blk.attentions is not None:
                    x = _call(blk.attentions[j], x, cond)
            if blk.upsamplers is not None:
                x = blk.upsamplers[0](x)
        return self.conv_out(norm_act(x, self.conv_norm_out, cond))


# --------------------------------------------------------------------------- module-wide switches


def _contiguous_state(module: nn.Module, state_dict: dict, prefix: str, local_metadata: dict) -> None:
    """state_dict post-hook: channels-last conv weights -> contiguous (safetensors needs it)."""
    for key, value in state_dict.items():
        if key.startswith(prefix) and isinstance(value, torch.Tensor) and not value.is_contiguous():
            state_dict[key] = value.detach().contiguous()


def channels_last_(module: nn.Module) -> nn.Module:
    """Store ``module``'s conv weights channels-last (oneDNN then needs no per-call reorders) while
    its ``state_dict()`` still hands out contiguous tensors (so it saves with safetensors). Feed
    the module channels-last activations (``x.contiguous(memory_format=torch.channels_last)``).

    Example:
        >>> m = channels_last_(nn.Conv2d(2, 4, 3))
        >>> m.weight.is_contiguous(), m.state_dict()["weight"].is_contiguous()
        (False, True)
    """
    module.to(memory_format=torch.channels_last)
    module.register_state_dict_post_hook(_contiguous_state)
    return module


def set_winograd(module: nn.Module, enabled: bool = True, min_channels: int = 256) -> nn.Module:
    """Run every :class:`ResnetBlock` 3x3 conv with >= ``min_channels`` inputs as Winograd
    F(2x2,3x3) (CPU, fp32, channels-last, even sizes; faster, a cached ``[16, I, O]`` weight per
    conv). Off by default.

    Example:
        >>> enc = set_winograd(Encoder(ConvAEConfig(ch=32, ch_mult=(1,), z_channels=4, norm_groups=8)), min_channels=32)
        >>> enc.down_blocks[0].resnets[0].winograd_min_channels
        32
    """
    for m in module.modules():
        if isinstance(m, ResnetBlock):
            m.winograd_min_channels = min_channels if enabled else None
            m._wino.clear()
    return module


def set_fold_upsample(module: nn.Module, enabled: bool) -> nn.Module:
    """Folded upsample conv on (default, faster) or off (the literal interpolate + conv of the references)."""
    for m in module.modules():
        if isinstance(m, Upsample):
            m.fold = enabled
    return module
