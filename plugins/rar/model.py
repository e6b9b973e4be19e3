"""RAR (Randomized AutoRegressive visual generation, Yu et al. 2024): a class-conditional
decoder-only transformer over MaskGIT-VQGAN tokens with adaLN conditioning per position.

Key names follow the official ``rar_{b,l,xl,xxl}.bin`` checkpoints (the blocks' attention and
MLP are :class:`zoo.nn.blocks.SelfAttention` / :class:`zoo.nn.blocks.Mlp`, whose parameter names
are the release's ``attn.qkv``, ``attn.q_norm``, ``mlp.fc1``...). Generation uses zoo's AR
driver: a static KV cache (prefill ``[cls, class]``, then one token per step), CFG as one
batch of 2B rows, MDT's power-cosine guidance schedule, and ``torch.multinomial`` draws from
the caller's generator (the reference's draws, so a seed reproduces its ids).

Position ``p`` of the sequence ``[cls, class, x_0, x_1, ...]`` gets ``pos_embed[p]``, the
target-aware embedding of the token it predicts (``target_aware_pos_embed[p + 1]``, none for
``cls``), and the adaLN condition ``class embedding + timesteps_embeddings[p]``.

Example:
    >>> from zoo_plugins.rar.config import RARConfig
    >>> m = RAR(RARConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
    ...                   image_seq_len=4, codebook_size=16, condition_num_classes=10))
    >>> m.generate([3], seed=0, decode=False).tokens.ids.shape
    torch.Size([1, 4])
"""

from __future__ import annotations

from typing import Any, Optional, Sequence, Union

import torch
from torch import nn

from zoo.model import ZooModel
from zoo.nn.blocks import Linear, Mlp, SelfAttention

from .config import RARConfig

__all__ = ["RAR"]


def _modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return x * (1 + scale) + shift


class _Block(nn.Module):
    def __init__(self, dim: int, heads: int, hidden: int):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = SelfAttention(dim, heads, qkv_bias=True, qk_norm=True, norm_eps=1e-6)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, hidden)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim, 6 * dim))

    def forward(self, x: torch.Tensor, c: torch.Tensor, layer: int, cache=None, mod: Optional[torch.Tensor] = None) -> torch.Tensor:
        sh1, sc1, g1, sh2, sc2, g2 = (self.adaLN_modulation(c) if mod is None else mod).chunk(6, dim=-1)
        x = x + g1 * self.attn(_modulate(self.norm1(x), sh1, sc1), causal=True, cache=cache, layer=layer)
        return x + g2 * self.mlp(_modulate(self.norm2(x), sh2, sc2))


class _FinalLayer(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.norm_final = nn.LayerNorm(dim, eps=1e-6, elementwise_affine=False)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim, 2 * dim))

    def forward(self, x: torch.Tensor, c: torch.Tensor, mod: Optional[torch.Tensor] = None) -> torch.Tensor:
        scale, shift = (self.adaLN_modulation(c) if mod is None else mod).chunk(2, dim=-1)
        return _modulate(self.norm_final(x), shift, scale)


