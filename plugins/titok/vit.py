"""TiTok's ViT encoder and decoder with 1D latent tokens (batch-first, zoo attention).

Parameter names equal the official checkpoints' (``transformer.{i}.attn.in_proj_weight``, ...),
so the released files load with ``strict=True`` without renaming.

Differences from the reference that do not change outputs:
* batch-first layout with a fused qkv projection (no sequence-first permutes);
* the decoder's constant prefix (class token + mask tokens + position embeddings) is computed
  once per weights instead of per call;
* in the last block only the rows that are read afterwards are computed (the latent tokens in
  the encoder, the patch queries in the decoder): every op but attention is per-token.

Example:
    >>> from zoo_plugins.titok.config import TiTokConfig
    >>> cfg = TiTokConfig(vit_enc_model_size="small", vit_dec_model_size="small", crop_size=32,
    ...                   num_latent_tokens=4, strict_length_assertion=False)
    >>> enc, dec = TiTokEncoder(cfg), TiTokDecoder(cfg)
    >>> z = enc(torch.rand(2, 3, 32, 32), torch.zeros(4, 512))
    >>> tuple(z.shape), tuple(dec(z[..., :3]).shape)   # legacy head: 1024 proxy logits per patch
    ((2, 12, 1, 4), (2, 1024, 2, 2))
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from zoo.errors import InputError

from ._core import attention
from .config import vit_dims

__all__ = ["SelfAttention", "ResidualAttentionBlock", "TiTokEncoder", "TiTokDecoder"]


class SelfAttention(nn.Module):
    """Multi-head self-attention with ``nn.MultiheadAttention``'s parameter names."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        if width % heads:
            raise InputError(f"width {width} is not divisible by {heads} heads")
        self.heads = heads
        self.in_proj_weight = nn.Parameter(torch.empty(3 * width, width))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * width))
        self.out_proj = nn.Linear(width, width)
        self.attn_backend: str | None = None
        nn.init.xavier_uniform_(self.in_proj_weight)

    def forward(self, x: torch.Tensor, rows: slice | None = None) -> torch.Tensor:
        """``x``: [B, L, W] -> [B, L, W]; with ``rows`` only those query rows are computed."""
        q, k, v = self.project(x, rows)
        return self.output(attention(q, k, v, backend=self.attn_backend))

    def project(self, x: torch.Tensor, rows: slice | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(q, k, v)`` heads ``[B, H, *, D]`` (``q`` only for ``rows``)."""
        b, n, w = x.shape
        h, d = self.heads, w // self.heads
        if rows is None:
            return F.linear(x, self.in_proj_weight, self.in_proj_bias).view(b, n, 3, h, d).permute(2, 0, 3, 1, 4).unbind(0)
        k, v = F.linear(x, self.in_proj_weight[w:], self.in_proj_bias[w:]).view(b, n, 2, h, d).permute(2, 0, 3, 1, 4)
        q = F.linear(x[:, rows], self.in_proj_weight[:w], self.in_proj_bias[:w])
        return q.view(b, -1, h, d).transpose(1, 2), k, v

    def output(self, out: torch.Tensor) -> torch.Tensor:
        """Attention output heads ``[B, H, n, D]`` -> ``out_proj`` of the merged heads ``[B, n, W]``."""
        b, h, n, d = out.shape
        return self.out_proj(out.transpose(1, 2).reshape(b, n, h * d))


class ResidualAttentionBlock(nn.Module):
    """Pre-LN transformer block: ``x + attn(ln_1 x)``, then ``x + mlp(ln_2 x)`` (GELU, ratio 4)."""

    def __init__(self, width: int, heads: int, mlp_ratio: float = 4.0):
        super().__init__()
        self.ln_1 = nn.LayerNorm(width)
        self.attn = SelfAttention(width, heads)
        self.ln_2 = nn.LayerNorm(width)
        hidden = int(width * mlp_ratio)
        self.mlp = nn.Sequential()
        self.mlp.add_module("c_fc", nn.Linear(width, hidden))
        self.mlp.add_module("gelu", nn.GELU())
        self.mlp.add_module("c_proj", nn.Linear(hidden, width))

    def forward(self, x: torch.Tensor, rows: slice | None = None) -> torch.Tensor:
        """``x``: [B, L, W] -> [B, L, W]; with ``rows`` only ``x[:, rows]``'s outputs (all
        positions are still attended to)."""
        y = self.attn(self.ln_1(x), rows)
        x = (x if rows is None else x[:, rows]) + y
        return x + self.reducer_mlp(x)

    # token-reducer protocol (zoo_plugins.reducers.adapters.zoo_blocks): the block split at
    # attention / MLP, so ToMe & co. can merge tokens between them
    def reducer_qkv(self, x: torch.Tensor, rows: slice | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.attn.project(self.ln_1(x), rows)

    def reducer_attn_out(self, out: torch.Tensor) -> torch.Tensor:
        return self.attn.output(out)

    def reducer_mlp(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.ln_2(x))


def _blocks(width: int, layers: int, heads: int) -> nn.ModuleList:
    return nn.ModuleList(ResidualAttentionBlock(width, heads) for _ in range(layers))


class TiTokEncoder(nn.Module):
    """Image [B, 3, H, W] in [0, 1] -> latent tokens [B, token_size(*2 for VAE), 1, N].

    Sequence: ``[class | patches | latent tokens]``; the latent tokens' outputs go through
    ``ln_post`` and a 1x1 conv (``conv_out``). With ``is_legacy`` the reference reshapes the
    [B, N, W] outputs to [B, W, N, 1] *without* a permute before that conv, and the released
    weights depend on it; zoo reproduces the same arithmetic.
    """

    def __init__(self, cfg):
        super().__init__()
        self.width, self.num_layers, heads = vit_dims(cfg.vit_enc_model_size)
        self.patch_size = int(cfg.vit_enc_patch_size)
        self.grid_size = int(cfg.crop_size) // self.patch_size
        self.num_latent_tokens = int(cfg.num_latent_tokens)
        self.token_size = int(cfg.token_size) * (2 if cfg.quantize_mode == "vae" else 1)
        self.is_legacy = bool(cfg.is_legacy)
        w, scale = self.width, self.width ** -0.5
        self.patch_embed = nn.Conv2d(3, w, kernel_size=self.patch_size, stride=self.patch_size)
        self.class_embedding = nn.Parameter(scale * torch.randn(1, w))
        self.positional_embedding = nn.Parameter(scale * torch.randn(self.grid_size**2 + 1, w))
        self.latent_token_positional_embedding = nn.Parameter(scale * torch.randn(self.num_latent_tokens, w))
        self.ln_pre = nn.LayerNorm(w)
        self.transformer = _blocks(w, self.num_layers, heads)
        self.ln_post = nn.LayerNorm(w)
        self.conv_out = nn.Conv2d(w, self.token_size, kernel_size=1)

    def forward(self, pixel_values: torch.Tensor, latent_tokens: torch.Tensor) -> torch.Tensor:
        b = pixel_values.shape[0]
        n = self.num_latent_tokens
        x = self.patch_embed(pixel_values).flatten(2).transpose(1, 2)  # [B, g*g, W]
        cls = self.class_embedding.to(x.dtype).expand(b, -1, -1)
        x = torch.cat([cls, x], dim=1) + self.positional_embedding.to(x.dtype)
        lat = (latent_tokens + self.latent_token_positional_embedding).to(x.dtype).expand(b, -1, -1)
        x = self.ln_pre(torch.cat([x, lat], dim=1))
        last = self.num_layers - 1
        for i, block in enumerate(self.transformer):  # last block: latent-token rows only
            x = block(x, slice(-n, None) if i == last else None)
        x = self.ln_post(x)  # [B, N, W]
        weight = self.conv_out.weight.flatten(1)  # [T, W]
        if self.is_legacy:
            # reshape(B, W, N, 1) of a contiguous [B, N, W] tensor: channel c of token n reads
            # flat element c*N + n of the sample.
            x = x.reshape(b, self.width, n)
            z = torch.matmul(weight, x) + self.conv_out.bias[:, None]  # [B, T, N]
        else:
            z = F.linear(x, weight, self.conv_out.bias).transpose(1, 2)  # [B, T, N]
        return z.unsqueeze(2)  # [B, T, 1, N]

    # token-reducer protocol (zoo_plugins.reducers.adapters.zoo_blocks)
    def reducer_blocks(self) -> list[nn.Module]:
        """The blocks a token reducer hooks into (``zoo.load("tome").apply(encoder, r=...)``)."""
        return list(self.transformer)

    def reducer_protected(self) -> tuple[int, int]:
        """Never merged: the leading class token and the trailing latent tokens (the output)."""
        return 1, self.num_latent_tokens


class TiTokDecoder(nn.Module):
    """Latent tokens [B, token_size, 1, n<=N] -> proxy-code logits [B, 1024, g, g] (legacy)
    or RGB [B, 3, H, W] (non-legacy).

    Sequence: ``[class | g*g mask tokens | n latent tokens]``; only the mask-token outputs are
    decoded. A prefix of ``n < N`` tokens (One-D-Piece) shortens the sequence.
    """

    def __init__(self, cfg):
        super().__init__()
        self.width, self.num_layers, heads = vit_dims(cfg.vit_dec_model_size)
        self.patch_size = int(cfg.vit_dec_patch_size)
        self.grid_size = int(cfg.crop_size) // self.patch_size
        self.num_latent_tokens = int(cfg.num_latent_tokens)
        self.token_size = int(cfg.token_size)
        self.is_legacy = bool(cfg.is_legacy)
        self.strict_length = bool(cfg.strict_length_assertion)
        w, scale = self.width, self.width ** -0.5
        self.decoder_embed = nn.Linear(self.token_size, w)
        self.class_embedding = nn.Parameter(scale * torch.randn(1, w))
        self.positional_embedding = nn.Parameter(scale * torch.randn(self.grid_size**2 + 1, w))
        self.mask_token = nn.Parameter(scale * torch.randn(1, 1, w))
        self.latent_token_positional_embedding = nn.Parameter(scale * torch.randn(self.num_latent_tokens, w))
        self.ln_pre = nn.LayerNorm(w)
        self.transformer = _blocks(w, self.num_layers, heads)
        self.ln_post = nn.LayerNorm(w)
        if self.is_legacy:
            self.ffn = nn.Sequential(
                nn.Conv2d(w, 2 * w, 1), nn.Tanh(), nn.Conv2d(2 * w, int(cfg.pixel_codebook_size), 1)
            )
            self.conv_out = nn.Identity()
        else:
            self.ffn = nn.Sequential(nn.Conv2d(w, self.patch_size**2 * 3, 1))
            self.conv_out = nn.Conv2d(3, 3, 3, padding=1)
        self._prefix_cache: tuple | None = None

    def _prefix(self, dtype: torch.dtype) -> torch.Tensor:
        """``ln_pre([class | mask tokens] + pos)``: constant for given weights, cached."""
        params = (self.class_embedding, self.mask_token, self.positional_embedding, self.ln_pre.weight, self.ln_pre.bias)
        key = tuple((p.data_ptr(), p._version) for p in params) + (dtype, self.training, torch.is_grad_enabled())
        if self._prefix_cache is not None and self._prefix_cache[0] == key:
            return self._prefix_cache[1]
        g2 = self.grid_size**2
        prefix = torch.cat([self.class_embedding[None], self.mask_token.expand(1, g2, -1)], dim=1)
        prefix = self.ln_pre((prefix + self.positional_embedding).to(dtype))  # [1, 1+g*g, W]
        if not torch.is_grad_enabled():
            self._prefix_cache = (key, prefix)
        return prefix

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        b, c, h, n = z.shape
        if h != 1 or c != self.token_size:
            raise InputError(f"TiTok decoder expects latents [B, {self.token_size}, 1, n], got {tuple(z.shape)}")
        if n > self.num_latent_tokens or (self.strict_length and n != self.num_latent_tokens) or n < 1:
            want = f"1..{self.num_latent_tokens}" if not self.strict_length else str(self.num_latent_tokens)
            raise InputError(f"TiTok decoder got {n} latent tokens; this model decodes {want}")
        x = self.decoder_embed(z.reshape(b, c, n).transpose(1, 2))  # [B, n, W]
        x = self.ln_pre(x + self.latent_token_positional_embedding[:n])
        prefix = self._prefix(x.dtype)
        x = torch.cat([prefix.expand(b, -1, -1), x], dim=1)
        patches = slice(1, 1 + self.grid_size**2)
        last = self.num_layers - 1
        for i, block in enumerate(self.transformer):  # last block: patch-query rows only
            x = block(x, patches if i == last else None)
        x = self.ln_post(x)  # [B, g*g, W]
        x = x.transpose(1, 2).reshape(b, self.width, self.grid_size, self.grid_size)
        x = self.ffn(x)
        if not self.is_legacy:
            p = self.patch_size
            x = x.reshape(b, p, p, 3, self.grid_size, self.grid_size)
            x = x.permute(0, 3, 4, 1, 5, 2).reshape(b, 3, self.grid_size * p, self.grid_size * p)
            x = self.conv_out(x)
        return x

