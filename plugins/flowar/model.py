"""FlowAR (Ren et al. 2024): scale-wise autoregression over MAR KL-16 latents with a flow-matching
head per scale.

Parameter names follow the official ``FlowAR-{S,L,H}.pth`` (``class_emb``, ``z_proj``,
``z_proj_ln``, ``encoder_blocks.i`` / ``decoder_blocks.i`` with ``attn.qkv``, ``mlp.fc1_g``,
``mlp.fc1_x``, ``mlp.fc2``, ``ada_lin.1``; ``flownet.*`` for the head). The constant buffers of
the release (``mask``, every ``rope.freqs``) are rebuilt here (the builder drops them by name).

Generation (:meth:`FlowAR.generate`), as the reference's ``sample_tokens``:

* scales ``1, 2, 4, 8, 16`` laid end to end, run by the shared block loop
  (:func:`zoo.sampling.blocks.generate_blocks` over :func:`~zoo.sampling.blocks.scale_blocks`);
  the first input is the class embedding, each later input the
  previous scale's latents upsampled (bicubic) to 16x16 (``interp_size``: the last scale) and area-downsampled to the next,
  projected by ``z_proj``; a static KV cache per block (a scale attends to itself and every
  earlier scale), 2D RoPE per scale;
* per scale, the flow head integrates ``[B, h*w, 16]`` Gaussian noise with
  :func:`zoo.sampling.sample_flow` on the reference's explicit time grid; CFG as ``2B`` rows with
  the weight ramped over the scales (``Guidance(cfg, "linear")`` read at ``ramp="block_end"``)
  and a guidance interval ``t <= guidance``; the head's
  condition projections (and, for cross-attention heads, the condition's keys/values) are
  computed once per scale, not once per step;
* the noise of scale ``k`` is ``randn([R, h*w, 16])`` from the caller's generator with
  ``R = 2B`` when CFG is on (the rows the reference draws), of which the first ``B`` are used:
  ``seed=s`` reproduces the reference run after ``torch.manual_seed(s)`` on the CPU.

Example:
    >>> from zoo_plugins.flowar.config import FlowARConfig
    >>> m = FlowAR(FlowARConfig(encoder_embed_dim=64, encoder_depth=1, encoder_num_heads=2, decoder_embed_dim=64,
    ...                         decoder_depth=1, decoder_num_heads=2, diffloss_d=1, diffloss_w=64, scale=[1, 2],
    ...                         num_steps=4, img_size=32)).eval()
    >>> m.generate([3], seed=0, return_latents=True).values.shape
    torch.Size([1, 4, 16])
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Optional, Union

import torch
import torch.nn.functional as F
from torch import nn

from zoo.nn.blocks import GeluGLU, ScaleRMSNorm

from zoo.model import ZooModel
from zoo.nn.rope2d import apply_rope, rope_2d_table, rope_frequencies
from zoo.nn.timestep import TimestepEmbedder

from .config import FlowARConfig

__all__ = ["FlowAR", "flowar_time_grid", "rope_2d"]


def flowar_time_grid(num_steps: int) -> list[float]:
    """The reference's Euler grid: ``linspace(1, 0.3, n // 2) ++ linspace(0.25, 0, n // 2 + 1)``
    (float64), or ``linspace(1, 0, n + 1)`` for ``n == 50``.

    Example:
        >>> [round(t, 3) for t in flowar_time_grid(4)]
        [1.0, 0.3, 0.25, 0.125, 0.0]
    """
    if num_steps == 50:
        ts = torch.linspace(1, 0, num_steps + 1, dtype=torch.float64)
    else:
        ts = torch.cat([torch.linspace(1, 0.3, num_steps // 2, dtype=torch.float64),
                        torch.linspace(0.25, 0, num_steps // 2 + 1, dtype=torch.float64)])
    return ts.tolist()


def rope_2d(x: torch.Tensor, freqs: torch.Tensor, pt_seq_len: int = 16) -> torch.Tensor:
    """EVA-style 2D RoPE over one square scale of ``N = s * s`` tokens (``x``: ``[B, H, N, d]``),
    positions ``arange(s) / s * pt_seq_len`` on both axes (every scale spans the same range), as
    the reference's ``VisionRotaryEmbeddingFast`` recomputes it per call.

    Example:
        >>> x = torch.randn(1, 1, 4, 8)
        >>> torch.allclose(rope_2d(x, rope_frequencies(8)).norm(dim=-1), x.norm(dim=-1))   # a rotation
        True
    """
    cos, sin = rope_2d_table(int(math.sqrt(x.shape[2])), x.shape[-1], pt_seq_len, freqs.float(), x.device)
    return apply_rope(x, cos.to(x.dtype), sin.to(x.dtype))


class _Attention(nn.Module):
    def __init__(self, dim: int, heads: int, qkv_bias: bool):
        super().__init__()
        self.heads, self.head_dim = heads, dim // heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.register_buffer("rope_freqs", rope_frequencies(self.head_dim), persistent=False)
        self.attn_backend: str | None = None

    def forward(self, x: torch.Tensor, cache: Optional[dict] = None) -> torch.Tensor:
        from zoo.nn.attention import attention

        b, n, c = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4).unbind(0)
        q, k = rope_2d(q, self.rope_freqs), rope_2d(k, self.rope_freqs)
        if cache is not None:
            lo, hi = cache["len"], cache["len"] + n
            cache["k"][:, :, lo:hi] = k
            cache["v"][:, :, lo:hi] = v
            k, v = cache["k"][:, :, :hi], cache["v"][:, :, :hi]
        o = attention(q, k, v, backend=self.attn_backend)
        return self.proj(o.transpose(1, 2).reshape(b, n, c))


class _CrossAttention(nn.Module):
    def __init__(self, dim: int, cond_dim: int, heads: int):
        super().__init__()
        self.heads, self.head_dim = heads, dim // heads
        self.q = nn.Linear(dim, dim, bias=False)
        self.kv = nn.Linear(cond_dim, 2 * dim, bias=False)
        self.proj = nn.Linear(dim, dim)
        self.register_buffer("rope_freqs", rope_frequencies(self.head_dim), persistent=False)
        self.attn_backend: str | None = None

    def keys_values(self, cond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """RoPE'd keys and values of the (normalised) condition; constant over a scale's flow steps."""
        b, n, _ = cond.shape
        k, v = self.kv(cond).reshape(b, n, 2, self.heads, self.head_dim).permute(2, 0, 3, 1, 4).unbind(0)
        return rope_2d(k, self.rope_freqs), v

    def forward(self, x: torch.Tensor, kv: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        from zoo.nn.attention import attention

        b, n, c = x.shape
        q = rope_2d(self.q(x).reshape(b, n, self.heads, self.head_dim).transpose(1, 2), self.rope_freqs)
        o = attention(q, kv[0], kv[1], backend=self.attn_backend)
        return self.proj(o.transpose(1, 2).reshape(b, n, c))


class _ARBlock(nn.Module):
    def __init__(self, dim: int, heads: int, mlp_ratio: float):
        super().__init__()
        self.norm1, self.norm2 = ScaleRMSNorm(dim), ScaleRMSNorm(dim)
        self.attn = _Attention(dim, heads, qkv_bias=True)
        self.mlp = GeluGLU(dim, int(dim * mlp_ratio * 2 / 3.0))
        self.ada_lin = nn.Sequential(nn.SiLU(), nn.Linear(dim, 6 * dim))

    def modulation(self, cond: torch.Tensor) -> tuple[torch.Tensor, ...]:
        d = self.mlp.fc2.out_features
        return self.ada_lin(cond).view(-1, 1, 6, d).unbind(2)

    def forward(self, x: torch.Tensor, mod: tuple[torch.Tensor, ...], cache=None) -> torch.Tensor:
        g1, g2, s1, s2, b1, b2 = mod
        x = x + self.attn(self.norm1(x).mul(s1.add(1)).add_(b1), cache).mul_(g1)
        return x + self.mlp(self.norm2(x).mul(s2.add(1)).add_(b2)).mul_(g2)


class _FlowBlockV1(nn.Module):
    """Self-attention + MLP, modulated per token by ``t + c``."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.norm1, self.norm2 = ScaleRMSNorm(dim), ScaleRMSNorm(dim)
        self.attn = _Attention(dim, heads, qkv_bias=False)
        self.mlp = GeluGLU(dim, int(dim * 4.0 * 2 / 3.0))
        self.ada_lin = nn.Linear(dim, 6 * dim)

    def prepare(self, c: torch.Tensor, cond: torch.Tensor) -> dict:
        return {}

    def forward(self, x: torch.Tensor, t: torch.Tensor, c: torch.Tensor, pre: dict) -> torch.Tensor:
        b, n, d = c.shape
        g1, g2, s1, s2, b1, b2 = self.ada_lin(F.silu(t + c)).view(b, n, 6, d).unbind(2)
        x = x + self.attn(self.norm1(x).mul(s1.add(1)).add_(b1)).mul_(g1)
        return x + self.mlp(self.norm2(x).mul(s2.add(1)).add_(b2)).mul_(g2)


