"""LightningDiT (Yao et al. 2025): a DiT over VA-VAE f16d32 latents with SwiGLU, RMSNorm and
EVA-02-style 2-D rotary embeddings, trained as a rectified-flow velocity model (SiT's linear
path: ``x_t = t x_data + (1 - t) noise``, ``t = 0`` noise, ``t = 1`` data).

Key names follow the official ``lightningdit-xl-imagenet256-*.pt`` (``ema``): ``x_embedder.proj``
(timm ``PatchEmbed``), ``t_embedder.mlp``, ``y_embedder.embedding_table`` (1000 classes + the
null class 1000), ``pos_embed`` and ``feat_rope.freqs_{cos,sin}`` (stored in the file),
``blocks.i.{norm1,attn.qkv,attn.proj,norm2,mlp.w12,mlp.w3,adaLN_modulation.1}``,
``final_layer``.

Sampling (:meth:`LightningDiT.generate`) runs zoo's :func:`~zoo.sampling.flow.sample_flow` on
the reference's own float32 time grid (``linspace(0, 1, 250)`` shifted by ``timestep_shift``:
torchdiffeq's fixed-grid Euler, 249 steps), CFG as ONE batch of 2B rows on the first
``cfg_channels`` channels only, and only for ``t >= cfg_interval_start`` — outside the interval
zoo runs the B conditional rows alone (the reference runs 2B rows and discards half). The class
embeddings are computed once per call.

Example:
    >>> from zoo_plugins.lightningdit.config import LightningDiTConfig
    >>> m = LightningDiT(LightningDiTConfig(input_size=4, in_channels=4, hidden_size=32, depth=1, num_heads=2, num_classes=10))
    >>> m.generate([3], steps=3, seed=0, return_latents=True).values.shape
    torch.Size([1, 16, 4])
"""

from __future__ import annotations

from typing import Any, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from torch import nn

from zoo.errors import InputError
from zoo.model import ZooModel
from zoo.nn.attention import attention
from zoo.nn.blocks import Mlp, merge_heads, split_qkv
from zoo.nn.timestep import TimestepEmbedder

from .config import LightningDiTConfig

__all__ = ["LightningDiT", "VisionRope", "reference_time_grid"]


def reference_time_grid(num_steps: int, shift: float) -> list[float]:
    """LightningDiT's ODE grid: ``torch.linspace(0, 1, num_steps)`` (float32) and, for
    ``shift > 0``, ``s t / (1 + (s - 1) t)`` per point in float32 (its ``ode.__init__``).

    Example:
        >>> [round(t, 4) for t in reference_time_grid(3, 0.3)]
        [0.0, 0.2308, 1.0]
    """
    if isinstance(num_steps, bool) or not isinstance(num_steps, int) or num_steps < 2:
        raise InputError(f"steps must be a whole number >= 2 (grid points; {num_steps!r} given)")
    t = torch.linspace(0, 1, num_steps)
    if shift > 0:
        t = torch.stack([shift * tn / (1 + (shift - 1) * tn) for tn in t])
    return t.tolist()


class _RMSNorm(nn.Module):
    """LightningDiT's RMSNorm: ``x * rsqrt(mean(x^2) + eps) * weight`` (in float32)."""

    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xf = x.float()
        return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)).type_as(x) * self.weight


def _norm(dim: int, rms: bool, affine: bool = False) -> nn.Module:
    return _RMSNorm(dim) if rms else nn.LayerNorm(dim, elementwise_affine=affine, eps=1e-6)


