"""The pre-norm ViT block in timm's ``Block`` key layout (``norm1``, ``attn.qkv``, ``attn.proj``,
``norm2``, ``mlp.fc1``, ``mlp.fc2``), on zoo's attention entry point.

``forward(x, keep_last=n)`` returns only the last ``n`` rows: keys and values still come from
every token, but the queries, the output projection and the MLP run for those rows alone. An
encoder that reads out learned queries appended after the patches (LARP, TiTok-style 1-D
tokenizers) uses it in its last block; the rows kept are bitwise the rows of the full block
up to the attention kernel's rounding.

Example:
    >>> import torch
    >>> block = ViTBlock(32, heads=4).eval()
    >>> sorted({k.rsplit(".", 1)[0] for k in block.state_dict()})
    ['attn.proj', 'attn.qkv', 'mlp.fc1', 'mlp.fc2', 'norm1', 'norm2']
    >>> x = torch.randn(2, 10, 32)
    >>> torch.allclose(block(x)[:, -3:], block(x, keep_last=3), atol=1e-5)
    True
"""

from __future__ import annotations

import torch
from torch import nn

from zoo.nn.attention import attention
from zoo.nn.blocks import Mlp, SelfAttention, merge_heads, split_qkv

__all__ = ["ViTBlock"]


class ViTBlock(nn.Module):
    """``x + attn(norm1(x))`` then ``x + mlp(norm2(x))`` (timm ``Block`` without LayerScale/drop-path)."""

    def __init__(self, dim: int, heads: int, *, mlp_ratio: float = 4.0, qkv_bias: bool = False, norm_eps: float = 1e-5):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=norm_eps)
        self.attn = SelfAttention(dim, heads, qkv_bias=qkv_bias)
        self.norm2 = nn.LayerNorm(dim, eps=norm_eps)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor, keep_last: int | None = None) -> torch.Tensor:
        if keep_last is None:
            x = x + self.attn(self.norm1(x))
            return x + self.mlp(self.norm2(x))
        q, k, v = split_qkv(self.attn.qkv(self.norm1(x)), self.attn.heads)
        q = q[:, :, -keep_last:]
        x = x[:, -keep_last:] + self.attn.proj(merge_heads(attention(q, k, v, backend=self.attn.attn_backend)))
        return x + self.mlp(self.norm2(x))