class _FlowBlockV2(nn.Module):
    """Self-attention modulated by ``t``, cross-attention to the AR condition, MLP modulated by ``t + c``."""

    def __init__(self, dim: int, heads: int, cond_dim: int):
        super().__init__()
        self.norm1, self.norm3 = ScaleRMSNorm(dim), ScaleRMSNorm(dim)
        self.attn = _Attention(dim, heads, qkv_bias=False)
        self.crossattn = _CrossAttention(dim, cond_dim, heads)
        self.norm2_1, self.norm2_2 = ScaleRMSNorm(dim, True), ScaleRMSNorm(cond_dim, True)
        self.mlp = GeluGLU(dim, int(dim * 4.0 * 2 / 3.0))
        self.ada_lin_attn = nn.Linear(dim, 3 * dim)
        self.ada_lin_mlp = nn.Linear(dim, 3 * dim)

    def prepare(self, c: torch.Tensor, cond: torch.Tensor) -> dict:
        return {"kv": self.crossattn.keys_values(self.norm2_2(cond))}

    def forward(self, x: torch.Tensor, t: torch.Tensor, c: torch.Tensor, pre: dict) -> torch.Tensor:
        b, n, d = c.shape
        g1, s1, b1 = self.ada_lin_attn(F.silu(t)).view(t.shape[0], 1, 3, d).unbind(2)
        g2, s2, b2 = self.ada_lin_mlp(F.silu(c + t)).view(b, n, 3, d).unbind(2)
        x = x + self.attn(self.norm1(x).mul(s1.add(1)).add_(b1)).mul_(g1)
        x = x + self.crossattn(self.norm2_1(x), pre["kv"])
        return x + self.mlp(self.norm3(x).mul(s2.add(1)).add_(b2)).mul_(g2)


