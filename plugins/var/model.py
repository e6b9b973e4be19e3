"""VAR (Visual AutoRegressive modeling, Tian et al. 2024): a class-conditional transformer that
predicts a multi-scale token pyramid coarse to fine ("next-scale prediction").

Parameter and buffer names follow the official ``var_d{16,20,24,30,36}.pth`` files (``word_embed``,
``class_emb``, ``pos_start``, ``pos_1LC``, ``lvl_embed``, ``blocks.i.attn.mat_qkv``,
``blocks.i.ada_lin.1`` or ``blocks.i.ada_gss`` with ``shared_ada_lin.1``, ``head_nm.ada_lin.1``,
``head``). The constant buffers of the release (``lvl_1L``, ``attn_bias_for_masking``,
``blocks.i.attn.zero_k_bias``) are rebuilt here, not stored (the builder drops them by name).

Generation (:meth:`VAR.generate`) runs the reference's ``autoregressive_infer_cfg`` on the
shared block loop (:func:`zoo.sampling.blocks.generate_blocks` over
:func:`~zoo.sampling.blocks.scale_blocks`, one block per scale):

* the conditional and unconditional rows as one batch of ``2B`` (class ``num_classes`` is the
  null class), CFG on the logits with the reference's ramp ``w(k) = 1 + cfg * k / (K - 1)``, computed
  in the reference's arithmetic ``(1 + t) cond - t uncond`` so the ids match bit for bit;
* a static KV cache per block, filled one scale at a time (a scale attends to every token of the
  scales before it and of itself: no mask);
* what is constant across scales computed once: the adaLN modulations of every block and of the
  head (they depend on the class only), the level + position embeddings, the attention scale;
* top-k / top-p filtering and one ``torch.multinomial`` over ``[B * h * w, V]`` per scale from the
  caller's generator: the reference seeds its own ``torch.Generator`` with ``g_seed``, so
  ``seed=s`` here draws what ``g_seed=s`` draws there;
* the next scale's input from the multi-scale VQ of the paired tokenizer
  (:meth:`zoo.nn.multiscale_vq.MultiScaleResidualVQ.next_input`).

Example:
    >>> from zoo_plugins.var.config import VARConfig
    >>> m = VAR(VARConfig(depth=2, embed_dim=32, num_heads=2, num_classes=10, patch_nums=[1, 2], vae_channels=4,
    ...                   vocab_size=16)).eval()
    >>> m(torch.tensor([3]), torch.zeros(1, 4, 4)).shape   # teacher-forced logits [B, L, V]
    torch.Size([1, 5, 16])
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Optional, Union

import torch
import torch.nn.functional as F
from torch import nn

from zoo.model import ZooModel
from zoo.nn.multiscale_vq import as_scales, scale_lengths

from .config import VARConfig

__all__ = ["VAR"]


class _FFN(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x), approximate="tanh"))


class _SelfAttention(nn.Module):
    """VAR's attention: fused qkv without a k bias; l2-normalised q/k times a learned per-head
    scale (``scale_mul_1H11``, clamped at log 100) or ``0.25 / sqrt(head_dim)``."""

    def __init__(self, dim: int, heads: int, l2_norm: bool):
        super().__init__()
        self.heads, self.head_dim, self.l2_norm = heads, dim // heads, l2_norm
        if l2_norm:
            self.scale_mul_1H11 = nn.Parameter(torch.full((1, heads, 1, 1), 4.0).log())
        self.mat_qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.q_bias = nn.Parameter(torch.zeros(dim))
        self.v_bias = nn.Parameter(torch.zeros(dim))
        self.proj = nn.Linear(dim, dim)
        self.attn_backend: str | None = None

    def qkv(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        b, n, c = x.shape
        bias = torch.cat((self.q_bias, torch.zeros_like(self.q_bias), self.v_bias))
        qkv = F.linear(x, self.mat_qkv.weight, bias).view(b, n, 3, self.heads, self.head_dim)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # [B, H, N, d]
        if self.l2_norm:
            scale = self.scale_mul_1H11.clamp_max(math.log(100)).exp()
            q, k = F.normalize(q, dim=-1).mul(scale), F.normalize(k, dim=-1)
        return q, k, v

    @property
    def scale(self) -> float:
        return 1.0 if self.l2_norm else 0.25 / math.sqrt(self.head_dim)

    def forward(self, x: torch.Tensor, mask: Optional[torch.Tensor] = None, cache: Optional[dict] = None) -> torch.Tensor:
        from zoo.nn.attention import attention

        b, n, c = x.shape
        q, k, v = self.qkv(x)
        if cache is not None:  # static cache: write this scale, attend to everything so far
            lo, hi = cache["len"], cache["len"] + n
            cache["k"][:, :, lo:hi] = k
            cache["v"][:, :, lo:hi] = v
            k, v = cache["k"][:, :, :hi], cache["v"][:, :, :hi]
        o = attention(q, k, v, mask=mask, scale=self.scale, backend=self.attn_backend)
        return self.proj(o.transpose(1, 2).reshape(b, n, c))


class _Block(nn.Module):
    def __init__(self, cfg: VARConfig):
        super().__init__()
        d = cfg.embed_dim
        self.attn = _SelfAttention(d, cfg.num_heads, cfg.attn_l2_norm)
        self.ffn = _FFN(d, round(d * cfg.mlp_ratio))
        self.eps, self.shared = cfg.norm_eps, cfg.shared_aln
        if cfg.shared_aln:
            self.ada_gss = nn.Parameter(torch.randn(1, 1, 6, d) / d**0.5)
        else:
            self.ada_lin = nn.Sequential(nn.SiLU(), nn.Linear(d, 6 * d))

    def modulation(self, cond: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """``(gamma1, gamma2, scale1, scale2, shift1, shift2)``, each ``[B, 1, C]``, from the
        condition (``[B, 1, 6, C]`` from ``shared_ada_lin`` for the shared-adaLN models)."""
        d = self.ffn.fc2.out_features
        if self.shared:
            return (self.ada_gss + cond).unbind(2)
        return self.ada_lin(cond).view(-1, 1, 6, d).unbind(2)

    def forward(self, x: torch.Tensor, mod: tuple[torch.Tensor, ...], mask=None, cache=None) -> torch.Tensor:
        g1, g2, s1, s2, b1, b2 = mod
        c = x.shape[-1]
        h = F.layer_norm(x, (c,), eps=self.eps).mul(s1.add(1)).add_(b1)
        x = x + self.attn(h, mask, cache).mul_(g1)
        h = F.layer_norm(x, (c,), eps=self.eps).mul(s2.add(1)).add_(b2)
        return x + self.ffn(h).mul(g2)


class _HeadNorm(nn.Module):
    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.eps = eps
        self.ada_lin = nn.Sequential(nn.SiLU(), nn.Linear(dim, 2 * dim))

    def modulation(self, cond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        d = self.ada_lin[1].in_features
        scale, shift = self.ada_lin(cond).view(-1, 1, 2, d).unbind(2)
        return scale, shift

    def forward(self, x: torch.Tensor, mod: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        scale, shift = mod
        return F.layer_norm(x, (x.shape[-1],), eps=self.eps).mul(scale.add(1)).add_(shift)


class VAR(ZooModel, nn.Module):
    """The VAR transformer; ``generate(class_labels)`` samples a token pyramid and decodes it
    through the paired VQVAE card (``config.tokenizer``)."""

    def __init__(self, cfg: VARConfig):
        super().__init__()
        self.cfg = cfg
        d, sc = cfg.embed_dim, as_scales(cfg.patch_nums)
        self.scales = sc
        self.lengths = scale_lengths(sc)
        self.L, self.first_l = sum(self.lengths), self.lengths[0]
        init_std = math.sqrt(1 / d / 3)
        self.word_embed = nn.Linear(cfg.vae_channels, d)
        self.class_emb = nn.Embedding(cfg.num_classes + 1, d)
        self.pos_start = nn.Parameter(torch.empty(1, self.first_l, d))
        self.pos_1LC = nn.Parameter(torch.empty(1, self.L, d))
        self.lvl_embed = nn.Embedding(len(sc), d)
        for p in (self.class_emb.weight, self.pos_start, self.pos_1LC, self.lvl_embed.weight):
            nn.init.trunc_normal_(p, std=init_std)
        self.shared_ada_lin = nn.Sequential(nn.SiLU(), nn.Linear(d, 6 * d)) if cfg.shared_aln else None
        self.blocks = nn.ModuleList(_Block(cfg) for _ in range(cfg.depth))
        self.head_nm = _HeadNorm(d, cfg.norm_eps)
        self.head = nn.Linear(d, cfg.vocab_size)
        self._tokenizer: Any = None  # the paired VQVAE, loaded on first use (not a submodule)

    # ------------------------------------------------------------------ pieces
    @property
    def num_classes(self) -> int:
        return int(self.cfg.num_classes)

    @property
    def image_size(self) -> int:
        return int(self.cfg.image_size)

    def level_ids(self) -> torch.Tensor:
        """Scale index of every position ``[L]`` (the release's ``lvl_1L``)."""
        return torch.cat([torch.full((n,), k, dtype=torch.long) for k, n in enumerate(self.lengths)]).to(self.pos_1LC.device)

    def block_mask(self):
        """Teacher-forcing mask (a :class:`zoo.nn.masks.DenseMask`, ``[L, L]``, True = attend): a
        position sees its own scale and the ones before."""
        from zoo.nn.masks import DenseMask

        lvl = self.level_ids()
        return DenseMask(lvl[:, None] >= lvl[None, :])

    def modulations(self, cond: torch.Tensor) -> tuple[list[tuple[torch.Tensor, ...]], tuple[torch.Tensor, torch.Tensor]]:
        """adaLN modulations of every block and of the head for class embeddings ``cond`` ``[B, C]``."""
        c = self.shared_ada_lin(cond).view(-1, 1, 6, self.cfg.embed_dim) if self.shared_ada_lin is not None else cond
        return [b.modulation(c) for b in self.blocks], self.head_nm.modulation(cond)

    def _run(self, x: torch.Tensor, mods, head_mod, mask=None, caches=None) -> torch.Tensor:
        for i, blk in enumerate(self.blocks):
            x = blk(x, mods[i], mask, None if caches is None else caches[i])
        h = self.head_nm(x.float(), tuple(m.float() for m in head_mod))  # the reference's float32 head norm
        return self.head(h.to(self.head.weight.dtype)).float()

    def forward(self, labels: torch.Tensor, x_wo_first: torch.Tensor) -> torch.Tensor:
        """Teacher-forced logits ``[B, L, V]`` for class ``labels`` ``[B]`` (``num_classes`` = null) and
        the next-scale inputs ``[B, L - L_0, vae_channels]`` (``MultiScaleResidualVQ.teacher_inputs``)."""
        b = labels.shape[0]
        cond = self.class_emb(labels)
        sos = cond[:, None].expand(b, self.first_l, -1) + self.pos_start.expand(b, -1, -1)
        x = torch.cat((sos, self.word_embed(x_wo_first.to(self.word_embed.weight.dtype))), dim=1)
        x = x + self.lvl_embed(self.level_ids())[None] + self.pos_1LC
        mods, head_mod = self.modulations(cond)
        return self._run(x, mods, head_mod, mask=self.block_mask())

    # ------------------------------------------------------------------ generation
    def tokenizer(self, tokenizer: Any = None) -> Any:
        """The paired VQVAE: ``tokenizer`` if given, else the card's (``zoo.load(config.tokenizer)``,
        random weights when this model was built without weights), loaded once."""
        if tokenizer is not None:
            return tokenizer
        if self._tokenizer is None:
            import zoo

            pretrained = bool(getattr(self, "_pretrained", True))
            self._tokenizer = zoo.load(self.cfg.tokenizer, device=self.head.weight.device, pretrained=pretrained)
        return self._tokenizer

    @torch.no_grad()
    def generate(
        self,
        class_labels: Union[int, Sequence[int], torch.Tensor, None] = None,
        *,
        steps: Optional[int] = None,
        guidance_scale: Optional[float] = None,
        top_k: Optional[int] = None,
        top_p: Optional[float] = None,
        more_smooth: Optional[bool] = None,
        generator: Optional[torch.Generator] = None,
        seed: Optional[int] = None,
        return_latents: bool = False,
        decode: bool = True,
        tokenizer: Any = None,
        progress: Any = None,
        condition: Union[int, Sequence[int], torch.Tensor, None] = None,
    ):
        """Class labels -> :class:`~zoo.sampling.Generation`: ``tokens`` (every scale's ids,
        concatenated, for the paired VQVAE), ``media`` images ``[B, 3, H, W]`` in [-1, 1].

        ``steps`` is the number of scales and must equal the model's (it is fixed by the
        architecture); ``guidance_scale`` is zoo's ``w`` at the last scale (the reference's
        ``cfg + 1``; ``1`` = no guidance); ``top_k``/``top_p`` as the reference (0 = off);
        ``more_smooth`` the reference's Gumbel-softmax smoothing (visualisation only).
        ``return_latents=True`` returns ``f_hat`` ``[B, C, h, w]`` (the summed multi-scale codes
        before ``post_quant_conv``) in ``meta["latents"]`` and skips decoding.
        """
        from zoo.errors import InputError
        from zoo.interfaces import Tokens
        from zoo.sampling import Generation, SamplerSettings
        from zoo.sampling.blocks import generate_blocks, scale_blocks
        from zoo.sampling.conditioning import as_class_labels, make_generator

        c = self.cfg
        if condition is not None:
            if class_labels is not None:
                raise InputError("give class_labels= (or the first argument), not both it and condition=")
            class_labels = condition
        if class_labels is None:
            raise InputError("VAR is class-conditional: give class_labels=[...] (ImageNet ids 0..999)")
        if steps is not None and int(steps) != len(self.scales):
            raise InputError(f"VAR samples one step per scale: {self.name or 'this model'} has {len(self.scales)} scales "
                             f"{[list(s) for s in self.scales]}, got steps={steps}")
        device = self.head.weight.device
        labels = as_class_labels(class_labels, self.num_classes, device)
        g = make_generator(generator, seed, device)
        w_last = c.guidance_scale if guidance_scale is None else float(guidance_scale)
        if not math.isfinite(w_last):
            raise InputError(f"guidance_scale must be a finite number, got {guidance_scale!r}")
        cfg_ref = w_last - 1.0  # the reference's cfg: w(k) = 1 + cfg * k / (K - 1)
        k_top = c.top_k if top_k is None else int(top_k)
        p_top = c.top_p if top_p is None else float(top_p)
        sampler = SamplerSettings(top_k=k_top, top_p=p_top if p_top > 0 else 1.0)
        smooth = c.more_smooth if more_smooth is None else bool(more_smooth)
        vae = self.tokenizer(tokenizer)
        quant = vae.quantize
        guided = cfg_ref != 0.0
        b, n = len(labels), len(self.scales)
        rows = 2 * b if guided else b
        cls = torch.cat((labels, torch.full_like(labels, self.num_classes))) if guided else labels
        cond = self.class_emb(cls)
        mods, head_mod = self.modulations(cond)  # constant over the scales: computed once
        lvl_pos = self.lvl_embed(self.level_ids())[None] + self.pos_1LC
        hd = c.embed_dim // c.num_heads
        dtype = self.pos_1LC.dtype
        caches = [{"k": torch.empty(rows, c.num_heads, self.L, hd, device=device, dtype=dtype),
                   "v": torch.empty(rows, c.num_heads, self.L, hd, device=device, dtype=dtype), "len": 0}
                  for _ in self.blocks]
        # what the next scale reads: its transformer input and the running sum of the codes
        state = {"x": cond[:, None].expand(rows, self.first_l, -1) + self.pos_start.expand(rows, -1, -1) + lvl_pos[:, :self.first_l],
                 "f_hat": cond.new_zeros(b, quant.dim, *self.scales[-1], dtype=torch.float32)}

        def predict(block, ids_so_far, known, _w):
            """Scale ``block.index``: one transformer pass over its input (keys/values appended to
            the cache), CFG in the reference's arithmetic, top-k/top-p sampling, then the next
            scale's input from the accumulated codes."""
            k = block.index
            ph, pw = self.scales[k]
            x = state["x"]
            logits = self._run(x, mods, head_mod, caches=caches)
            for cache in caches:
                cache["len"] += x.shape[1]
            if guided:
                t = cfg_ref * (k / (n - 1) if n > 1 else 1.0)
                logits = (1 + t) * logits[:b] - t * logits[b:]  # the reference's arithmetic: w = 1 + t
            logits = sampler.apply(logits)
            probs = logits.softmax(dim=-1)
            # drawn where the generator lives: a CPU generator reproduces the CPU stream on any device
            ids = torch.multinomial(probs.view(-1, probs.shape[-1]).to(g.device), 1, replacement=True, generator=g)
            ids = ids.to(device).view(b, ph * pw)
            if smooth:  # the reference's Gumbel-softmax codes (on the filtered logits)
                ratio = k / (n - 1) if n > 1 else 0.0
                tau = max(0.27 * (1 - ratio * 0.95), 0.005)
                gumbels = -torch.empty_like(logits, device=g.device).exponential_(generator=g).log().to(device)
                soft = ((logits.mul(1 + ratio) + gumbels) / tau).softmax(-1)
                h = soft.to(quant.embedding.weight.dtype) @ quant.embedding.weight.unsqueeze(0)
            else:
                h = quant.embedding(ids)
            h = h.transpose(1, 2).reshape(b, quant.dim, ph, pw)
            state["f_hat"], nxt = quant.next_input(k, state["f_hat"], h, self.scales)
            if nxt is not None:
                end = int(block.positions[0, -1]) + 1
                nxt = self.word_embed(nxt.view(b, quant.dim, -1).transpose(1, 2).to(dtype)) + lvl_pos[:, end:end + self.lengths[k + 1]]
                state["x"] = nxt.repeat(2, 1, 1) if guided else nxt
            return ids[:, :, None]

        # the scales laid end to end; the CFG ramp stays in predict, in the reference's arithmetic
        # (w = 1 + t with t = cfg * k / (K - 1)), so the sampled ids match it bit for bit
        blocks = scale_blocks(self.scales, b, device)
        ids_all = generate_blocks(predict, torch.zeros(b, sum(ph * pw for ph, pw in self.scales), 1, dtype=torch.long,
                                                       device=device), blocks, progress=progress)[..., 0]
        f_hat = state["f_hat"]
        tokens = Tokens(ids=ids_all, codebook_size=c.vocab_size, tokenizer=getattr(vae, "name", "") or c.tokenizer,
                        meta={"scales": [list(s) for s in self.scales]})
        meta = {"labels": labels.tolist(), "guidance_scale": w_last, "top_k": k_top, "top_p": p_top, "more_smooth": smooth}
        media = None
        if return_latents:
            meta["latents"] = f_hat
        elif decode:
            media = vae.fhat_to_img(f_hat)
        return Generation(tokens=tokens, media=media, meta=meta)

    @torch.no_grad()
    def decode(self, tokens: Any, tokenizer: Any = None) -> torch.Tensor:
        """Ids (every scale) -> images in [-1, 1] with the paired VQVAE."""
        return self.tokenizer(tokenizer).decode(tokens, scales=self.scales)
