"""FlexTok (Bachmann et al. 2025): images -> ordered 1D tokens -> images, zoo's implementation.

Parameter names equal the official ``model.safetensors`` keys (``encoder.module_dict.<name>.*``,
``decoder.module_dict.<name>.*``, ``vae.vae.*``), so the official files load with ``strict=True``.

Where zoo differs from the reference's execution (same maths, see the parity tests):

* images are a batch dimension, not packed into one sequence with a dense mask: attention runs
  per image through :func:`zoo.nn.attention.attention` with the prefix-LM mask as a zoo mask;
* classifier-free / norm guidance runs the conditional and unconditional passes as ONE batched
  pass of 2B (no deep-copied dicts); the register inputs are built once, not per step;
* adaLN modulations depend only on t: computed once per step for all blocks, broadcast per segment;
* the decoder's rows (cond rows, then null rows) hold valid tokens only and attention runs per
  group of equal-length rows, so short rows are never padded to the longest;
* the encoder's prefix-LM mask is two attentions (patches over patches, unmasked; registers
  over everything, bottom-right causal) instead of a dense mask, and its last block computes
  queries, output projection and MLP for the registers only (the patches' outputs are unused).

Precision: everything above is float32 and exact up to float rounding (parity tests). Loading
with ``dtype="bf16"`` (``zoo.load("flextok", dtype="bf16")``) is an opt-in, inexact mode: on
CPUs with AVX512-BF16 the matmuls and convolutions run ~2x faster, ids differ from float32 where
an FSQ value sits near a rounding boundary, and images differ by a few 1e-2.

Example:
    >>> import torch
    >>> from zoo_plugins.flextok.testing import tiny_config
    >>> model = FlexTok(tiny_config()).eval()
    >>> tokens = model.encode(torch.rand(2, 3, 64, 64) * 2 - 1)
    >>> tokens.ids.shape, tokens.codebook_size
    (torch.Size([2, 16]), 64000)
    >>> model.decode(tokens.truncate([2, 16]), steps=2, guidance_scale=3.0, latent_size=8).shape
    torch.Size([2, 3, 64, 64])
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any, Union

import torch
import torch.nn.functional as F
from torch import nn

from zoo.errors import InputError, InputTypeError, TokenError
from zoo.interfaces import Tokens, as_tokens
from zoo.model import ZooModel
from zoo.nn.masks import CausalMask, Mask
from zoo.nn.quantize import FSQ
from zoo.sampling import APG, sample_flow

from .config import DecoderConfig, EncoderConfig, FlexTokConfig
from .layers import (
    PrefixLM,
    Ragged,
    TimestepEmbedder,
    Trunk,
    make_norm,
    sincos_posemb_2d,
)
from .vae_adapter import VAEWrapper

__all__ = ["FlexTok", "FlexTokDecoder", "FlexTokEncoder", "patchify", "unpatchify"]

GuidanceScale = Union[float, Callable[[float], float]]  # noqa: UP007 - runtime alias


# ----------------------------------------------------------------------------- small modules


def patchify(x: torch.Tensor, p: Sequence[int]) -> torch.Tensor:
    """``[B, C, H, W] -> [B, H/p0, W/p1, p0*p1*C]`` (patch vector order ``(p0, p1, c)``)."""
    b, c, h, w = x.shape
    p0, p1 = p
    if h % p0 or w % p1:
        raise InputError(f"latent grid {h}x{w} is not divisible by the patch size {p0}x{p1}")
    x = x.permute(0, 2, 3, 1).reshape(b, h // p0, p0, w // p1, p1, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(b, h // p0, w // p1, p0 * p1 * c)


def unpatchify(x: torch.Tensor, p: Sequence[int], c: int) -> torch.Tensor:
    """Inverse of :func:`patchify`: ``[B, n0, n1, p0*p1*C] -> [B, C, n0*p0, n1*p1]``."""
    b, n0, n1, _ = x.shape
    p0, p1 = p
    x = x.reshape(b, n0, n1, p0, p1, c).permute(0, 5, 1, 3, 2, 4)
    return x.reshape(b, c, n0 * p0, n1 * p1)


class PatchEmbed(nn.Module):
    """Patchify + linear projection (key ``patch_proj``)."""

    def __init__(self, channels: int, patch: Sequence[int], dim: int):
        super().__init__()
        self.patch = list(patch)
        self.patch_proj = nn.Linear(channels * patch[0] * patch[1], dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.patch_proj(patchify(x, self.patch).to(self.patch_proj.weight.dtype))


class PosEmb(nn.Module):
    """Positional embeddings (key ``posembs``): 2D sincos / learnable, or 1D learnable."""

    def __init__(self, dim: int, max_sizes: Sequence[int], kind: str, scaling: str = "absolute"):
        super().__init__()
        self.kind, self.scaling, self.max_sizes = kind, scaling, list(max_sizes)
        if kind == "sincos":
            self.posembs = nn.Parameter(sincos_posemb_2d(max_sizes[0], max_sizes[1], dim), requires_grad=False)
        elif kind in ("learnable_sum", "learnable_prod"):
            self.posembs = nn.Parameter(torch.zeros(len(max_sizes), 1, dim, max_sizes[0]))
            nn.init.trunc_normal_(self.posembs, std=0.02)
        else:
            raise InputError(f"unknown posemb type {kind!r}")

    def grid(self, shape: Sequence[int]) -> torch.Tensor:
        """``[1, *shape, D]`` channels-last embeddings for a grid of ``shape``."""
        pe = self.posembs
        if self.kind != "sincos":
            if pe.shape[0] == 1:
                pe = pe[0]
            else:
                h, w = pe[0], pe[1]
                pe = h.unsqueeze(-1) * w.unsqueeze(-2) if self.kind == "learnable_prod" else h.unsqueeze(-1) + w.unsqueeze(-2)
        if self.scaling == "absolute":
            if any(n > m for n, m in zip(shape, pe.shape[2:])):
                raise InputError(f"grid {list(shape)} exceeds the positional embedding's {list(pe.shape[2:])}")
            pe = pe[(slice(None), slice(None)) + tuple(slice(None, n) for n in shape)]
        else:
            pe = F.interpolate(pe, list(shape), mode="bilinear", align_corners=True)
        return pe.movedim(1, -1)


class Registers(nn.Module):
    """Learned register tokens (key ``registers``, optional ``extra_registers``)."""

    def __init__(self, n: int, dim: int, extra_dim: int | None = None):
        super().__init__()
        self.registers = nn.Parameter(torch.zeros(n, dim))
        nn.init.trunc_normal_(self.registers, std=0.02)
        if extra_dim is not None:
            self.extra_registers = nn.Parameter(torch.zeros(n, extra_dim))


class LinearHead(nn.Module):
    """(fp32) LayerNorm -> optional adaLN (shift, scale) -> Linear (keys ``norm``,
    ``adaLN_modulation.1``, ``proj``)."""

    def __init__(self, dim: int, dim_out: int, norm: nn.Module | None, adaln: bool = False, adaln_bias: bool = True, bias: bool = True):
        super().__init__()
        self.norm = norm if norm is not None else nn.Identity()
        if adaln:
            self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim, 2 * dim, bias=adaln_bias))
        self.proj = nn.Linear(dim, dim_out, bias=bias)

    def forward(self, x: torch.Tensor, emb: torch.Tensor | None = None) -> torch.Tensor:
        x = self.norm(x)
        if emb is not None:
            shift, scale = self.adaLN_modulation(emb).unsqueeze(1).chunk(2, dim=-1)
            x = x * (1.0 + scale) + shift
        return self.proj(x)


class Linear(nn.Module):
    """A bare projection kept under key ``proj`` (the reference's LinearLayer)."""

    def __init__(self, dim_in: int, dim: int, bias: bool = True):
        super().__init__()
        self.proj = nn.Linear(dim_in, dim, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x)


class VectorParam(nn.Module):
    """One learned vector under a given key (mask token, null condition)."""

    def __init__(self, name: str, dim: int):
        super().__init__()
        self._name = name
        self.register_parameter(name, nn.Parameter(torch.zeros(dim)))
        nn.init.trunc_normal_(getattr(self, name), std=0.02)

    @property
    def value(self) -> torch.Tensor:
        return getattr(self, self._name)


def _encoder_attention(n_prefix: int, mode: str) -> tuple[PrefixLM | None, Mask | None]:
    """The reference's encoder mask over ``[patches | registers]`` as (layout, mask):
    ``causal_last`` = prefix LM (patches see the patches; registers also see earlier registers
    and themselves), ``causal`` = causal over everything, ``full`` = no mask."""
    if mode == "causal_last":
        return PrefixLM(n_prefix), None
    if mode == "causal":
        return None, CausalMask()
    if mode == "full":
        return None, None
    raise InputError(f"unknown mask mode {mode!r}; expected causal_last, causal or full")


# ----------------------------------------------------------------------------- encoder


class FlexTokEncoder(nn.Module):
    """VAE latents -> register features -> FSQ input ``[B, R, len(levels)]``."""

    def __init__(self, cfg: EncoderConfig, latent_channels: int, latent_dim: int):
        super().__init__()
        self.cfg = cfg
        t = cfg.transformer
        names = cfg.names
        md: dict[str, nn.Module] = {
            names["patch_emb"]: PatchEmbed(latent_channels, cfg.patch_size, t.dim),
        }
        if cfg.posemb_type != "none":
            md[names["posemb"]] = PosEmb(t.dim, cfg.posemb_max_sizes, cfg.posemb_type, cfg.posemb_scaling)
        md[names["registers"]] = Registers(cfg.n_registers, t.dim, cfg.extra_registers_dim)
        md[names["transformer"]] = Trunk(t)
        norm = make_norm(t.dim, cfg.head_norm_eps, cfg.head_norm_affine, cfg.head_norm_bias) if cfg.head_norm else None
        md[names["to_latents"]] = LinearHead(t.dim, latent_dim, norm, bias=cfg.head_proj_bias)
        self.module_dict = nn.ModuleDict(md)

    def _m(self, role: str) -> nn.Module:
        return self.module_dict[self.cfg.names[role]]

    def registers(self) -> torch.Tensor:
        """The register queries used at inference ``[n_eval, D]``."""
        cfg = self.cfg
        reg = self._m("registers").registers
        n = cfg.n_eval_registers or cfg.n_registers
        if cfg.register_ordering == "nested":
            return reg[:n]
        return F.adaptive_avg_pool1d(reg.T, n).T

    def forward(self, latents: torch.Tensor) -> torch.Tensor:
        cfg = self.cfg
        x = self._m("patch_emb")(latents)  # [B, n0, n1, D]
        if cfg.posemb_type != "none":
            x = x + self._m("posemb").grid(x.shape[1:3])
        b = x.shape[0]
        patches = x.reshape(b, -1, x.shape[-1])
        reg = self.registers().to(patches.dtype)
        seq = torch.cat([patches, reg.unsqueeze(0).expand(b, -1, -1)], dim=1)
        n_p = patches.shape[1]
        # only the registers' outputs are used: the last block queries those alone
        layout, mask = _encoder_attention(n_p, cfg.mask_mode)
        regs_out = self._m("transformer")(seq, mask, layout=layout, out_from=n_p)
        return self._m("to_latents")(regs_out)


# ----------------------------------------------------------------------------- decoder


class FlexTokDecoder(nn.Module):
    """The rectified-flow velocity model ``v(x_t, t | registers)``."""

    def __init__(self, cfg: DecoderConfig, latent_channels: int, fsq_dim: int, n_registers: int):
        super().__init__()
        self.cfg = cfg
        self.latent_channels = latent_channels
        self.n_registers = n_registers
        t = cfg.transformer
        d = t.dim
        n = cfg.names
        md: dict[str, nn.Module] = {n["from_latents"]: Linear(fsq_dim, d, bias=cfg.from_latents_bias)}
        if cfg.registers_posemb_type != "none":
            md[n["registers_posemb"]] = PosEmb(d, cfg.registers_posemb_max_sizes, cfg.registers_posemb_type)
        if cfg.nested_dropout:
            md[n["nested_dropout"]] = VectorParam("dropout_mask_token", d)
        if cfg.nullcond == "learned":
            md[n["nullcond"]] = VectorParam("nullcond", d)
        md[n["patch_emb"]] = PatchEmbed(latent_channels, cfg.patch_size, d)
        if cfg.posemb_type != "none":
            md[n["posemb"]] = PosEmb(d, cfg.posemb_max_sizes, cfg.posemb_type, cfg.posemb_scaling)
        md[n["time_embedder"]] = TimestepEmbedder(d, cfg.time_freq_dim, cfg.time_max)
        md[n["transformer"]] = Trunk(t)
        norm = make_norm(d, cfg.head_norm_eps, cfg.head_norm_affine, cfg.head_norm_bias) if cfg.head_norm else None
        p = cfg.patch_size
        md[n["to_patches"]] = LinearHead(d, latent_channels * p[0] * p[1], norm, cfg.head_adaln, cfg.head_adaln_bias, cfg.head_proj_bias)
        self.module_dict = nn.ModuleDict(md)

    def _m(self, role: str) -> nn.Module:
        return self.module_dict[self.cfg.names[role]]

    # -- conditioning (built once per decode, not per step)

    def cond_registers(self, codes: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """FSQ codes ``[B, R, d]`` (ids padded to R) and kept counts ``[B]`` -> registers ``[B, R, D]``."""
        cfg = self.cfg
        x = self._m("from_latents")(codes.to(self._m("from_latents").proj.weight.dtype))
        if cfg.registers_posemb_type != "none":
            x = x + self._m("registers_posemb").grid([x.shape[1]])
        if cfg.nested_dropout:
            drop = torch.arange(x.shape[1], device=x.device)[None, :] >= keep.to(x.device)[:, None]
            x = torch.where(drop[..., None], self._m("nested_dropout").value.to(x.dtype), x)
        return x

    def null_registers(self, batch: int, like: torch.Tensor) -> tuple[torch.Tensor, int]:
        """Unconditional registers and how many of them are real (single-token null condition)."""
        cfg = self.cfg
        if cfg.nullcond == "none":
            raise InputError("this FlexTok decoder has no null condition; use guidance_scale=1.0")
        if cfg.nullcond == "learned":
            value = self._m("nullcond").value.to(like.dtype)
        else:
            value = torch.zeros(like.shape[-1], dtype=like.dtype, device=like.device)
        n = 1 if cfg.nullcond_single_token else like.shape[1]
        return value.expand(batch, n, -1), n

    # -- one velocity evaluation

    def forward(
        self,
        x_t: torch.Tensor,
        t: torch.Tensor,
        registers: torch.Tensor,
        mask: Mask | None = None,
    ) -> torch.Tensor:
        """Velocity for noised latents ``x_t`` [B, C, H, W] (rows of ``registers`` beyond B repeat
        ``x_t``: a 2B CFG batch passes B latents once), time ``t`` [1] or [B]."""
        cfg = self.cfg
        p = self._m("patch_emb")(x_t)  # [B, n0, n1, D]
        if cfg.posemb_type != "none":
            p = p + self._m("posemb").grid(p.shape[1:3])
        b, n0, n1, d = p.shape
        patches = p.reshape(b, n0 * n1, d)
        rep = registers.shape[0] // b
        if rep > 1:
            patches = patches.repeat(rep, 1, 1)
        seq = torch.cat([patches, registers.to(patches.dtype)], dim=1)
        emb = self._m("time_embedder")(t.reshape(-1)).to(patches.dtype)  # [1 or B, D]
        trunk = self._m("transformer")
        allmod = trunk.modulations(emb)
        seg_idx = None
        if cfg.transformer.adaln_expansion == 2:
            seg_idx = _segments(patches.shape[1], registers.shape[1], seq.device)
        out = trunk(seq, mask, allmod, seg_idx)[:, : n0 * n1]
        head = self._m("to_patches")
        out = head(out, emb if cfg.head_adaln else None)
        return unpatchify(out.view(out.shape[0], n0, n1, -1), cfg.patch_size, self.latent_channels)

    def forward_ragged(self, x_t: torch.Tensor, t: torch.Tensor, plan: RaggedPlan) -> torch.Tensor:
        """:meth:`forward` for a :class:`RaggedPlan` (rows = cond, then uncond); ``t`` is shared."""
        cfg = self.cfg
        p = self._m("patch_emb")(x_t)
        if cfg.posemb_type != "none":
            p = p + self._m("posemb").grid(p.shape[1:3])
        b, n0, n1, d = p.shape
        src = torch.cat([p.reshape(b * n0 * n1, d), plan.regs.to(p.dtype)], 0)
        x = src.index_select(0, plan.gather)
        emb = self._m("time_embedder")(t.reshape(-1)[:1]).to(p.dtype)  # [1, D]
        trunk = self._m("transformer")
        seg = plan.seg if cfg.transformer.adaln_expansion == 2 else None
        x = trunk(x, plan.mask, trunk.modulations(emb), seg, plan.layout)
        out = x.index_select(0, plan.patch_index).view(plan.rows, n0, n1, d)
        out = self._m("to_patches")(out.view(plan.rows, n0 * n1, d), emb if cfg.head_adaln else None)
        return unpatchify(out.view(plan.rows, n0, n1, -1), cfg.patch_size, self.latent_channels)


class RaggedPlan:
    """How one decode lays out its rows (cond rows, then uncond rows) as valid tokens only.

    Register suffixes that are identical by construction (the nested-dropout mask token at
    positions >= k, the null condition repeated over all positions) stay identical through every
    layer, so each run is kept as ONE token whose attention logit gets ``+log(count)``: exactly
    the softmax over ``count`` equal keys. Rows then have different lengths; linear layers see
    only valid tokens and attention runs per group of equal-length rows (:class:`Ragged`), with
    a zoo bias only where a row carries such a repeated token.
    """

    def __init__(self, regs: list[torch.Tensor], mults: list[int], n_images: int, n_patches: int):
        device = regs[0].device
        lp, b = n_patches, n_images
        lengths = [lp + r.shape[0] for r in regs]
        gidx, seg, pidx = [], [], []
        src, pos = b * lp, 0
        for row, r in enumerate(regs):
            img = row % b
            gidx.extend(range(img * lp, img * lp + lp))
            gidx.extend(range(src, src + r.shape[0]))
            src += r.shape[0]
            seg.extend([0] * lp + [1] * r.shape[0])
            pidx.extend(range(pos, pos + lp))
            pos += lengths[row]
        self.regs = torch.cat(regs, 0)
        self.gather = torch.tensor(gidx, dtype=torch.long, device=device)
        self.seg = torch.tensor(seg, dtype=torch.long, device=device)
        self.patch_index = torch.tensor(pidx, dtype=torch.long, device=device)
        self.layout = Ragged(lengths, device, mults)
        self.rows, self.n_patches = len(regs), lp
        self.mask: Mask | None = None  # the layout carries the per-group log-count biases


@functools.lru_cache(maxsize=16)
def _segments_cpu(n_patches: int, n_regs: int) -> torch.Tensor:
    return torch.cat([torch.zeros(n_patches, dtype=torch.long), torch.ones(n_regs, dtype=torch.long)])


def _segments(n_patches: int, n_regs: int, device: torch.device) -> torch.Tensor:
    return _segments_cpu(n_patches, n_regs).to(device)


# ----------------------------------------------------------------------------- guidance


# ----------------------------------------------------------------------------- the tokenizer


class FlexTok(ZooModel, nn.Module):
    """FlexTok tokenizer: ``encode(images) -> Tokens`` (256 ordered ids/image, codebook 64 000),
    ``decode(tokens, steps, guidance_scale, norm_guidance, generator) -> images``."""

    def __init__(self, config: FlexTokConfig):
        super().__init__()
        self.config = config
        fsq_dim = len(config.fsq_levels)
        lc = config.vae.latent_channels
        self.vae = VAEWrapper(config.vae)
        self.encoder = FlexTokEncoder(config.encoder, lc, fsq_dim)
        self.decoder = FlexTokDecoder(config.decoder, lc, fsq_dim, config.encoder.n_eval_registers or config.encoder.n_registers)
        self.regularizer = FSQ(config.fsq_levels)

    # ---------------------------------------------------------------- helpers

    @property
    def codebook_size(self) -> int:
        return self.regularizer.codebook_size

    @property
    def num_tokens(self) -> int:
        return self.decoder.n_registers

    @property
    def latent_grid(self) -> tuple[int, int]:
        """The decoder's native VAE-latent grid: its patch posemb grid x patch size (32x32 for the
        published 256px models, 8x8 for ``flextok.demo_tiny``); ``decode``'s default."""
        d = self.config.decoder
        return (d.posemb_max_sizes[0] * d.patch_size[0], d.posemb_max_sizes[1] * d.patch_size[1])

    @property
    def image_size(self) -> int:
        """Native image side in pixels (256 for the published models); ``zoo reconstruct`` reads images at it."""
        return self.latent_grid[0] * self.vae.downsample_factor

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return self.decoder._m("transformer").blocks[0].attn.wq.weight.dtype

    def _check_images(self, images: torch.Tensor) -> torch.Tensor:
        """A float [B, 3, S, S] batch at the model's own size (tokens do not record the size, so
        other sizes would decode to S x S), finite, in [-1, 1]; MediaError / InputTypeError otherwise."""
        from zoo.media.image import check_images

        return check_images(images, size=self.image_size, model=self.name).to(self.device)

    # ---------------------------------------------------------------- encode

    @torch.no_grad()
    def encode_latents(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Images [B, 3, H, W] in [-1, 1] -> scaled VAE latents [B, C, H/8, W/8]."""
        return self.vae.encode(self._check_images(images), generator=generator)

    @torch.no_grad()
    def tokenize_latents(self, latents: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Scaled VAE latents -> (pre-quantisation latents [B, R, d], ids [B, R])."""
        z = self.encoder(latents.to(self.dtype))
        _, ids = self.regularizer(z)
        return z, ids

    @torch.no_grad()
    def encode(self, images: torch.Tensor, keep: int | Sequence[int] | None = None, generator: torch.Generator | None = None) -> Tokens:
        """Images [B, 3, H, W] in [-1, 1] -> :class:`zoo.interfaces.Tokens` (ordered, coarse to fine).

        ``keep`` truncates every image (an int) or each image (one count per image) to a prefix.

        Example:
            >>> tokens = model.encode(images)                       # doctest: +SKIP
            >>> model.decode(tokens.truncate([16, 256]))           # doctest: +SKIP
        """
        _, ids = self.tokenize_latents(self.encode_latents(images, generator))
        tokens = Tokens(ids=ids, codebook_size=self.codebook_size, tokenizer=self.name)
        return tokens if keep is None else tokens.truncate(keep)

    # ---------------------------------------------------------------- decode

    def _as_tokens(self, tokens: Any) -> Tokens:
        t = as_tokens(tokens, self.codebook_size, self.name)
        if t.ids.dim() != 2:
            raise TokenError(f"FlexTok tokens are [B, N], got {tuple(t.ids.shape)}")
        if int(t.lengths.max()) > self.num_tokens or int(t.lengths.min()) < 1:
            raise TokenError(f"each image needs 1..{self.num_tokens} tokens, got lengths {t.lengths.tolist()}")
        return t

    @torch.no_grad()
    def decode_latents(
        self,
        tokens: Any,
        steps: int | None = None,
        guidance_scale: GuidanceScale | None = None,
        norm_guidance: bool | None = None,
        generator: torch.Generator | None = None,
        latent_size: int | Sequence[int] | None = None,
        noise: torch.Tensor | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> torch.Tensor:
        """Tokens -> scaled VAE latents [B, C, h, w] by ``steps`` Euler steps of the flow.

        The initial noise is drawn per image, in order, as ``torch.randn((1, C, h, w),
        generator=generator)`` (the reference's draw), unless ``noise`` is given.
        """
        cfg = self.config
        latent_size = self.latent_grid if latent_size is None else latent_size
        sides = [latent_size] if isinstance(latent_size, int) else list(latent_size) if isinstance(latent_size, (list, tuple)) else [None]
        if len(sides) not in (1, 2) or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in sides):
            raise InputError(f"latent_size must be a positive int or (h, w) of positive ints (the VAE grid), got {latent_size!r}")
        if generator is not None and not isinstance(generator, torch.Generator):
            raise InputTypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
        if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int) or steps < 1):
            raise InputError(f"steps must be a whole number >= 1, got {steps!r}")
        steps = cfg.default_steps if steps is None else int(steps)
        scale = cfg.default_guidance_scale if guidance_scale is None else guidance_scale
        if norm_guidance is not None and not isinstance(norm_guidance, bool):
            raise InputTypeError(f"norm_guidance must be True, False or None (the card's default), got {norm_guidance!r}")
        apg = cfg.default_norm_guidance if norm_guidance is None else norm_guidance
        t = self._as_tokens(tokens).to(self.device)
        b = t.batch_size
        dec = self.decoder
        r = dec.n_registers
        ids = torch.zeros(b, r, dtype=torch.long, device=self.device)
        ids[:, : t.ids.shape[1]] = t.ids
        pos = torch.arange(r, device=self.device)[None]
        ids = torch.where(pos < t.lengths.to(self.device)[:, None], ids, torch.zeros_like(ids))
        codes = self.regularizer.indices_to_codes(ids)
        regs = dec.cond_registers(codes, t.lengths)
        keep = t.lengths.tolist()
        if cfg.decoder.nested_dropout:  # positions >= k hold the same mask token: one token, count r - k
            rows = [regs[i, : min(k + 1, r)] for i, k in enumerate(keep)]
            mults = [r - k if k < r else 1 for k in keep]
        else:
            rows, mults = list(regs.unbind(0)), [1] * b
        do_cfg = callable(scale) or float(scale) != 1.0
        if do_cfg:
            null, n_null = dec.null_registers(1, regs)
            rows += [null[0, :1]] * b
            mults += [n_null] * b
        n_patches = _num_patches(latent_size, cfg.decoder.patch_size)
        plan = RaggedPlan(rows, mults, b, n_patches)

        hw = (latent_size, latent_size) if isinstance(latent_size, int) else tuple(latent_size)
        lc = cfg.vae.latent_channels
        if noise is None:
            x = torch.cat([torch.randn((1, lc, *hw), generator=generator, device=self.device) for _ in range(b)])
        else:
            x = noise.to(self.device)
        norm = APG(cfg.apg_momentum, cfg.apg_norm_threshold, cfg.apg_eta) if apg else False

        def velocity(xx: torch.Tensor, t: float, guided: bool) -> torch.Tensor:
            # the ragged plan already holds the conditional and the null rows: patches go in once
            return dec.forward_ragged(xx[:b].to(self.dtype), torch.full((1,), t, device=self.device), plan)

        x = sample_flow(velocity, x, steps=steps, guidance=scale if do_cfg else None, norm_guidance=norm, progress=progress)
        return x

    @torch.no_grad()
    def decode(
        self,
        tokens: Any,
        steps: int | None = None,
        guidance_scale: GuidanceScale | None = None,
        norm_guidance: bool | None = None,
        generator: torch.Generator | None = None,
        latent_size: int | Sequence[int] | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> torch.Tensor:
        """Tokens (``Tokens``, ``[B, k]`` ids, or a list of per-image ``[1, k]`` tensors, ragged)
        -> images ``[B, 3, 8h, 8w]`` in about [-1, 1].

        Defaults (``None``) are the reference README's: 20 steps, guidance 7.5, norm guidance on.
        ``latent_size`` is the VAE grid (32 for 256x256 images).
        """
        z = self.decode_latents(tokens, steps, guidance_scale, norm_guidance, generator, latent_size, progress=progress)
        return self.vae.decode(z)

    # reference-compatible aliases
    def tokenize(self, images: torch.Tensor) -> list[torch.Tensor]:
        """The reference's ``tokenize``: a list of ``[1, 256]`` id tensors."""
        return self.encode(images).to_list()

    def detokenize(self, token_ids_list: Sequence[torch.Tensor], timesteps: int = 20, guidance_scale: float = 1.0,
                   perform_norm_guidance: bool = False, generator: torch.Generator | None = None,
                   vae_image_sizes: int = 32, **_: Any) -> torch.Tensor:
        """The reference's ``detokenize`` signature and defaults (guidance 1.0, no APG)."""
        return self.decode(list(token_ids_list), timesteps, guidance_scale, perform_norm_guidance, generator, vae_image_sizes)

    @torch.no_grad()
    def reconstruct_grid(
        self,
        images: torch.Tensor,
        keeps: Sequence[int] = (1, 4, 16, 64, 256),
        steps: int | None = None,
        guidance_scale: GuidanceScale | None = None,
        norm_guidance: bool | None = None,
        seed: int = 0,
        progress: Callable[[int, int], None] | None = None,
    ) -> torch.Tensor:
        """Encode once, decode each prefix length in ``keeps``: ``[len(keeps), B, 3, H, W]``.

        Each row is decoded with a fresh ``torch.Generator().manual_seed(seed)`` so rows differ
        only by the number of tokens. ``progress(done, total)`` counts Euler steps over all rows.
        """
        images = self._check_images(images)
        tokens = self.encode(images)
        f = self.vae.downsample_factor
        size = (images.shape[-2] // f, images.shape[-1] // f)
        n_steps = self.config.default_steps if steps is None else int(steps)
        rows = []
        for j, k in enumerate(keeps):
            cb = None if progress is None else (lambda d, n, j=j: progress(j * n_steps + d, len(keeps) * n_steps))
            g = torch.Generator(device=self.device).manual_seed(seed)
            rows.append(self.decode(tokens.truncate(min(int(k), self.num_tokens)), steps, guidance_scale, norm_guidance, g, size, cb))
        return torch.stack(rows)


def _num_patches(latent_size: int | Sequence[int], patch: Sequence[int]) -> int:
    h, w = (latent_size, latent_size) if isinstance(latent_size, int) else latent_size
    return (h // patch[0]) * (w // patch[1])