class _FinalLayer(nn.Module):
    def __init__(self, dim: int, out: int):
        super().__init__()
        self.norm_final = ScaleRMSNorm(dim)
        self.linear = nn.Linear(dim, out)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim, 2 * dim))

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        shift, scale = self.adaLN_modulation(c).chunk(2, dim=-1)
        return self.linear(self.norm_final(x) * (1 + scale) + shift)


class _FlowHead(nn.Module):
    """The reference's ``SimpleTransformerAdaLN``: velocity of a scale's tokens given the AR condition."""

    def __init__(self, token_dim: int, width: int, cond_dim: int, depth: int, cross: bool):
        super().__init__()
        self.time_embed = TimestepEmbedder(width)
        self.cond_embed = nn.Linear(cond_dim, width)
        self.input_proj = nn.Linear(token_dim, width)
        heads = width // 64
        self.res_blocks = nn.ModuleList(
            (_FlowBlockV2(width, heads, cond_dim) if cross else _FlowBlockV1(width, heads)) for _ in range(depth))
        self.final_layer = _FinalLayer(width, token_dim)

    def prepare(self, cond: torch.Tensor) -> dict:
        """What depends on the condition only (reused at every flow step of a scale)."""
        c = self.cond_embed(cond)
        return {"c": c, "blocks": [blk.prepare(c, cond) for blk in self.res_blocks]}

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor, pre: Optional[dict] = None) -> torch.Tensor:
        pre = self.prepare(cond) if pre is None else pre
        t = self.time_embed((t.float() * 1000).long()).unsqueeze(1)
        x = self.input_proj(x)
        c = pre["c"]
        for blk, p in zip(self.res_blocks, pre["blocks"]):
            x = blk(x, t, c, p)
        return self.final_layer(x, c + t)


