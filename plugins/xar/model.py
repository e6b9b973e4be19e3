"""xAR (Ren et al. 2025, "Beyond Next-Token: Next-X Prediction"): next-cell autoregression over
MAR KL-16 latents, each cell integrated from noise by a flow SDE.

Parameter names follow the official ``xAR-{B,L,H}.pth`` (``class_emb``, ``time_embed.mlp``,
``z_proj``, ``z_proj_ln``, ``encoder_blocks.i`` / ``decoder_blocks.i`` with ``attn.qkv``,
``mlp.fc1_g``, ``mlp.fc1_x``, ``mlp.fc2``, ``ada_lin.1``; ``pred``). The release's constant
buffers (``mask`` and every ``attn.rope.freqs``, ``freqs_cos``, ``freqs_sin``) are rebuilt here
(the builder drops them by name). zoo's implementation is its own: the reference repository has
no licence file.

Generation (:meth:`XAR.generate`), as the reference's ``sample_tokens``:

* the 16x16 grid in cell-major order (2x2 cells of 8x8), run by the shared block loop
  (:func:`zoo.sampling.blocks.generate_blocks` over :func:`~zoo.sampling.blocks.cell_blocks`,
  which writes each cell at its raster positions); cell ``k`` starts from
  ``randn([B, 64, 16])``; the SDE runs over ``linspace(1, 0.04, num_steps)`` (drift
  ``v - t * score``, diffusion ``2t``, ``score = ((t - 1) v - x) / t`` of the linear path) and ends
  with a mean step to 0: :func:`zoo.sampling.sde.sample_sde` in the reversed time ``s = 1 - t``;
* the transformer sees the earlier cells through a static KV cache: after a cell is sampled, its
  clean latents run once at ``t = 0`` (the reference does this inside the next cell's first step:
  the same keys and values, attended through the same block-causal mask) and their keys/values
  stay; each SDE step then runs only the current cell's 64 tokens;
* CFG as ``2B`` rows (conditional first, the null class 1000 second) with the weight ramped over
  the cells (``Guidance(cfg, "linear")`` read at ``ramp="block_end"``: ``1 + (cfg - 1) k / (K - 1)``); the adaLN modulations of every block for every time of the grid are computed once
  per generation (one GEMM per block instead of one GEMV per block and step);
* noise: ``randn([B, 64, 16])`` per cell, then one ``x``-shaped draw per SDE step in float64
  (the reference's ``randn_like`` of its float64 state: the source's
  :meth:`~zoo.sampling.noise.NoiseSource.with_draw_dtype`), from the caller's generator:
  ``seed=s`` reproduces the reference after ``torch.manual_seed(s)`` (CPU).

Example:
    >>> from zoo_plugins.xar.config import XARConfig
    >>> m = XAR(XARConfig(encoder_embed_dim=64, encoder_depth=1, encoder_num_heads=2, decoder_embed_dim=64,
    ...                   decoder_depth=1, decoder_num_heads=2, num_steps=3)).eval()
    >>> m.generate([3], seed=0, return_latents=True).values.shape
    torch.Size([1, 256, 16])
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Optional, Union

import torch
from torch import nn

from zoo.nn.blocks import GeluGLU, ScaleRMSNorm

from zoo.model import ZooModel
from zoo.nn.rope2d import apply_rope, rope_2d_table
from zoo.nn.timestep import TimestepEmbedder

from .config import XARConfig

__all__ = ["XAR", "cell_order", "xar_time_grid"]


def xar_time_grid(num_steps: int) -> list[float]:
    """The reference's SDE times ``linspace(1, 0.04, num_steps)`` (float64), then 0 (the mean step).

    Example:
        >>> xar_time_grid(3)
        [1.0, 0.52, 0.04, 0.0]
    """
    return torch.linspace(1.0, 0.04, num_steps, dtype=torch.float64).tolist() + [0.0]


def cell_order(side: int, cells_per_side: int) -> torch.Tensor:
    """Raster index of every position in cell-major order (cells row by row, each cell row-major).

    Example:
        >>> cell_order(4, 2).tolist()
        [0, 1, 4, 5, 2, 3, 6, 7, 8, 9, 12, 13, 10, 11, 14, 15]
    """
    p = side // cells_per_side
    idx = torch.arange(side * side).view(cells_per_side, p, cells_per_side, p)
    return idx.permute(0, 2, 1, 3).reshape(-1)


class _Attention(nn.Module):
    """Self-attention with 2D RoPE at the tokens' grid positions and a static KV cache of the
    finished cells: ``cache["len"]`` clean tokens, then this call's tokens (not stored unless
    ``commit``)."""

    def __init__(self, dim: int, heads: int, side: int, order: torch.Tensor):
        super().__init__()
        self.heads, self.head_dim = heads, dim // heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        cos, sin = rope_2d_table(side, self.head_dim, pt_seq_len=16)
        self.register_buffer("rope_cos", cos[order], persistent=False)  # cell-major positions
        self.register_buffer("rope_sin", sin[order], persistent=False)
        self.attn_backend: str | None = None

    def forward(self, x: torch.Tensor, start: int, cache: dict, commit: bool) -> torch.Tensor:
        from zoo.nn.attention import attention

        b, n, c = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4).unbind(0)
        cos, sin = self.rope_cos[start:start + n], self.rope_sin[start:start + n]
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        lo = cache["len"]
        if commit:  # a finished cell: store it, then attend to everything stored
            cache["k"][:b, :, lo:lo + n] = k
            cache["v"][:b, :, lo:lo + n] = v
            k, v = cache["k"][:b, :, :lo + n], cache["v"][:b, :, :lo + n]
        elif lo:
            k = torch.cat([cache["k"][:b, :, :lo], k], dim=2)
            v = torch.cat([cache["v"][:b, :, :lo], v], dim=2)
        o = attention(q, k, v, backend=self.attn_backend)
        return self.proj(o.transpose(1, 2).reshape(b, n, c))


class _Block(nn.Module):
    def __init__(self, dim: int, heads: int, mlp_ratio: float, side: int, order: torch.Tensor):
        super().__init__()
        self.norm1, self.norm2 = ScaleRMSNorm(dim), ScaleRMSNorm(dim)
        self.attn = _Attention(dim, heads, side, order)
        self.mlp = GeluGLU(dim, int(dim * mlp_ratio * 2 / 3.0))
        self.ada_lin = nn.Sequential(nn.SiLU(), nn.Linear(dim, 6 * dim))

    def modulation(self, cond: torch.Tensor) -> torch.Tensor:
        """``[..., D]`` conditions -> ``[..., 6, D]`` (gamma1, gamma2, scale1, scale2, shift1, shift2)."""
        d = self.mlp.fc2.out_features
        return self.ada_lin(cond).unflatten(-1, (6, d))

    def forward(self, x: torch.Tensor, mod: torch.Tensor, start: int, cache: dict, commit: bool) -> torch.Tensor:
        g1, g2, s1, s2, b1, b2 = mod[:, None].unbind(2)  # mod: [R, 6, D] -> six [R, 1, D]
        x = x + self.attn(self.norm1(x).mul(s1.add(1)).add_(b1), start, cache, commit).mul_(g1)
        return x + self.mlp(self.norm2(x).mul(s2.add(1)).add_(b2)).mul_(g2)


class XAR(ZooModel, nn.Module):
    """xAR generator; ``generate(class_labels)`` -> images decoded by ``config.vae``."""

    def __init__(self, cfg: XARConfig):
        super().__init__()
        self.cfg = c = cfg
        d, dd, n = c.encoder_embed_dim, c.decoder_embed_dim, c.seq_len
        token_dim = c.vae_embed_dim * c.patch_size**2
        order = cell_order(c.side, c.cells_per_side)
        self.class_emb = nn.Embedding(c.class_num + 1, d)
        self.time_embed = TimestepEmbedder(d)
        self.z_proj = nn.Linear(token_dim, d)
        self.z_proj_ln = ScaleRMSNorm(d, weight=True)
        self.encoder_pos_embed_learned = nn.Parameter(torch.zeros(1, n, d))
        self.encoder_blocks = nn.ModuleList(_Block(d, c.encoder_num_heads, c.mlp_ratio, c.side, order) for _ in range(c.encoder_depth))
        self.encoder_norm = ScaleRMSNorm(d, weight=True)
        self.decoder_embed = nn.Linear(d, dd)
        self.decoder_pos_embed_learned = nn.Parameter(torch.zeros(1, n, dd))
        self.decoder_blocks = nn.ModuleList(_Block(dd, c.decoder_num_heads, c.mlp_ratio, c.side, order) for _ in range(c.decoder_depth))
        self.decoder_norm = ScaleRMSNorm(dd, weight=True)
        self.pred = nn.Linear(dd, token_dim)
        for p in (self.class_emb.weight, self.encoder_pos_embed_learned, self.decoder_pos_embed_learned):
            nn.init.normal_(p, std=0.02)
        self._vae: Any = None

    @property
    def image_size(self) -> int:
        return int(self.cfg.img_size)

    def _caches(self, rows: int, device, dtype) -> list[dict]:
        n = self.cfg.seq_len - self.cfg.cell_tokens  # the last cell is never stored
        return [{"k": torch.empty(rows, b.attn.heads, n, b.attn.head_dim, device=device, dtype=dtype),
                 "v": torch.empty(rows, b.attn.heads, n, b.attn.head_dim, device=device, dtype=dtype), "len": 0}
                for b in (*self.encoder_blocks, *self.decoder_blocks)]

    def _run(self, x: torch.Tensor, enc_mod, dec_mod, start: int, caches: list[dict], commit: bool) -> torch.Tensor:
        """Tokens ``[R, n, C]`` at cell-major positions ``start..start+n`` -> velocities ``[R, n, C]``."""
        n = x.shape[1]
        h = self.z_proj_ln(self.z_proj(x) + self.encoder_pos_embed_learned[:, start:start + n])
        ne = len(self.encoder_blocks)
        for blk, m, kv in zip(self.encoder_blocks, enc_mod, caches[:ne]):
            h = blk(h, m, start, kv, commit)
        h = self.decoder_embed(self.encoder_norm(h)) + self.decoder_pos_embed_learned[:, start:start + n]
        for blk, m, kv in zip(self.decoder_blocks, dec_mod, caches[ne:]):
            h = blk(h, m, start, kv, commit)
        if commit:
            for kv in caches:
                kv["len"] += n
        return self.pred(self.decoder_norm(h))

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
        generator: Optional[torch.Generator] = None,
        seed: Optional[int] = None,
        noise: Any = None,
        return_latents: bool = False,
        vae: Any = None,
        progress: Any = None,
    ):
        """Class labels -> images ``[B, 3, H, W]`` in [-1, 1] (decoded by ``config.vae``), or with
        ``return_latents=True`` the :class:`~zoo.interfaces.Latents` ``[B, 256, 16]`` (raster order)
        in xAR's (MAR's normalised) space.

        Args:
            steps: SDE steps per cell (``--num_steps``; >= 3).
            guidance_scale: CFG weight at the last cell (``--cfg``; ramped from 1 over the cells;
                1.0 turns CFG off and runs ``B`` rows only).
            generator / seed: the only source of randomness.
            noise: a :class:`~zoo.sampling.noise.NoiseSource` (parity fixtures replay recorded noise).
        """
        from zoo.errors import InputError
        from zoo.interfaces import Latents
        from zoo.sampling.conditioning import as_class_labels, make_generator
        from zoo.sampling.noise import as_noise_source
        from zoo.sampling.blocks import cell_blocks, generate_blocks
        from zoo.sampling.guidance import Guidance
        from zoo.sampling.sde import sample_sde

        c = self.cfg
        device = self.z_proj.weight.device
        dtype = self.z_proj.weight.dtype
        labels = as_class_labels(class_labels, c.class_num, device)
        n_steps = c.num_steps if steps is None else int(steps)
        if n_steps < 3:
            raise InputError(f"steps must be >= 3 (the reference's SDE grid), got {steps}")
        w_last = c.cfg if guidance_scale is None else float(guidance_scale)
        if not math.isfinite(w_last):
            raise InputError(f"guidance_scale must be a finite number, got {guidance_scale!r}")
        source = as_noise_source(noise if noise is not None else make_generator(generator, seed, device), device)
        step_noise = source.with_draw_dtype(torch.float64)  # the reference's randn_like of its float64 state
        b, n_cell = len(labels), c.cell_tokens
        guided = w_last != 1.0
        rows = 2 * b if guided else b
        cls = torch.cat([labels, torch.full_like(labels, c.class_num)]) if guided else labels
        class_emb = self.class_emb(cls)  # [R, D]
        t_grid = xar_time_grid(n_steps)
        times = sorted(set(t_grid[:-1]) | {0.0})
        t_index = {t: i for i, t in enumerate(times)}
        # adaLN modulations for every (row, time) pair, once: [R, T, 6, D] per block
        t_emb = self.time_embed((torch.tensor(times, dtype=torch.float64).to(dtype) * 1000).long())  # [T, D]
        cond = class_emb[:, None, :] + t_emb[None]
        enc_mods = [blk.modulation(cond) for blk in self.encoder_blocks]
        dec_mods = [blk.modulation(cond) for blk in self.decoder_blocks]

        def mods_at(t: float, r: int):
            i = t_index[t]
            return [m[:r, i] for m in enc_mods], [m[:r, i] for m in dec_mods]

        caches = self._caches(rows, device, dtype)
        s_grid = [1.0 - t for t in t_grid[:-1]]  # reversed time s = 1 - t, increasing
        t_of = dict(zip(s_grid, t_grid[:-1]))
        rows_b = torch.arange(b, device=device)[:, None]
        finished: list[torch.Tensor] = []  # raster positions of the cells done so far

        def predict(block, tokens, known, w):
            """Cell ``block.index`` (cell-major positions ``start..start+64``) by the SDE, after the
            previous, finished cell went into the cache once, clean (t = 0)."""
            start = block.index * n_cell
            if finished:
                prev = tokens[rows_b, finished[-1]].to(dtype)
                prev = prev.repeat(2, 1, 1) if guided else prev
                em, dm = mods_at(0.0, rows)
                self._run(prev, em, dm, start - n_cell, caches, commit=True)
            finished.append(block.positions)

            def drift(x, s, _guided):
                t = t_of.get(s, 1.0 - s)
                xx = torch.cat([x, x]) if guided else x
                em, dm = mods_at(t, rows)
                v = self._run(xx.to(dtype), em, dm, start, caches, commit=False).float()
                if guided:
                    vc, vu = v[:b], v[b:]
                    v = vu + w * (vc - vu) if w > 1.0 else vc
                # the reference's drift in t (score of the linear path, diffusion 2t), negated for s = 1 - t
                score = ((t - 1) * v - x) / t
                return -(v - t * score)

            x0 = source.randn((b, n_cell, c.vae_embed_dim), device=device)
            return sample_sde(drift, lambda x, s: t_of.get(s, 1.0 - s), x0, times=s_grid, generator=step_noise,
                              last_step="mean", last_step_size=t_grid[-2])

        # cells in raster order of cells (cell-major), each cell's positions row-major; CFG weight
        # w_k = 1 + (cfg - 1) k / (K - 1): a linear schedule read at the block's end
        blocks = cell_blocks(c.side, c.side, c.side // c.cells_per_side, b, device)
        raster = generate_blocks(predict, torch.zeros(b, c.seq_len, c.vae_embed_dim, device=device), blocks,
                                 guidance=Guidance(w_last, "linear") if guided else None, ramp="block_end",
                                 progress=progress)
        side = c.side
        lat = Latents(values=raster, tokenizer=c.vae,
                      meta={"grid": (side, side), "normalized": True, "labels": labels.tolist()})
        if return_latents:
            return lat
        return self.decode(lat, vae)

    def decode(self, latents: Any, vae: Any = None) -> torch.Tensor:
        """xAR-space latents (``[B, 16, h, w]`` or the :class:`Latents` of ``generate``) -> images
        through ``config.vae``: ``vae.decode(vae.denormalize_latents(z))`` (``z / 0.2325``)."""
        v = self.vae(vae)
        return v.decode(v.denormalize_latents(latents))
