"""MAR (Li et al. 2024): a bidirectional MAE-style encoder/decoder over the known KL-16 latents
plus a class "buffer", and a per-token MLP diffusion head (``diffloss.net``) that samples each
masked latent with DDPM/IDDPM ancestral steps.

Key names follow the official ``checkpoint-last.pth`` (``model_ema``): ``encoder_blocks.i`` /
``decoder_blocks.i`` are timm ``Block``s (``norm1``, ``attn.qkv``, ``attn.proj``, ``norm2``,
``mlp.fc1``, ``mlp.fc2``), the head lives under ``diffloss.net``.

Sampling (:meth:`MAR.generate`) runs on zoo's shared drivers: the block loop
(:func:`~zoo.sampling.blocks.generate_blocks` over :func:`~zoo.sampling.blocks.masked_set_blocks`,
MAR's cosine schedule, the CFG weight ramped by generated fraction) and the DDPM sampler
(:func:`~zoo.sampling.ddpm.ddpm_sample`: learned variance, respacing, temperature, CFG on the
noise prediction). CFG runs as ONE batch of 2B rows (as the reference); what is constant across
steps is computed once per call: the class buffer of the encoder, the head's time embeddings
for every kept diffusion step, and the head's condition projection once per AR step (the
reference recomputes both at each diffusion step). A stacked GEMM for the head's adaLN
projections was measured and brought nothing (the head's small GEMMs are bound by their FLOPs).

Randomness: orders from ``torch.randperm`` on the caller's generator (or given, or
``orders="numpy"``: ``numpy.random.RandomState(seed)`` shuffles, the reference's
``np.random.shuffle`` after ``np.random.seed(seed)``); noise from the same generator, drawn in
the reference's shapes and order, so ``seed=s, orders="numpy"`` reproduces the reference run
after ``torch.manual_seed(s); np.random.seed(s)`` (CPU, float32; see the family page).

Example:
    >>> from zoo_plugins.mar.config import MARConfig
    >>> m = MAR(MARConfig(img_size=64, encoder_embed_dim=16, encoder_depth=1, encoder_num_heads=2, decoder_embed_dim=16,
    ...                   decoder_depth=1, decoder_num_heads=2, buffer_size=2, diffloss_d=1, diffloss_w=16, class_num=10))
    >>> m.generate([3], steps=2, diffusion_steps="4", seed=0, return_latents=True).values.shape
    torch.Size([1, 16, 16])
"""

from __future__ import annotations

from typing import Any, Optional, Sequence, Union

import numpy as np
import torch
from torch import nn

from zoo.errors import InputError
from zoo.model import ZooModel
from zoo.nn.blocks import Mlp, SelfAttention
from zoo.nn.timestep import TimestepEmbedder

from .config import MARConfig

__all__ = ["MAR", "DiffusionHead", "numpy_orders"]


def _modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return x * (1 + scale) + shift


