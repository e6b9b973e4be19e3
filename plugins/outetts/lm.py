"""A Llama decoder (RMSNorm, RoPE, grouped-query attention, SwiGLU) with a static KV cache.

Key names are ``transformers``' ``LlamaForCausalLM`` ones (``model.layers.{i}.self_attn.q_proj``
...), so OuteTTS's ``model.safetensors`` loads with ``strict=True``. The forward used for
generation takes a :class:`zoo.sampling.ARStep` (new ids, their positions, key padding) and a
:class:`zoo.sampling.StaticKVCache`; there is no per-step ``torch.cat`` and no re-embedding of
past tokens.

Example:
    >>> import torch
    >>> from zoo_plugins.outetts.config import OuteTTSConfig
    >>> lm = LlamaLM(OuteTTSConfig(hidden_size=32, head_dim=8, intermediate_size=64, num_attention_heads=4,
    ...                            num_hidden_layers=2, num_key_value_heads=2, vocab_size=50))
    >>> lm(torch.tensor([[1, 2, 3]])).shape
    torch.Size([1, 3, 50])
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from zoo.nn.attention import attention
from zoo.nn.blocks import Linear, linear
from zoo.nn.masks import CausalMask, KeyPaddingMask

from .config import OuteTTSConfig

__all__ = ["LlamaLM", "RMSNorm"]


class RMSNorm(nn.Module):
    """``x / rms(x) * weight``, computed in float32 as transformers' LlamaRMSNorm."""

    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.float()
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * h.to(x.dtype)


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    a, b = x.chunk(2, dim=-1)
    return torch.cat([-b, a], dim=-1)


class _Attention(nn.Module):
    def __init__(self, cfg: OuteTTSConfig):
        super().__init__()
        d, hd = cfg.hidden_size, cfg.head_dim or cfg.hidden_size // cfg.num_attention_heads
        self.heads, self.kv_heads, self.head_dim = cfg.num_attention_heads, cfg.num_key_value_heads, hd
        self.q_proj = Linear(d, self.heads * hd, bias=False)
        self.k_proj = Linear(d, self.kv_heads * hd, bias=False)
        self.v_proj = Linear(d, self.kv_heads * hd, bias=False)
        self.o_proj = Linear(self.heads * hd, d, bias=False)
        self.attn_backend: Optional[str] = None

    def forward(self, x, cos, sin, layer: int, cache=None, key_valid=None):
        b, n, _ = x.shape
        q = self.q_proj(x).view(b, n, self.heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(b, n, self.kv_heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(b, n, self.kv_heads, self.head_dim).transpose(1, 2)
        q = q * cos + _rotate_half(q) * sin
        k = k * cos + _rotate_half(k) * sin
        if cache is not None:
            k, v = cache.update(layer, k, v)
        if key_valid is not None:
            mask = KeyPaddingMask(key_valid, causal=True)
        else:
            mask = CausalMask() if n > 1 else None
        out = attention(q, k, v, mask=mask, backend=self.attn_backend)
        return self.o_proj(out.transpose(1, 2).reshape(b, n, -1))


class _MLP(nn.Module):
    def __init__(self, cfg: OuteTTSConfig):
        super().__init__()
        self.gate_proj = Linear(cfg.hidden_size, cfg.intermediate_size, bias=False)
        self.up_proj = Linear(cfg.hidden_size, cfg.intermediate_size, bias=False)
        self.down_proj = Linear(cfg.intermediate_size, cfg.hidden_size, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class _Layer(nn.Module):
    def __init__(self, cfg: OuteTTSConfig):
        super().__init__()
        self.self_attn = _Attention(cfg)
        self.mlp = _MLP(cfg)
        self.input_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.post_attention_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)

    def forward(self, x, cos, sin, layer, cache=None, key_valid=None):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, layer, cache, key_valid)
        return x + self.mlp(self.post_attention_layernorm(x))


class _Model(nn.Module):
    def __init__(self, cfg: OuteTTSConfig):
        super().__init__()
        self.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.layers = nn.ModuleList(_Layer(cfg) for _ in range(cfg.num_hidden_layers))
        self.norm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)


class LlamaLM(nn.Module):
    """``LlamaForCausalLM`` layout: ``model.*`` and ``lm_head`` (tied to the embeddings when
    ``tie_word_embeddings``, in which case the checkpoint has no ``lm_head.weight``)."""

    def __init__(self, cfg: OuteTTSConfig):
        super().__init__()
        self.cfg = cfg
        self.model = _Model(cfg)
        if not cfg.tie_word_embeddings:
            self.lm_head = Linear(cfg.hidden_size, cfg.vocab_size, bias=False)
        hd = cfg.head_dim or cfg.hidden_size // cfg.num_attention_heads
        inv = 1.0 / (cfg.rope_theta ** (torch.arange(0, hd, 2, dtype=torch.int64).float() / hd))
        self.register_buffer("inv_freq", inv, persistent=False)

    @property
    def head_weight(self) -> torch.Tensor:
        return self.model.embed_tokens.weight if self.cfg.tie_word_embeddings else self.lm_head.weight

    def _rope(self, positions: torch.Tensor, dtype: torch.dtype):
        freqs = positions[..., None].float() * self.inv_freq.float()  # [B, n, hd/2]
        emb = torch.cat([freqs, freqs], dim=-1)[:, None]  # [B, 1, n, hd]
        return emb.cos().to(dtype), emb.sin().to(dtype)

    def hidden(self, ids, positions, cache=None, key_valid=None) -> torch.Tensor:
        x = self.model.embed_tokens(ids)
        cos, sin = self._rope(positions, x.dtype)
        for i, layer in enumerate(self.model.layers):
            x = layer(x, cos, sin, i, cache, key_valid)
        return self.model.norm(x)

    def forward(self, ids: torch.Tensor, positions: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Teacher-forced logits ``[B, L, V]`` (no cache)."""
        if positions is None:
            positions = torch.arange(ids.shape[1], device=ids.device).expand_as(ids)
        return F.linear(self.hidden(ids, positions), self.head_weight)

    def step(self, step, cache) -> torch.Tensor:
        """One :func:`zoo.sampling.generate_ar` step: logits of the last position ``[B, V]``
        (the LM head runs on that position only)."""
        h = self.hidden(step.ids, step.positions, cache, step.key_valid)
        cache.advance(step.ids.shape[1])
        return linear(h[:, -1], self.head_weight)

    def new_cache(self, batch: int, max_len: int):
        from zoo.sampling import StaticKVCache

        c = self.cfg
        hd = c.head_dim or c.hidden_size // c.num_attention_heads
        w = self.head_weight
        return StaticKVCache(c.num_hidden_layers, batch, c.num_key_value_heads, max_len, hd, dtype=w.dtype, device=w.device)
