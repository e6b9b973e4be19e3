"""MaskGIT generators: ``ImageBert`` (BERT, post-LN) and ``UViTBert`` (U-ViT with long skips).

Module and parameter names follow the official checkpoints (bytedance/1d-tokenizer,
turingmotors/One-D-Piece), so they load with ``strict=True`` unchanged; U-ViT's attention and
MLP are :class:`zoo.nn.blocks.SelfAttention` / :class:`zoo.nn.blocks.Mlp` (same key names).

Token space (both): ``[0, K)`` image tokens, ``K`` the mask token, ``K + 1 + c`` class ``c``,
``K + 1 + C`` the null class (classifier-free guidance).

Example:
    >>> from zoo_plugins.maskgit.config import MaskGITConfig
    >>> m = build_generator(MaskGITConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
    ...     intermediate_size=64, image_seq_len=4, codebook_size=16, condition_num_classes=10))
    >>> m.generate([1, 2], seed=0, decode=False).tokens.ids.shape
    torch.Size([2, 4])
"""

from __future__ import annotations

from typing import Any, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from torch import nn

from zoo.errors import InputError
from zoo.model import ZooModel
from zoo.nn.attention import attention
from zoo.nn.blocks import Mlp, SelfAttention, merge_heads

from .config import MaskGITConfig

__all__ = ["ImageBert", "UViTBert", "build_generator", "reference_guidance"]


def reference_guidance(guidance_scale: float, guidance_decay: str, guidance_scale_pow: float = 3.0):
    """1d-tokenizer's ``(guidance_scale, guidance_decay, guidance_scale_pow)`` as a zoo
    :class:`~zoo.sampling.Guidance` (weight convention ``uncond + w (cond - uncond)``).

    * ``constant``: ``cond + s (cond - uncond)`` at every step -> ``w = 1 + s``;
    * ``linear``: ``s = g * step / steps`` in the same form -> ``w = 1 + g r`` (no CFG at step 0);
    * ``power-cosine``: already ``uncond + w (cond - uncond)`` with MDT's schedule.

    Example:
        >>> reference_guidance(4.5, "linear").weight(4, 8)
        3.25
    """
    from zoo.sampling import Guidance, weight_from_cond_scale

    if guidance_decay == "constant":
        return Guidance(weight_from_cond_scale(guidance_scale)) if guidance_scale != 0 else Guidance(1.0)
    if guidance_decay == "linear":
        return Guidance(weight_from_cond_scale(guidance_scale), "linear")
    if guidance_decay == "power-cosine":
        return Guidance(float(guidance_scale), "power_cosine", power=float(guidance_scale_pow))
    raise InputError(f"unsupported guidance_decay {guidance_decay!r}; use constant, linear or power-cosine")


# ----------------------------------------------------------------------------- BERT (ImageBert)


class _BertEmbeddings(nn.Module):
    def __init__(self, vocab: int, dim: int, max_pos: int):
        super().__init__()
        self.word_embeddings = nn.Embedding(vocab, dim)
        self.position_embeddings = nn.Embedding(max_pos, dim)
        self.token_type_embeddings = nn.Embedding(2, dim)
        self.LayerNorm = nn.LayerNorm(dim, eps=1e-12)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        n = ids.shape[1]
        x = self.word_embeddings(ids) + self.token_type_embeddings.weight[0] + self.position_embeddings.weight[:n]
        return self.LayerNorm(x)


class _Dense(nn.Module):
    def __init__(self, d_in: int, d_out: int, norm: bool):
        super().__init__()
        self.dense = nn.Linear(d_in, d_out)
        if norm:
            self.LayerNorm = nn.LayerNorm(d_out, eps=1e-12)