class _Block(nn.Module):
    """timm ``Block`` at inference: pre-LN attention and MLP, no layer scale."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = SelfAttention(dim, heads, qkv_bias=True)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class _ResBlock(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.in_ln = nn.LayerNorm(channels, eps=1e-6)
        self.mlp = nn.Sequential(nn.Linear(channels, channels), nn.SiLU(), nn.Linear(channels, channels))
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(channels, 3 * channels))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        shift, scale, gate = self.adaLN_modulation(y).chunk(3, dim=-1)
        return x + gate * self.mlp(_modulate(self.in_ln(x), shift, scale))


class _FinalLayer(nn.Module):
    def __init__(self, channels: int, out_channels: int):
        super().__init__()
        self.norm_final = nn.LayerNorm(channels, elementwise_affine=False, eps=1e-6)
        self.linear = nn.Linear(channels, out_channels)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(channels, 2 * channels))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        shift, scale = self.adaLN_modulation(y).chunk(2, dim=-1)
        return self.linear(_modulate(self.norm_final(x), shift, scale))


class DiffusionHead(nn.Module):
    """MAR's ``SimpleMLPAdaLN``: ``x`` ``[N, C]``, time embedding + condition projection as the
    adaLN input, ``depth`` residual MLP blocks; outputs ``[N, 2C]`` (``eps | v``)."""

    def __init__(self, in_channels: int, width: int, z_channels: int, depth: int):
        super().__init__()
        self.in_channels = in_channels
        self.time_embed = TimestepEmbedder(width)
        self.cond_embed = nn.Linear(z_channels, width)
        self.input_proj = nn.Linear(in_channels, width)
        self.res_blocks = nn.ModuleList(_ResBlock(width) for _ in range(depth))
        self.final_layer = _FinalLayer(width, 2 * in_channels)

    def forward_embedded(self, x: torch.Tensor, t_emb: torch.Tensor, c_emb: torch.Tensor) -> torch.Tensor:
        """The net on precomputed ``time_embed(t)`` and ``cond_embed(z)``."""
        y = t_emb + c_emb
        x = self.input_proj(x)
        for blk in self.res_blocks:
            x = blk(x, y)
        return self.final_layer(x, y)

    def forward(self, x: torch.Tensor, t: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return self.forward_embedded(x, self.time_embed(t), self.cond_embed(c))


class _DiffLoss(nn.Module):
    def __init__(self, cfg: MARConfig):
        super().__init__()
        self.net = DiffusionHead(cfg.token_embed_dim, cfg.diffloss_w, cfg.decoder_embed_dim, cfg.diffloss_d)


def numpy_orders(batch: int, seq_len: int, seed: int) -> torch.Tensor:
    """The reference's orders after ``np.random.seed(seed)``: one ``np.random.shuffle`` of
    ``0..L-1`` per row, from a LOCAL ``RandomState(seed)`` (the global numpy RNG is untouched).

    Example:
        >>> numpy_orders(1, 4, 0).tolist()
        [[2, 3, 1, 0]]
    """
    rs = np.random.RandomState(int(seed))
    rows = []
    for _ in range(batch):
        order = np.array(list(range(seq_len)))
        rs.shuffle(order)
        rows.append(order)
    return torch.from_numpy(np.array(rows)).long()


class MAR(ZooModel, nn.Module):
    """MAR generator; ``generate(class_labels)`` -> images (or latents)."""

    def __init__(self, cfg: MARConfig):
        super().__init__()
        self.cfg = cfg
        d, dd, n = cfg.encoder_embed_dim, cfg.decoder_embed_dim, cfg.seq_len
        self.class_emb = nn.Embedding(cfg.class_num, d)
        self.fake_latent = nn.Parameter(torch.zeros(1, d))
        self.z_proj = nn.Linear(cfg.token_embed_dim, d)
        self.z_proj_ln = nn.LayerNorm(d, eps=1e-6)
        self.encoder_pos_embed_learned = nn.Parameter(torch.zeros(1, n + cfg.buffer_size, d))
        self.encoder_blocks = nn.ModuleList(_Block(d, cfg.encoder_num_heads, cfg.mlp_ratio) for _ in range(cfg.encoder_depth))
        self.encoder_norm = nn.LayerNorm(d, eps=1e-6)
        self.decoder_embed = nn.Linear(d, dd)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dd))
        self.decoder_pos_embed_learned = nn.Parameter(torch.zeros(1, n + cfg.buffer_size, dd))
        self.decoder_blocks = nn.ModuleList(_Block(dd, cfg.decoder_num_heads, cfg.mlp_ratio) for _ in range(cfg.decoder_depth))
        self.decoder_norm = nn.LayerNorm(dd, eps=1e-6)
        self.diffusion_pos_embed_learned = nn.Parameter(torch.zeros(1, n, dd))
        self.diffloss = _DiffLoss(cfg)
        self._init_weights()

    def _init_weights(self) -> None:
        for p in (self.class_emb.weight, self.fake_latent, self.mask_token, self.encoder_pos_embed_learned,
                  self.decoder_pos_embed_learned, self.diffusion_pos_embed_learned):
            nn.init.normal_(p, std=0.02)

    @property
    def image_size(self) -> int:
        return self.cfg.img_size

    def describe_facts(self) -> dict[str, Any]:
        return {"tokens": f"{self.cfg.seq_len} x {self.cfg.token_embed_dim} continuous", "image_size": self.cfg.img_size}

    # ------------------------------------------------------------------ transformer passes
    def _buffer(self, class_embedding: torch.Tensor) -> torch.Tensor:
        """LN(class embedding + buffer positions): constant during a generation."""
        nb = self.cfg.buffer_size
        x = class_embedding[:, None, :].expand(-1, nb, -1) + self.encoder_pos_embed_learned[:, :nb]
        return self.z_proj_ln(x)

    def _encode(self, buffer: torch.Tensor, tokens: torch.Tensor, known: torch.Tensor) -> torch.Tensor:
        """``[R, buffer + n_known, D]``: the buffer and the known tokens (ascending positions)."""
        r = tokens.shape[0]
        nb = self.cfg.buffer_size
        n_known = int(known[0].sum())
        if n_known:
            pos = known.nonzero(as_tuple=True)[1].view(r, n_known)
            kt = torch.gather(tokens, 1, pos[..., None].expand(-1, -1, tokens.shape[-1]))
            pe = self.encoder_pos_embed_learned[0, nb + pos]
            x = torch.cat([buffer, self.z_proj_ln(self.z_proj(kt) + pe)], dim=1)
        else:
            x = buffer
        for blk in self.encoder_blocks:
            x = blk(x)
        return self.encoder_norm(x)

    def _decode(self, x: torch.Tensor, known: torch.Tensor, predict: torch.Tensor) -> torch.Tensor:
        """Decoder over buffer + all positions; returns the rows of ``predict`` ``[R, n]`` positions."""
        r = x.shape[0]
        nb, n = self.cfg.buffer_size, self.cfg.seq_len
        x = self.decoder_embed(x)
        full = self.mask_token.to(x.dtype).expand(r, nb + n, -1).clone()
        full[:, :nb] = x[:, :nb]
        n_known = x.shape[1] - nb
        if n_known:
            pos = known.nonzero(as_tuple=True)[1].view(r, n_known)
            full.scatter_(1, (nb + pos)[..., None].expand(-1, -1, full.shape[-1]), x[:, nb:])
        x = full + self.decoder_pos_embed_learned
        for blk in self.decoder_blocks:
            x = blk(x)
        x = self.decoder_norm(x)
        idx = predict[..., None].expand(-1, -1, x.shape[-1])
        return torch.gather(x[:, nb:], 1, idx) + self.diffusion_pos_embed_learned[0, predict]

    # ------------------------------------------------------------------ generation
    @torch.no_grad()
    def generate(
        self,
        class_labels: Union[int, Sequence[int], torch.Tensor],
        *,
        steps: Optional[int] = None,
        guidance_scale: Optional[float] = None,
        cfg_schedule: Optional[str] = None,
        temperature: Optional[float] = None,
        diffusion_steps: Optional[Union[str, int]] = None,
        generator: Optional[torch.Generator] = None,
        seed: Optional[int] = None,
        orders: Union[torch.Tensor, str, None] = None,
        noise: Any = None,
        return_latents: bool = False,
        vae: Any = None,
        progress: Any = None,
    ):
        """Class labels -> images ``[B, 3, H, W]`` in [-1, 1] (decoded by ``config.vae``), or
        with ``return_latents=True`` the generated :class:`~zoo.interfaces.Latents`
        ``[B, L, 16]`` in MAR's space (``vae.decode(vae.denormalize_latents(lat))`` decodes).

        Args:
            steps: AR iterations (``--num_iter``; card default 256, the README's FID setting).
            guidance_scale: CFG weight (``--cfg``; 1.0 turns CFG off).
            cfg_schedule: ``"linear"`` (ramped by generated fraction, MAR's default) or ``"constant"``.
            temperature: diffusion-head noise temperature (``--temperature``).
            diffusion_steps: respacing of the 1000-step cosine diffusion (``"100"``).
            generator / seed: the only source of randomness (a fresh seed when both are None).
            orders: ``[B, L]`` generation orders, or ``"numpy"`` (needs ``seed``) for the
                reference's numpy orders; default ``torch.randperm`` rows from the generator.
            noise: a :class:`~zoo.sampling.noise.NoiseSource` to draw the Gaussian noise from
                instead of the generator (parity fixtures replay recorded noise).
        """
        from zoo.interfaces import Latents
        from zoo.sampling import Guidance
        from zoo.sampling.blocks import generate_blocks, masked_set_blocks, random_orders
        from zoo.sampling.conditioning import as_class_labels, make_generator
        from zoo.sampling.ddpm import DiffusionSchedule, ddpm_sample
        from zoo.sampling.noise import as_noise_source

        c = self.cfg
        device, dtype = self.fake_latent.device, self.fake_latent.dtype
        labels = as_class_labels(class_labels, c.class_num, device)
        b, n, ch = len(labels), c.seq_len, c.token_embed_dim
        steps = c.num_iter if steps is None else steps
        if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= n:
            raise InputError(f"steps (AR iterations) must be a whole number in 1..{n}, got {steps!r}")
        cfg = float(c.cfg if guidance_scale is None else guidance_scale)
        schedule = c.cfg_schedule if cfg_schedule is None else cfg_schedule
        if schedule not in ("linear", "constant"):
            raise InputError(f"cfg_schedule must be 'linear' or 'constant', got {schedule!r}")
        temp = float(c.temperature if temperature is None else temperature)
        sched = DiffusionSchedule.create(c.noise_schedule, diffusion_steps=c.diffusion_steps,
                                         respacing=str(c.num_sampling_steps if diffusion_steps is None else diffusion_steps))
        if isinstance(orders, str):
            if orders != "numpy":
                raise InputError(f"orders must be a [B, L] tensor, 'numpy' or None, got {orders!r}")
            if seed is None:
                raise InputError("orders='numpy' reproduces the reference's np.random.seed(seed) orders: give seed=")
        g = make_generator(generator, seed, device)
        if isinstance(orders, str):
            orders = numpy_orders(b, n, seed)
        elif orders is None:
            orders = random_orders(b, n, g)
        orders = torch.as_tensor(orders).to(device)
        if orders.shape != (b, n):
            raise InputError(f"orders must be [B, L] = [{b}, {n}], got {tuple(orders.shape)}")
        src = as_noise_source(noise if noise is not None else g, device)

        guided = cfg != 1.0
        cls = self.class_emb(labels)
        if guided:
            cls = torch.cat([cls, self.fake_latent.expand(b, -1)], dim=0)
        buffer = self._buffer(cls)
        head = self.diffloss.net
        t_emb = {t: e for t, e in zip(sched.timestep_map, head.time_embed(torch.tensor(sched.timestep_map, device=device)))}

        def predict(blk, tokens, known, w):
            rows = 2 if guided else 1
            tok, kn, pos = (tokens.repeat(rows, 1, 1).to(dtype), known.repeat(rows, 1), blk.positions.repeat(rows, 1))
            z = self._decode(self._encode(buffer, tok, kn), kn, pos)  # [R, m, Dd]
            m = blk.positions.shape[1]
            c_emb = head.cond_embed(z.reshape(rows * b * m, -1))
            x0 = src.randn((b * m, ch), device=device)

            def model_fn(x, t, g_):  # the sampler's state stays float32; the head runs in the model's dtype
                return head.forward_embedded(x.to(dtype), t_emb[t], c_emb)

            out = ddpm_sample(model_fn, x0, sched, generator=src, temperature=temp, guidance=w if guided else None)
            return out.view(b, m, ch)

        blocks = masked_set_blocks(orders, steps)
        guidance = Guidance(cfg, schedule) if guided else None
        tokens = generate_blocks(predict, torch.zeros(b, n, ch, device=device), blocks, guidance=guidance, ramp="fraction",
                                 progress=progress)
        # unpatchify: [B, L, c p p] -> [B, c, h p, w p]; latents in raster order of the VAE grid
        p, h = c.patch_size, c.seq_h
        grid = tokens.view(b, h, h, c.vae_embed_dim, p, p).permute(0, 3, 1, 4, 2, 5).reshape(b, c.vae_embed_dim, h * p, h * p)
        lat = Latents(values=grid.flatten(2).transpose(1, 2).contiguous(), tokenizer=c.vae,
                      meta={"grid": (h * p, h * p), "normalized": True, "labels": labels.tolist()})
        if return_latents:
            return lat
        return self.decode(grid, vae)

    def decode(self, latents: Any, vae: Any = None) -> torch.Tensor:
        """MAR-space latents (``[B, 16, h, w]`` or the :class:`Latents` of ``generate``) -> images,
        through ``config.vae`` (loaded on demand): ``vae.decode(vae.denormalize_latents(z))``."""
        if vae is None:
            import zoo

            vae = zoo.load(self.cfg.vae, device=self.fake_latent.device, pretrained=getattr(self, "vae_pretrained", True))
        return vae.decode(vae.denormalize_latents(latents))