class FlowAR(ZooModel, nn.Module):
    """FlowAR generator; ``generate(class_labels)`` -> images decoded by ``config.vae``."""

    def __init__(self, cfg: FlowARConfig):
        super().__init__()
        self.cfg = c = cfg
        d, dd, n = c.encoder_embed_dim, c.decoder_embed_dim, c.seq_len
        self.class_emb = nn.Embedding(c.class_num + 1, d)
        self.z_proj = nn.Linear(c.token_dim, d)
        self.z_proj_ln = ScaleRMSNorm(d, weight=True)
        self.encoder_pos_embed_learned = nn.Parameter(torch.zeros(1, n + c.buffer_size, d))
        self.encoder_blocks = nn.ModuleList(_ARBlock(d, c.encoder_num_heads, c.mlp_ratio) for _ in range(c.encoder_depth))
        self.encoder_norm = ScaleRMSNorm(d, weight=True)
        self.decoder_embed = nn.Linear(d, dd)
        self.decoder_pos_embed_learned = nn.Parameter(torch.zeros(1, n + c.buffer_size, dd))
        self.decoder_blocks = nn.ModuleList(_ARBlock(dd, c.decoder_num_heads, c.mlp_ratio) for _ in range(c.decoder_depth))
        self.decoder_norm = ScaleRMSNorm(dd, weight=True)
        self.diffusion_pos_embed_learned = nn.Parameter(torch.zeros(1, n, dd))
        self.flownet = _FlowHead(c.token_dim, c.diffloss_w, dd, c.diffloss_d, c.cross)
        for p in (self.class_emb.weight, self.encoder_pos_embed_learned, self.decoder_pos_embed_learned,
                  self.diffusion_pos_embed_learned):
            nn.init.normal_(p, std=0.02)
        self._vae: Any = None

    @property
    def image_size(self) -> int:
        return int(self.cfg.img_size)

    def _caches(self, blocks: nn.ModuleList, rows: int, device, dtype) -> list[dict]:
        n = self.cfg.seq_len
        return [{"k": torch.empty(rows, b.attn.heads, n, b.attn.head_dim, device=device, dtype=dtype),
                 "v": torch.empty(rows, b.attn.heads, n, b.attn.head_dim, device=device, dtype=dtype), "len": 0} for b in blocks]

    def _scale_condition(self, x: torch.Tensor, start: int, end: int, mods, caches) -> torch.Tensor:
        """One scale through the encoder and decoder stacks -> the flow head's condition ``[R, n, D]``."""
        enc_mod, dec_mod = mods
        enc_cache, dec_cache = caches
        x = self.z_proj_ln(x + self.encoder_pos_embed_learned[:, start:end])
        for blk, m, kv in zip(self.encoder_blocks, enc_mod, enc_cache):
            x = blk(x, m, kv)
        x = self.decoder_embed(self.encoder_norm(x)) + self.decoder_pos_embed_learned[:, start:end]
        for blk, m, kv in zip(self.decoder_blocks, dec_mod, dec_cache):
            x = blk(x, m, kv)
        for kv in (*enc_cache, *dec_cache):
            kv["len"] += x.shape[1]
        return self.decoder_norm(x) + self.diffusion_pos_embed_learned[:, start:end]

    def vae(self, vae: Any = None) -> Any:
        """The paired VAE (``config.vae``), loaded once on first use unless given."""
        if vae is not None:
            return vae
        if self._vae is None:
            import zoo

            pretrained = bool(getattr(self, "_pretrained", True))
            self._vae = zoo.load(self.cfg.vae, device=self.z_proj.weight.device, pretrained=pretrained)
        return self._vae

    @torch.no_grad()
    def generate(
        self,
        class_labels: Union[int, Sequence[int], torch.Tensor],
        *,
        steps: Optional[int] = None,
        guidance_scale: Optional[float] = None,
        guidance_high: Optional[float] = None,
        generator: Optional[torch.Generator] = None,
        seed: Optional[int] = None,
        noise: Any = None,
        return_latents: bool = False,
        vae: Any = None,
        progress: Any = None,
    ):
        """Class labels -> images ``[B, 3, H, W]`` in [-1, 1] (decoded by ``config.vae``), or with
        ``return_latents=True`` the :class:`~zoo.interfaces.Latents` ``[B, h*w, 16]`` in FlowAR's
        (MAR's normalised) space.

        Args:
            steps: Euler steps per scale (``--num_step``; the reference's grid, see
                :func:`flowar_time_grid`).
            guidance_scale: CFG weight at the last scale (``--cfg``; ramped from 1 over the scales;
                1.0 turns CFG off).
            guidance_high: CFG only where ``t <= guidance_high`` (``--guidance``).
            generator / seed: the only source of randomness.
            noise: a :class:`~zoo.sampling.noise.NoiseSource` to draw the Gaussian noise from
                (parity fixtures replay recorded noise).
        """
        from zoo.errors import InputError
        from zoo.interfaces import Latents
        from zoo.sampling import sample_flow
        from zoo.sampling.conditioning import as_class_labels, make_generator
        from zoo.sampling.noise import as_noise_source
        from zoo.sampling.blocks import generate_blocks, scale_blocks
        from zoo.sampling.guidance import Guidance

        c = self.cfg
        if c.buffer_size:
            raise InputError("FlowAR generation supports buffer_size 0 (every release); this config has "
                             f"buffer_size={c.buffer_size}")
        device = self.z_proj.weight.device
        labels = as_class_labels(class_labels, c.class_num, device)
        n_steps = c.num_steps if steps is None else int(steps)
        if n_steps < 2:
            raise InputError(f"steps must be >= 2 (the reference's two-part grid), got {steps}")
        w_last = c.cfg if guidance_scale is None else float(guidance_scale)
        high = c.guidance if guidance_high is None else float(guidance_high)
        if not (math.isfinite(w_last) and math.isfinite(high)):
            raise InputError(f"guidance_scale and guidance_high must be finite, got {guidance_scale!r}, {guidance_high!r}")
        source = as_noise_source(noise if noise is not None else make_generator(generator, seed, device), device)
        grid = flowar_time_grid(n_steps)
        b = len(labels)
        guided = w_last != 1.0
        rows = 2 * b if guided else b
        cond = self.class_emb(labels)
        if guided:
            cond = torch.cat([cond, self.class_emb(torch.full_like(labels, c.class_num))])
        mods = ([blk.modulation(cond) for blk in self.encoder_blocks], [blk.modulation(cond) for blk in self.decoder_blocks])
        dtype = self.z_proj.weight.dtype
        caches = (self._caches(self.encoder_blocks, rows, device, dtype), self._caches(self.decoder_blocks, rows, device, dtype))
        last = c.interp_size
        rows_b = torch.arange(b, device=device)[:, None]

        def predict(block, tokens, known, w):
            """Scale ``block.index``: its input (the class embedding, else the previous scale's
            latents resized to this scale and projected), the AR stacks once, then the flow head."""
            k = block.index
            start, end = int(block.positions[0, 0]), int(block.positions[0, -1]) + 1
            if k == 0:
                x = cond[:, None]
            else:
                s_prev = c.scale[k - 1]
                prev = tokens[rows_b, torch.arange(start - s_prev * s_prev, start, device=device)]
                nxt = prev.to(dtype).permute(0, 2, 1).reshape(b, c.token_dim, s_prev, s_prev)
                nxt = F.interpolate(F.interpolate(nxt, (last, last), mode="bicubic"), (c.scale[k],) * 2, mode="area")
                nxt = self.z_proj(nxt.reshape(b, c.token_dim, -1).permute(0, 2, 1))
                x = nxt.repeat(2, 1, 1) if guided else nxt
            z = self._scale_condition(x, start, end, mods, caches)
            head_pre = {True: None, False: None}

            def velocity(xx, t, use_cfg):
                zz = z if use_cfg else z[:b]
                if head_pre[use_cfg] is None:
                    head_pre[use_cfg] = self.flownet.prepare(zz)
                tt = torch.full((xx.shape[0],), t, dtype=torch.float64, device=device).to(xx.dtype)
                return self.flownet(xx.to(dtype), tt, zz, head_pre[use_cfg])

            eps = source.randn((rows, end - start, c.token_dim), device=device, dtype=torch.float32)[:b]
            return sample_flow(velocity, eps, times=grid, guidance=w if w > 1.0 else None, guidance_interval=(0.0, high))

        # scales laid end to end (1, 4, 16, ... positions); CFG weight w_k = 1 + (cfg - 1) k / (K - 1):
        # a linear schedule read at the block's end
        blocks = scale_blocks(c.scale, b, device)
        tokens = generate_blocks(predict, torch.zeros(b, sum(s * s for s in c.scale), c.token_dim, device=device),
                                 blocks, guidance=Guidance(w_last, "linear") if guided else None, ramp="block_end",
                                 progress=progress)
        sample = tokens[:, -c.scale[-1] ** 2:]
        h = c.img_size // c.vae_stride
        p = c.patch_size
        grid_lat = sample.view(b, h, h, c.vae_embed_dim, p, p).permute(0, 3, 1, 4, 2, 5).reshape(b, c.vae_embed_dim, h * p, h * p)
        lat = Latents(values=grid_lat.flatten(2).transpose(1, 2).contiguous(), tokenizer=c.vae,
                      meta={"grid": (h * p, h * p), "normalized": True, "labels": labels.tolist()})
        if return_latents:
            return lat
        return self.decode(grid_lat, vae)

    def decode(self, latents: Any, vae: Any = None) -> torch.Tensor:
        """FlowAR-space latents (``[B, 16, h, w]`` or the :class:`Latents` of ``generate``) -> images
        through ``config.vae``: ``vae.decode(vae.denormalize_latents(z))`` (``z / 0.2325``)."""
        v = self.vae(vae)
        return v.decode(v.denormalize_latents(latents))