class _BertSelf(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.query = nn.Linear(dim, dim)
        self.key = nn.Linear(dim, dim)
        self.value = nn.Linear(dim, dim)


class _BertAttention(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.self = _BertSelf(dim)
        self.output = _Dense(dim, dim, norm=True)


class _BertLayer(nn.Module):
    def __init__(self, dim: int, heads: int, inner: int):
        super().__init__()
        self.heads = heads
        self.attention = _BertAttention(dim)
        self.intermediate = _Dense(dim, inner, norm=False)
        self.output = _Dense(inner, dim, norm=True)
        self.attn_backend: Optional[str] = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        s = self.attention.self
        q, k, v = (lin(x).view(b, n, self.heads, -1).transpose(1, 2) for lin in (s.query, s.key, s.value))
        a = merge_heads(attention(q, k, v, backend=self.attn_backend))
        o = self.attention.output
        x = o.LayerNorm(o.dense(a) + x)
        h = F.gelu(self.intermediate.dense(x))
        return self.output.LayerNorm(self.output.dense(h) + x)


class _BertEncoder(nn.Module):
    def __init__(self, cfg: MaskGITConfig):
        super().__init__()
        self.layer = nn.ModuleList(
            _BertLayer(cfg.hidden_size, cfg.num_attention_heads, cfg.intermediate_size) for _ in range(cfg.num_hidden_layers)
        )


class _BertModel(nn.Module):
    def __init__(self, cfg: MaskGITConfig, vocab: int):
        super().__init__()
        self.embeddings = _BertEmbeddings(vocab, cfg.hidden_size, cfg.image_seq_len + 1)
        self.encoder = _BertEncoder(cfg)
        self.lm_head = nn.Linear(cfg.hidden_size, cfg.codebook_size)


# ----------------------------------------------------------------------------- U-ViT


class _UViTBlock(nn.Module):
    def __init__(self, dim: int, heads: int, hidden: int, skip: bool):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = SelfAttention(dim, heads, qkv_bias=False)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, hidden)
        self.skip_linear = nn.Linear(2 * dim, dim) if skip else None

    def forward(self, x: torch.Tensor, skip: Optional[torch.Tensor] = None) -> torch.Tensor:
        if self.skip_linear is not None:
            x = self.skip_linear(torch.cat([x, skip], dim=-1))
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


# ----------------------------------------------------------------------------- generators


class _MaskGITBase(ZooModel, nn.Module):
    """Shared token layout, ``logits`` on chosen positions, and ``generate``."""

    def __init__(self, cfg: MaskGITConfig):
        super().__init__()
        self.cfg = cfg
        self.mask_token_id = cfg.codebook_size
        self.null_class_id = cfg.codebook_size + 1 + cfg.condition_num_classes
        self.vocab_size = cfg.codebook_size + cfg.condition_num_classes + 2

    def hidden(self, input_ids: torch.Tensor) -> torch.Tensor:  # [B, 1+N] -> [B, 1+N, D]
        raise NotImplementedError

    def head(self, h: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def condition_ids(self, labels: torch.Tensor) -> torch.Tensor:
        return labels + self.cfg.codebook_size + 1

    def logits(self, ids: torch.Tensor, cond_ids: torch.Tensor, positions: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Logits ``[B, N or M, K]`` for image-token ``ids`` ``[B, N]`` after condition tokens
        ``cond_ids`` ``[B]`` (already shifted into the token space), at ``positions`` ``[B, M]``."""
        h = self.hidden(torch.cat([cond_ids[:, None], ids], dim=1))[:, 1:]
        if positions is not None:
            h = torch.gather(h, 1, positions[..., None].expand(-1, -1, h.shape[-1]))
        return self.head(h)

    def forward(self, input_ids: torch.Tensor, condition: torch.Tensor, cond_drop_prob: float = 0.0,
                generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """The reference's training forward: class labels ``condition`` ``[B]`` are dropped to the
        null class with probability ``cond_drop_prob`` (drawn from ``generator``)."""
        cond = self.condition_ids(condition)
        if cond_drop_prob > 0:
            drop = torch.rand(cond.shape, generator=generator, device=cond.device) < cond_drop_prob
            cond = torch.where(drop, torch.full_like(cond, self.null_class_id), cond)
        return self.logits(input_ids.view(input_ids.shape[0], -1), cond)

    @torch.no_grad()
    def generate(
        self,
        condition: Union[int, Sequence[int], torch.Tensor],
        *,
        num_steps: Optional[int] = None,
        guidance_scale: Optional[float] = None,
        guidance_decay: Optional[str] = None,
        guidance_scale_pow: Optional[float] = None,
        randomize_temperature: Optional[float] = None,
        softmax_temperature_annealing: Optional[bool] = None,
        guidance: Any = None,
        schedule: str = "arccos",
        generator: Optional[torch.Generator] = None,
        seed: Optional[int] = None,
        decode: bool = True,
        tokenizer: Any = None,
        progress: Any = None,
    ):
        """Class labels -> :class:`~zoo.sampling.Generation` (tokens, and images in [-1, 1]
        decoded by the paired tokenizer unless ``decode=False``).

        Sampler settings default to the reference's per-model values (``self.cfg``), in the
        reference's conventions (see :func:`reference_guidance`); ``guidance=`` (a zoo
        :class:`~zoo.sampling.Guidance` or weight) overrides the three guidance arguments.
        Random draws come from ``generator`` (or a new one seeded with ``seed``), in the
        reference's order: the same seed gives the reference's ids.
        """
        from zoo.interfaces import Tokens
        from zoo.sampling import Generation, generate_maskgit
        from zoo.sampling.conditioning import as_class_labels, make_generator

        c = self.cfg
        device = self.lm_head_device()
        labels = as_class_labels(condition, c.condition_num_classes, device)
        g = make_generator(generator, seed, device)
        settings = dict(
            num_steps=c.num_steps if num_steps is None else int(num_steps),
            guidance_scale=c.guidance_scale if guidance_scale is None else float(guidance_scale),
            guidance_decay=c.guidance_decay if guidance_decay is None else guidance_decay,
            guidance_scale_pow=c.guidance_scale_pow if guidance_scale_pow is None else float(guidance_scale_pow),
            randomize_temperature=c.randomize_temperature if randomize_temperature is None else float(randomize_temperature),
            softmax_temperature_annealing=c.softmax_temperature_annealing if softmax_temperature_annealing is None else bool(softmax_temperature_annealing),
        )
        if guidance is None:
            guidance = reference_guidance(settings["guidance_scale"], settings["guidance_decay"], settings["guidance_scale_pow"])
        cond = self.condition_ids(labels)
        cond2 = torch.cat([cond, torch.full_like(cond, self.null_class_id)])

        def logits_fn(ids: torch.Tensor, positions: torch.Tensor, guided: bool) -> torch.Tensor:
            if guided:
                return self.logits(torch.cat([ids, ids]), cond2, torch.cat([positions, positions]))
            return self.logits(ids, cond, positions)

        ids = generate_maskgit(
            logits_fn, batch=len(labels), seq_len=c.image_seq_len, mask_id=self.mask_token_id,
            steps=settings["num_steps"], generator=g, guidance=guidance,
            randomize_temperature=settings["randomize_temperature"],
            softmax_temperature_annealing=settings["softmax_temperature_annealing"],
            schedule=schedule, vocab_size=c.codebook_size, device=device, progress=progress,
        )
        tokens = Tokens(ids=ids, codebook_size=c.codebook_size, tokenizer=c.tokenizer)
        media = self.decode(tokens, tokenizer) if decode else None
        return Generation(tokens=tokens, media=media, meta={"labels": labels.tolist(), **settings})

    def lm_head_device(self) -> torch.device:
        return next(self.parameters()).device

    def decode(self, tokens, tokenizer: Any = None) -> torch.Tensor:
        """Decode generated tokens to images with ``tokenizer`` (default: ``zoo.load`` of the
        card named in ``config.tokenizer``, on this model's device)."""
        if tokenizer is None:
            if not self.cfg.tokenizer:
                raise InputError("this generator names no tokenizer (config.tokenizer); pass tokenizer= or decode=False")
            import zoo

            tokenizer = zoo.load(self.cfg.tokenizer, device=self.lm_head_device())
        return tokenizer.decode(tokens)


class ImageBert(_MaskGITBase):
    """TiTok's BERT generator (also One-D-Piece's); keys ``model.embeddings.*``,
    ``model.encoder.layer.{i}.*``, ``model.lm_head.*``."""

    def __init__(self, cfg: MaskGITConfig):
        super().__init__(cfg)
        self.model = _BertModel(cfg, self.vocab_size)

    def hidden(self, input_ids: torch.Tensor) -> torch.Tensor:
        x = self.model.embeddings(input_ids)
        for layer in self.model.encoder.layer:
            x = layer(x)
        return x

    def head(self, h: torch.Tensor) -> torch.Tensor:
        return self.model.lm_head(h)


class UViTBert(_MaskGITBase):
    """TiTok-S-128's U-ViT generator: ``depth/2`` in-blocks, a mid block, ``depth/2`` out-blocks
    with long skips, final LayerNorm."""

    def __init__(self, cfg: MaskGITConfig):
        super().__init__(cfg)
        d, h, inner = cfg.hidden_size, cfg.num_attention_heads, cfg.intermediate_size
        self.embeddings = nn.Embedding(self.vocab_size, d)
        self.pos_embed = nn.Parameter(torch.zeros(1, cfg.image_seq_len + 1, d))
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        self.in_blocks = nn.ModuleList(_UViTBlock(d, h, inner, False) for _ in range(cfg.num_hidden_layers // 2))
        self.mid_block = _UViTBlock(d, h, inner, False)
        self.out_blocks = nn.ModuleList(_UViTBlock(d, h, inner, True) for _ in range(cfg.num_hidden_layers // 2))
        self.norm = nn.LayerNorm(d)
        self.lm_head = nn.Linear(d, cfg.codebook_size)

    def hidden(self, input_ids: torch.Tensor) -> torch.Tensor:
        x = self.embeddings(input_ids) + self.pos_embed[:, : input_ids.shape[1]]
        skips = []
        for blk in self.in_blocks:
            x = blk(x)
            skips.append(x)
        x = self.mid_block(x)
        for blk in self.out_blocks:
            x = blk(x, skips.pop())
        return self.norm(x)

    def head(self, h: torch.Tensor) -> torch.Tensor:
        return self.lm_head(h)


def build_generator(cfg: MaskGITConfig) -> _MaskGITBase:
    """The module for ``cfg.arch`` (``bert`` or ``uvit``)."""
    if cfg.arch == "bert":
        return ImageBert(cfg)
    if cfg.arch == "uvit":
        return UViTBert(cfg)
    raise InputError(f"unknown MaskGIT arch {cfg.arch!r}; use 'bert' (ImageBert) or 'uvit' (UViTBert)")