class VisionRope(nn.Module):
    """EVA-02 ``VisionRotaryEmbeddingFast`` (``freqs_for='lang'``, theta 10000): per position of a
    square ``side x side`` grid, ``dim`` interleaved-pair frequencies of the row index then
    ``dim`` of the column index; ``x * cos + rotate_half(x) * sin`` over the last ``2 dim``
    channels (all of a head here). The tables are buffers (the release stores them)."""

    def __init__(self, dim: int, side: int, theta: float = 10000.0):
        super().__init__()
        freqs = 1.0 / (theta ** (torch.arange(0, dim, 2)[: dim // 2].float() / dim))
        t = torch.arange(side) / side * side
        f = torch.einsum("..., f -> ... f", t, freqs).repeat_interleave(2, dim=-1)  # [side, dim]
        full = torch.cat([f[:, None, :].expand(side, side, -1), f[None, :, :].expand(side, side, -1)], dim=-1)
        self.register_buffer("freqs_cos", full.cos().reshape(-1, full.shape[-1]))
        self.register_buffer("freqs_sin", full.sin().reshape(-1, full.shape[-1]))

    @staticmethod
    def rotate_half(x: torch.Tensor) -> torch.Tensor:
        x = x.unflatten(-1, (-1, 2))
        return torch.stack((-x[..., 1], x[..., 0]), dim=-1).flatten(-2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.freqs_cos + self.rotate_half(x) * self.freqs_sin


class _Attention(nn.Module):
    def __init__(self, dim: int, heads: int, qk_norm: bool, rms: bool):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=True)
        hd = dim // heads
        self.q_norm = (_RMSNorm(hd) if rms else nn.LayerNorm(hd)) if qk_norm else None
        self.k_norm = (_RMSNorm(hd) if rms else nn.LayerNorm(hd)) if qk_norm else None
        self.proj = nn.Linear(dim, dim)
        self.attn_backend: Optional[str] = None

    def forward(self, x: torch.Tensor, rope: Optional[VisionRope]) -> torch.Tensor:
        q, k, v = split_qkv(self.qkv(x), self.heads)
        if self.q_norm is not None:
            q, k = self.q_norm(q), self.k_norm(k)
        if rope is not None:
            q, k = rope(q), rope(k)
        return self.proj(merge_heads(attention(q, k, v, backend=self.attn_backend)))


class _SwiGLU(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.w12 = nn.Linear(dim, 2 * hidden)
        self.w3 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1, x2 = self.w12(x).chunk(2, dim=-1)
        return self.w3(F.silu(x1) * x2)


def _modulate(x: torch.Tensor, shift: Optional[torch.Tensor], scale: torch.Tensor) -> torch.Tensor:
    if shift is None:
        return x * (1 + scale.unsqueeze(1))
    return x * (1 + scale.unsqueeze(1)) + shift.unsqueeze(1)


class _Block(nn.Module):
    def __init__(self, cfg: LightningDiTConfig):
        super().__init__()
        d = cfg.hidden_size
        self.norm1 = _norm(d, cfg.use_rmsnorm)
        self.norm2 = _norm(d, cfg.use_rmsnorm)
        self.attn = _Attention(d, cfg.num_heads, cfg.use_qknorm, cfg.use_rmsnorm)
        hidden = int(d * cfg.mlp_ratio)
        self.mlp = _SwiGLU(d, int(2 / 3 * hidden)) if cfg.use_swiglu else Mlp(d, hidden, act=lambda t: F.gelu(t, approximate="tanh"))
        self.wo_shift = cfg.wo_shift
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(d, (4 if cfg.wo_shift else 6) * d))

    def forward(self, x: torch.Tensor, c: torch.Tensor, rope: Optional[VisionRope]) -> torch.Tensor:
        if self.wo_shift:
            scale_msa, gate_msa, scale_mlp, gate_mlp = self.adaLN_modulation(c).chunk(4, dim=1)
            shift_msa = shift_mlp = None
        else:
            shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = self.adaLN_modulation(c).chunk(6, dim=1)
        x = x + gate_msa.unsqueeze(1) * self.attn(_modulate(self.norm1(x), shift_msa, scale_msa), rope)
        return x + gate_mlp.unsqueeze(1) * self.mlp(_modulate(self.norm2(x), shift_mlp, scale_mlp))


class _FinalLayer(nn.Module):
    def __init__(self, cfg: LightningDiTConfig, out_channels: int):
        super().__init__()
        d = cfg.hidden_size
        self.norm_final = _norm(d, cfg.use_rmsnorm)
        self.linear = nn.Linear(d, cfg.patch_size ** 2 * out_channels)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(d, 2 * d))

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        shift, scale = self.adaLN_modulation(c).chunk(2, dim=1)
        return self.linear(_modulate(self.norm_final(x), shift, scale))


class _PatchEmbed(nn.Module):
    def __init__(self, patch: int, in_channels: int, dim: int):
        super().__init__()
        self.proj = nn.Conv2d(in_channels, dim, kernel_size=patch, stride=patch, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)


class _LabelEmbedder(nn.Module):
    def __init__(self, num_classes: int, dim: int, dropout: float):
        super().__init__()
        self.embedding_table = nn.Embedding(num_classes + int(dropout > 0), dim)


class LightningDiT(ZooModel, nn.Module):
    """LightningDiT velocity model; ``generate(class_labels)`` -> images (or latents)."""

    def __init__(self, cfg: LightningDiTConfig):
        super().__init__()
        self.cfg = cfg
        d = cfg.hidden_size
        if d % cfg.num_heads:
            raise InputError(f"hidden_size {d} must be divisible by num_heads {cfg.num_heads}")
        self.out_channels = cfg.in_channels * (2 if cfg.learn_sigma else 1)
        self.x_embedder = _PatchEmbed(cfg.patch_size, cfg.in_channels, d)
        self.t_embedder = TimestepEmbedder(d)
        self.y_embedder = _LabelEmbedder(cfg.num_classes, d, cfg.class_dropout_prob)
        side = cfg.input_size // cfg.patch_size
        self.pos_embed = nn.Parameter(torch.zeros(1, side * side, d), requires_grad=False)
        self.feat_rope = VisionRope(d // cfg.num_heads // 2, side) if cfg.use_rope else None
        self.blocks = nn.ModuleList(_Block(cfg) for _ in range(cfg.depth))
        self.final_layer = _FinalLayer(cfg, self.out_channels)
        self._init_pos_embed(side)

    def _init_pos_embed(self, side: int) -> None:
        """DiT's fixed 2-D sin-cos table (the release stores it; this is the random-init value)."""
        if self.pos_embed.device.type == "meta":
            return
        d = self.cfg.hidden_size
        omega = 1.0 / 10000 ** (torch.arange(d // 4, dtype=torch.float64) / (d / 4.0))
        coords = torch.arange(side, dtype=torch.float64)
        gw, gh = coords[None, :].expand(side, side).reshape(-1), coords[:, None].expand(side, side).reshape(-1)
        parts = [torch.cat([(g[:, None] * omega).sin(), (g[:, None] * omega).cos()], dim=1) for g in (gw, gh)]
        self.pos_embed.data.copy_(torch.cat(parts, dim=1).float()[None])

    @property
    def image_size(self) -> int:
        return self.cfg.input_size * 16

    def describe_facts(self) -> dict[str, Any]:
        c = self.cfg
        return {"latents": f"{c.in_channels}x{c.input_size}x{c.input_size}", "steps": c.num_sampling_steps}

    @property
    def null_class(self) -> int:
        return self.cfg.num_classes

    # ------------------------------------------------------------------ forward
    def forward_embedded(self, x: torch.Tensor, t: torch.Tensor, y_emb: torch.Tensor) -> torch.Tensor:
        """Velocity ``[N, C, H, W]`` at times ``t`` ``[N]`` for class embeddings ``y_emb`` ``[N, D]``."""
        p = self.cfg.patch_size
        h = x.shape[-2] // p
        x = self.x_embedder(x.to(self.pos_embed.dtype)) + self.pos_embed  # the sampler's state stays float32
        c = self.t_embedder(t) + y_emb
        for blk in self.blocks:
            x = blk(x, c, self.feat_rope)
        x = self.final_layer(x, c)
        n, co = x.shape[0], self.out_channels
        x = x.reshape(n, h, h, p, p, co).permute(0, 5, 1, 3, 2, 4).reshape(n, co, h * p, h * p)
        return x[:, : self.cfg.in_channels] if self.cfg.learn_sigma else x

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The reference's ``forward(x, t, y)`` at inference (no label dropout)."""
        return self.forward_embedded(x, t, self.y_embedder.embedding_table(y))

    # ------------------------------------------------------------------ generation
    @torch.no_grad()
    def generate(
        self,
        class_labels: Union[int, Sequence[int], torch.Tensor],
        *,
        steps: Optional[int] = None,
        guidance_scale: Optional[float] = None,
        cfg_interval_start: Optional[float] = None,
        timestep_shift: Optional[float] = None,
        cfg_channels: Optional[int] = None,
        generator: Optional[torch.Generator] = None,
        seed: Optional[int] = None,
        noise: Optional[torch.Tensor] = None,
        return_latents: bool = False,
        vae: Any = None,
        progress: Any = None,
    ):
        """Class labels -> images ``[B, 3, 256, 256]`` in [-1, 1] (decoded by ``config.vae``), or
        with ``return_latents=True`` the generated :class:`~zoo.interfaces.Latents` ``[B, 256, 32]``
        in LightningDiT's normalised space (``vae.decode(vae.denormalize_latents(lat))`` decodes).

        Args:
            steps: grid points of the Euler ODE (``num_sampling_steps``: 250 = 249 steps).
            guidance_scale: ``cfg_scale`` (``w``; 1.0 or less turns CFG off, as the reference's
                ``cfg_scale > 1``). Card defaults: 6.7 (800 ep), 10.0 (64 ep).
            cfg_interval_start: CFG only for ``t >= cfg_interval_start`` (0.125 / 0.10).
            timestep_shift: the grid's shift (0.3; 0 = uniform).
            cfg_channels: guided channels (the first 3 of 32, the reference's ``[:, :3]``).
            generator / seed: initial noise ``torch.randn((B, C, h, w), generator=g)``: the
                reference's ``torch.randn`` after ``torch.manual_seed(seed)``.
            noise: ``[B, C, h, w]`` initial noise instead of drawing it.
        """
        from zoo.interfaces import Latents
        from zoo.sampling.conditioning import as_class_labels, make_generator
        from zoo.sampling.flow import sample_flow

        c = self.cfg
        device = self.pos_embed.device
        labels = as_class_labels(class_labels, c.num_classes, device)
        b = len(labels)
        steps = c.num_sampling_steps if steps is None else steps
        w = float(c.cfg_scale if guidance_scale is None else guidance_scale)
        if w != w or w in (float("inf"), float("-inf")):
            raise InputError(f"guidance_scale must be a finite number, got {guidance_scale!r}")
        start = float(c.cfg_interval_start if cfg_interval_start is None else cfg_interval_start)
        shift = float(c.timestep_shift if timestep_shift is None else timestep_shift)
        channels = c.cfg_channels if cfg_channels is None else cfg_channels
        if isinstance(channels, bool) or not isinstance(channels, int) or not 1 <= channels <= c.in_channels:
            raise InputError(f"cfg_channels must be a whole number in 1..{c.in_channels}, got {channels!r}")
        times = reference_time_grid(steps, shift)
        shape = (b, c.in_channels, c.input_size, c.input_size)
        if noise is not None:
            if tuple(noise.shape) != shape:
                raise InputError(f"noise must be {list(shape)}, got {list(noise.shape)}")
            if generator is not None or seed is not None:
                raise InputError("give noise= or generator=/seed=, not both")
            if not noise.is_floating_point() or not bool(torch.isfinite(noise).all()):
                raise InputError("noise must be a finite float tensor (NaN/Inf or integers given)")
            x0 = noise.to(device=device, dtype=torch.float32)
        else:
            g = make_generator(generator, seed, device)
            x0 = torch.randn(shape, generator=g, device=g.device).to(device)
        guided = w > 1.0
        table = self.y_embedder.embedding_table
        y_cond = table(labels)
        y_both = torch.cat([y_cond, table(torch.full_like(labels, self.null_class))]) if guided else None

        def velocity(x: torch.Tensor, t: float, both: bool) -> torch.Tensor:
            y = y_both if both else y_cond
            return self.forward_embedded(x, torch.full((x.shape[0],), t, dtype=torch.float32, device=device), y)

        out = sample_flow(velocity, x0, times=times, guidance=w if guided else None, guidance_on_time=False,
                          guidance_interval=(start, float("inf")) if guided else None,
                          guidance_channels=channels, progress=progress)
        h = c.input_size
        lat = Latents(values=out.flatten(2).transpose(1, 2).contiguous(), tokenizer=c.vae,
                      meta={"grid": (h, h), "normalized": True, "labels": labels.tolist()})
        if return_latents:
            return lat
        return self.decode(out, vae)

    def decode(self, latents: Any, vae: Any = None) -> torch.Tensor:
        """Normalised latents (``[B, 32, h, w]`` or the :class:`Latents` of ``generate``) -> images,
        through ``config.vae`` (loaded on demand): ``vae.decode(vae.denormalize_latents(z))``."""
        if vae is None:
            import zoo

            vae = zoo.load(self.cfg.vae, device=self.pos_embed.device, pretrained=getattr(self, "vae_pretrained", True))
        return vae.decode(vae.denormalize_latents(latents))