class RAR(ZooModel, nn.Module):
    """RAR generator; ``generate(labels)`` samples ``image_seq_len`` MaskGIT-VQGAN ids."""

    _MOD_CHUNK = 32  # positions whose adaLN modulations are computed together while sampling

    def __init__(self, cfg: RARConfig):
        super().__init__()
        self.cfg = cfg
        d, n = cfg.hidden_size, cfg.image_seq_len
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d))
        self.blocks = nn.ModuleList(
            _Block(d, cfg.num_attention_heads, cfg.intermediate_size) for _ in range(cfg.num_hidden_layers)
        )
        self.embeddings = nn.Embedding(cfg.codebook_size + 1 + cfg.condition_num_classes + 1, d)
        self.pos_embed = nn.Parameter(torch.zeros(1, n + 1024, d))
        self.target_aware_pos_embed = nn.Parameter(torch.zeros(1, n + 1024, d))
        self.timesteps_embeddings = nn.Parameter(torch.zeros(1, n + 100, d))
        self.adaln_before_head = _FinalLayer(d)
        self.lm_head = Linear(d, cfg.codebook_size)
        for p in (self.pos_embed, self.target_aware_pos_embed, self.timesteps_embeddings):
            nn.init.trunc_normal_(p, std=0.02)
        self.none_condition_id = cfg.condition_num_classes + cfg.codebook_size + 1

    # ------------------------------------------------------------------ forward pieces

    def condition_ids(self, labels: torch.Tensor) -> torch.Tensor:
        return labels + self.cfg.codebook_size + 1

    def _inputs(self, tokens: torch.Tensor, cond_emb: torch.Tensor, start: int, with_cls: bool):
        """Embedded inputs and adaLN conditions for sequence positions ``start..`` ."""
        x = self.embeddings(tokens)
        if with_cls:
            x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
        n = x.shape[1]
        pos = torch.arange(start, start + n, device=x.device)
        # the target-aware embedding of the next token; none for cls nor past the last token
        has_target = (pos > 0) & (pos <= self.cfg.image_seq_len)
        ta = self.target_aware_pos_embed[0, pos + 1] * has_target[:, None].to(x.dtype)
        x = x + self.pos_embed[0, pos] + ta
        c = cond_emb[:, None, :] + self.timesteps_embeddings[0, pos]
        return x, c

    def _run(self, x: torch.Tensor, c: torch.Tensor, cache=None, mods=None) -> torch.Tensor:
        for i, blk in enumerate(self.blocks):
            x = blk(x, c, i, cache, None if mods is None else mods[i])
        return self.lm_head(self.adaln_before_head(x, c, None if mods is None else mods[-1]))

    def _modulations(self, c: torch.Tensor) -> list[torch.Tensor]:
        """adaLN modulations of every block (and the final layer) for conditions ``c``."""
        return [blk.adaLN_modulation(c) for blk in self.blocks] + [self.adaln_before_head.adaLN_modulation(c)]

    def forward(self, input_ids: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        """Teacher-forced logits ``[B, N + 1, K]`` (raster order) for image ids ``[B, N]`` and
        class labels ``[B]`` (use ``none_condition_id - codebook_size - 1`` for the null class).
        Position ``i`` predicts image token ``i``."""
        cond = self.condition_ids(condition)
        tokens = torch.cat([cond[:, None], input_ids], dim=1)
        x, c = self._inputs(tokens, self.embeddings(cond), 0, with_cls=True)
        return self._run(x, c)[:, 1:]

    # ------------------------------------------------------------------ generation

    def new_cache(self, batch: int, device=None, dtype=None):
        from zoo.sampling import StaticKVCache

        p = self.lm_head.weight
        c = self.cfg
        return StaticKVCache(c.num_hidden_layers, batch, c.num_attention_heads, c.image_seq_len + 1,
                             c.hidden_size // c.num_attention_heads, dtype=dtype or p.dtype, device=device or p.device)

    @torch.no_grad()
    def generate(
        self,
        condition: Union[int, Sequence[int], torch.Tensor],
        *,
        guidance_scale: Optional[float] = None,
        guidance_scale_pow: Optional[float] = None,
        randomize_temperature: Optional[float] = None,
        guidance: Any = None,
        top_k: int = 0,
        top_p: float = 1.0,
        generator: Optional[torch.Generator] = None,
        seed: Optional[int] = None,
        decode: bool = True,
        tokenizer: Any = None,
        progress: Any = None,
    ):
        """Class labels -> :class:`~zoo.sampling.Generation` (ids ``[B, 256]``; images decoded
        by the MaskGIT-VQGAN tokenizer unless ``decode=False``).

        Defaults are the card's (README_RAR.md's FID settings per size). ``guidance=``
        overrides the schedule with any zoo :class:`~zoo.sampling.Guidance`.
        """
        from zoo.interfaces import Tokens
        from zoo.sampling import Generation, Guidance, SamplerSettings, generate_ar
        from zoo.sampling.conditioning import as_class_labels, make_generator

        c = self.cfg
        device = self.lm_head.weight.device
        labels = as_class_labels(condition, c.condition_num_classes, device)
        g = make_generator(generator, seed, device)
        scale = c.guidance_scale if guidance_scale is None else float(guidance_scale)
        power = c.guidance_scale_pow if guidance_scale_pow is None else float(guidance_scale_pow)
        temp = c.randomize_temperature if randomize_temperature is None else float(randomize_temperature)
        if guidance is None:
            # RAR: CFG whenever guidance_scale != 0, w(r) = 1 + (scale - 1)(1 - cos(pi r^pow)) / 2
            guidance = Guidance(scale, "power_cosine", power=power) if scale != 0 else Guidance(1.0)
        guided = guidance.active if isinstance(guidance, Guidance) else guidance is not None
        b = len(labels)
        cond = self.condition_ids(labels)[:, None]
        null = torch.full_like(cond, self.none_condition_id)
        cond_emb = self.embeddings(torch.cat([cond, null]) if guided else cond)[:, 0]
        cache = self.new_cache(2 * b if guided else b)
        # The adaLN modulations depend only on (class, position): compute them for a chunk of
        # upcoming positions in one GEMM instead of one GEMV per block per step (their weights
        # are a third of the bytes a decode step reads). Local state: nothing stays on the module.
        chunk = {"lo": 0, "hi": 0, "mods": None}

        def modulations(start: int, n: int) -> list[torch.Tensor]:
            if not (chunk["lo"] <= start and start + n <= chunk["hi"]):
                hi = min(start + max(n, self._MOD_CHUNK), c.image_seq_len + 1)
                pos = torch.arange(start, hi, device=device)
                chunk.update(lo=start, hi=hi, mods=self._modulations(cond_emb[:, None, :] + self.timesteps_embeddings[0, pos]))
            off = start - chunk["lo"]
            return [m[:, off : off + n] for m in chunk["mods"]]

        def forward(step, kv):
            start = kv.length
            x, cc = self._inputs(step.ids, cond_emb, start, with_cls=start == 0)
            logits = self._run(x, cc, kv, modulations(start, x.shape[1]))
            kv.advance(x.shape[1])
            return logits[:, -1]

        out = generate_ar(
            forward, cond, c.image_seq_len, cache, generator=g,
            sampler=SamplerSettings(temperature=temp, top_k=top_k, top_p=top_p),
            guidance=guidance, uncond_prompt=null, progress=progress,
        )
        tokens = Tokens(ids=out.ids, codebook_size=c.codebook_size, tokenizer=c.tokenizer)
        media = self.decode(tokens, tokenizer) if decode else None
        return Generation(tokens=tokens, media=media, meta={"labels": labels.tolist(), "guidance_scale": scale,
                                                             "guidance_scale_pow": power, "randomize_temperature": temp})

    def decode(self, tokens, tokenizer: Any = None) -> torch.Tensor:
        """Ids -> images in [-1, 1] with the MaskGIT-VQGAN tokenizer (``config.tokenizer``)."""
        if tokenizer is None:
            import zoo

            tokenizer = zoo.load(self.cfg.tokenizer, device=self.lm_head.weight.device)
        return tokenizer.decode(tokens)
