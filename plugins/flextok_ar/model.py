"""FlexTok AR: ``[class] t_1 t_2 ... t_k`` with a causal pre-LN transformer (learned positions,
GELU MLP), next-token logits over the 64 000 FSQ codes.

Because FlexTok orders its tokens coarse-to-fine and decodes any prefix, ``generate(labels,
num_tokens=k)`` samples ``k`` tokens (1..256) and the FlexTok decoder turns the prefix into an
image. Classifier-free guidance uses a learned null class (trained by dropping labels with
``cond_drop_prob``), run as one batch of 2B rows through zoo's static-KV-cache AR driver.

Example:
    >>> import torch
    >>> m = FlexTokAR(FlexTokARConfig(dim=32, depth=2, heads=2, vocab_size=50, max_tokens=8, num_classes=3))
    >>> m.generate([0, 2], num_tokens=5, seed=0, decode=False).tokens.ids.shape
    torch.Size([2, 5])
    >>> float(m.loss(torch.randint(0, 50, (2, 8)), torch.tensor([0, 1]))) > 0
    True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from torch import nn

from zoo.builders import ModelBuilder
from zoo.errors import InputError, InputTypeError
from zoo.model import ZooModel
from zoo.nn.attention import attention
from zoo.nn.blocks import Linear, merge_heads, split_qkv
from zoo.nn.masks import CausalMask

__all__ = ["FlexTokARConfig", "FlexTokAR", "FlexTokARBuilder"]


@dataclass
class FlexTokARConfig:
    dim: int = 1024
    depth: int = 24
    heads: int = 16
    mlp_ratio: float = 4.0
    vocab_size: int = 64000  # FSQ levels [8, 8, 8, 5, 5, 5]
    max_tokens: int = 256
    num_classes: int = 1000
    # sampler defaults (no published model: plain, reasonable values)
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    guidance_scale: float = 1.0
    tokenizer: str = "flextok.d18_d28_in1k"


class _Block(nn.Module):
    def __init__(self, dim: int, heads: int, hidden: int):
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = Linear(dim, 3 * dim)
        self.proj = Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        self.fc1 = Linear(dim, hidden)
        self.fc2 = Linear(hidden, dim)
        self.attn_backend: Optional[str] = None

    def forward(self, x: torch.Tensor, layer: int, cache=None) -> torch.Tensor:
        q, k, v = split_qkv(self.qkv(self.norm1(x)), self.heads)
        if cache is not None:
            k, v = cache.update(layer, k, v)
        a = attention(q, k, v, mask=CausalMask() if x.shape[1] > 1 else None, backend=self.attn_backend)
        x = x + self.proj(merge_heads(a))
        return x + self.fc2(F.gelu(self.fc1(self.norm2(x))))


class FlexTokAR(ZooModel, nn.Module):
    """Class-conditional AR prior over FlexTok token sequences (no published weights)."""

    def __init__(self, cfg: FlexTokARConfig):
        super().__init__()
        if cfg.dim % cfg.heads:
            raise InputError(f"dim {cfg.dim} must be divisible by heads {cfg.heads}")
        self.cfg = cfg
        self.tok_emb = nn.Embedding(cfg.vocab_size, cfg.dim)
        self.cls_emb = nn.Embedding(cfg.num_classes + 1, cfg.dim)  # last row: the null class
        self.pos_emb = nn.Parameter(torch.zeros(cfg.max_tokens, cfg.dim))
        self.blocks = nn.ModuleList(_Block(cfg.dim, cfg.heads, int(cfg.dim * cfg.mlp_ratio)) for _ in range(cfg.depth))
        self.norm = nn.LayerNorm(cfg.dim)
        self.head = Linear(cfg.dim, cfg.vocab_size, bias=False)
        self.apply(self._init)
        nn.init.normal_(self.pos_emb, std=0.02)

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=0.02)
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.zeros_(m.bias)

    @property
    def null_class(self) -> int:
        return self.cfg.num_classes

    def _embed(self, ids: torch.Tensor, start: int, cls: Optional[torch.Tensor]) -> torch.Tensor:
        # sequence position p holds [class] at 0 and token t_p at p >= 1; pos_emb[p] for p >= 0
        parts = [] if cls is None else [self.cls_emb(cls)[:, None]]
        if ids.shape[1]:
            parts.append(self.tok_emb(ids))
        x = torch.cat(parts, dim=1)
        return x + self.pos_emb[start : start + x.shape[1]]

    def _run(self, x: torch.Tensor, cache=None) -> torch.Tensor:
        for i, blk in enumerate(self.blocks):
            x = blk(x, i, cache)
        return self.head(self.norm(x))

    def forward(self, ids: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Teacher forcing: logits ``[B, k, V]``; position ``i`` predicts ``ids[:, i]``."""
        if ids.shape[1] > self.cfg.max_tokens:
            raise InputError(f"at most {self.cfg.max_tokens} tokens, got {ids.shape[1]}")
        return self._run(self._embed(ids[:, :-1], 0, labels))

    def loss(self, ids: torch.Tensor, labels: torch.Tensor, cond_drop_prob: float = 0.1,
             generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """Cross-entropy of next-token prediction; labels are replaced by the null class with
        probability ``cond_drop_prob`` (for classifier-free guidance)."""
        if cond_drop_prob > 0:
            drop = torch.rand(labels.shape, generator=generator, device=labels.device) < cond_drop_prob
            labels = torch.where(drop, torch.full_like(labels, self.null_class), labels)
        logits = self(ids, labels)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), ids.reshape(-1))

    @torch.no_grad()
    def generate(
        self,
        condition: Union[int, Sequence[int], torch.Tensor],
        *,
        num_tokens: int = 256,
        guidance_scale: Optional[float] = None,
        guidance: Any = None,
        temperature: Optional[float] = None,
        top_k: Optional[int] = None,
        top_p: Optional[float] = None,
        generator: Optional[torch.Generator] = None,
        seed: Optional[int] = None,
        decode: bool = True,
        tokenizer: Any = None,
        progress: Any = None,
        **decode_kwargs: Any,
    ):
        """Class labels -> :class:`~zoo.sampling.Generation` with ``num_tokens`` (1..256) FlexTok
        ids per image, decoded by the FlexTok tokenizer unless ``decode=False``
        (``decode_kwargs`` go to its ``decode``: steps, guidance_scale, ...)."""
        from zoo.interfaces import Tokens
        from zoo.sampling import Generation, Guidance, SamplerSettings, StaticKVCache, as_guidance, generate_ar
        from zoo.sampling.conditioning import as_class_labels, make_generator

        c = self.cfg
        if not 1 <= int(num_tokens) <= c.max_tokens:
            raise InputError(f"num_tokens must lie in 1..{c.max_tokens}, got {num_tokens}")
        w = self.head.weight
        labels = as_class_labels(condition, c.num_classes, w.device)
        g = as_guidance(guidance if guidance is not None else (c.guidance_scale if guidance_scale is None else guidance_scale))
        if not isinstance(g, Guidance):
            raise InputTypeError("guidance must be a zoo.sampling.Guidance or a weight")
        b = len(labels)
        rows = 2 * b if g.active else b
        cache = StaticKVCache(c.depth, rows, c.heads, int(num_tokens), c.dim // c.heads, dtype=w.dtype, device=w.device)
        cls = torch.cat([labels, torch.full_like(labels, self.null_class)]) if g.active else labels

        def forward(step, kv):
            start = kv.length
            # prefill: the class token alone (the driver's prompt ids are placeholders)
            x = self._embed(step.ids[:, :0], 0, cls) if start == 0 else self._embed(step.ids, start, None)
            logits = self._run(x, kv)
            kv.advance(x.shape[1])
            return logits[:, -1]

        prompt = torch.zeros(b, 1, dtype=torch.long, device=w.device)
        out = generate_ar(
            forward, prompt, int(num_tokens), cache, generator=make_generator(generator, seed, w.device),
            sampler=SamplerSettings(temperature=c.temperature if temperature is None else float(temperature),
                                    top_k=c.top_k if top_k is None else int(top_k), top_p=c.top_p if top_p is None else float(top_p)),
            guidance=g, uncond_prompt=prompt if g.active else None, progress=progress,
        )
        tokens = Tokens(ids=out.ids, codebook_size=c.vocab_size, tokenizer=c.tokenizer)
        media = None
        if decode:
            if tokenizer is None:
                import zoo

                tokenizer = zoo.load(c.tokenizer, device=w.device)
            media = tokenizer.decode(tokens, **decode_kwargs)
        return Generation(tokens=tokens, media=media, meta={"labels": labels.tolist(), "num_tokens": int(num_tokens)})


class FlexTokARBuilder(ModelBuilder):
    """Builds :class:`FlexTokAR`; weights you trained load from a safetensors file with
    ``zoo.load("flextok_ar.<tag>", weights=PATH)`` (keys as :class:`FlexTokAR` names them)."""

    name = "flextok_ar"
    config_class = FlexTokARConfig

    def build(self, config: FlexTokARConfig):
        return FlexTokAR(config)
