"""Attention signals of a VLM's vision tower, captured while it encodes the images.

transformers runs CLIP / SigLIP attention through a fused kernel that returns no weights, so the
capture recomputes what a reducer needs from the attention module's own input and projections
(``q_proj``, ``k_proj``, ``num_heads``, ``head_dim``, ``scale``: the stable attribute names of
every transformers CLIP-like attention module). Hooks live only for one encoding
(:class:`TowerAttention` is a context manager) and read, per layer asked for:

* ``column_means``: ``[V, N]`` mean attention each token receives (softmax, mean over heads and
  queries, prefix columns dropped): HiPrune's scores;
* ``cls_probs``: ``[V, N]`` the class token's attention row (softmax, mean over heads): EViT;
* ``cls_logits``: ``[V, N]`` the class token's pre-softmax logits ``q . k * scale`` averaged over
  heads: GlobalCom²'s scores.

Example:
    >>> import torch
    >>> from torch import nn
    >>> class Attn(nn.Module):
    ...     num_heads, head_dim, scale = 2, 2, 2 ** -0.5
    ...     def __init__(self):
    ...         super().__init__(); self.q_proj = nn.Linear(4, 4); self.k_proj = nn.Linear(4, 4)
    ...     def forward(self, hidden_states):
    ...         return hidden_states
    >>> attn = Attn()
    >>> with TowerAttention({0: attn}, {0: ("cls_logits",)}, num_prefix=1) as cap:
    ...     _ = attn(torch.randn(3, 5, 4))
    >>> cap.signals[0]["cls_logits"].shape
    torch.Size([3, 4])
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..types import ReducerError

__all__ = ["KINDS", "TowerAttention", "attention_layers", "vision_tower"]

KINDS = ("column_means", "cls_probs", "cls_logits")


def vision_tower(inner: nn.Module) -> nn.Module | None:
    """The vision tower of a transformers VLM's inner model (``vision_tower``; Qwen2-VL: ``visual``)."""
    return getattr(inner, "vision_tower", None) or getattr(inner, "visual", None)


def attention_layers(tower: nn.Module | None) -> list[nn.Module]:
    """The self-attention modules of a CLIP / SigLIP-like tower or of Qwen2-VL's vision
    transformer (``blocks[i].attn``: packed images, rotary, full attention per image), in order."""
    blocks = getattr(tower, "blocks", None)
    if blocks is not None and all(hasattr(getattr(b, "attn", None), "qkv") for b in blocks):
        if getattr(getattr(tower, "config", None), "fullatt_block_indexes", None) or hasattr(tower, "get_window_index"):
            raise ReducerError("this vision tower attends within windows in most layers (Qwen2.5-VL): its attention "
                               "maps are not per image; use a reducer that reads only the tokens (divprune, mmtok, dymu, tome)")
        return [b.attn for b in blocks]
    for path in ("vision_model.encoder.layers", "encoder.layers"):
        obj: Any = tower
        for part in path.split("."):
            obj = getattr(obj, part, None)
            if obj is None:
                break
        if obj is not None:
            layers = [getattr(layer, "self_attn", None) for layer in obj]
            if all(a is not None and all(hasattr(a, x) for x in ("q_proj", "k_proj", "num_heads", "head_dim")) for a in layers):
                return layers
    raise ReducerError(f"cannot read attention from the vision tower {type(tower).__name__}: the reducer needs a CLIP / "
                       "SigLIP-like tower (encoder.layers[i].self_attn with q_proj / k_proj) or Qwen2-VL's; use a reducer "
                       "that reads only the tokens (divprune, mmtok, dymu, tome)")


def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotary embedding of ``x`` ``[S, H, Dh]`` with ``cos`` / ``sin`` ``[S, Dh]`` (halves rotated)."""
    half = x.shape[-1] // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * cos[:, None] + rotated * sin[:, None]


def _packed_column_means(module: nn.Module, x: torch.Tensor, kwargs: dict) -> torch.Tensor:
    """``[S]`` column means of Qwen2-VL's vision attention: images packed along ``S``
    (``cu_seqlens``), rotary ``position_embeddings``, softmax per image, mean over heads and queries."""
    s, h = x.shape[0], int(module.num_heads)
    q, k, _ = module.qkv(x).reshape(s, 3, h, -1).permute(1, 0, 2, 3).unbind(0)
    cos, sin = (t.float() for t in kwargs["position_embeddings"])
    q, k = _rotate(q.float(), cos, sin), _rotate(k.float(), cos, sin)
    scale = float(getattr(module, "scaling", q.shape[-1] ** -0.5))
    cu = kwargs["cu_seqlens"].tolist()
    out = torch.zeros(s, device=x.device)
    for a, b in zip(cu[:-1], cu[1:]):
        qs, ks = q[a:b].transpose(0, 1), k[a:b].transpose(0, 1)              # [h, n, dh]
        for c in range(0, b - a, 256):
            out[a:b] += ((qs[:, c:c + 256] @ ks.transpose(-1, -2)) * scale).softmax(-1).sum(1).sum(0)
        out[a:b] /= h * (b - a)
    return out


class TowerAttention:
    """Capture attention signals at ``layers`` (``{index: module}``) while the context is open."""

    def __init__(self, layers: dict[int, nn.Module], kinds: dict[int, tuple[str, ...]], num_prefix: int = 1):
        self.layers = layers
        self.kinds = kinds
        self.num_prefix = num_prefix
        self.signals: dict[int, dict[str, torch.Tensor]] = {i: {} for i in layers}
        self._handles: list = []

    def _hook(self, index: int):
        def hook(module: nn.Module, args: tuple, kwargs: dict) -> None:
            x = args[0] if args else kwargs["hidden_states"]
            if hasattr(module, "qkv"):                     # Qwen2-VL: packed images, no class token
                if set(self.kinds[index]) - {"column_means"}:
                    raise ReducerError("Qwen2-VL's vision tower has no class token: only attention column means are read")
                with torch.no_grad():
                    self.signals[index].setdefault("column_means", []).append(_packed_column_means(module, x, kwargs))
                return
            with torch.no_grad():
                b, n, _ = x.shape
                h, dh = int(module.num_heads), int(module.head_dim)
                scale = float(getattr(module, "scale", dh ** -0.5))
                q = module.q_proj(x).view(b, n, h, dh).transpose(1, 2).float()
                k = module.k_proj(x).view(b, n, h, dh).transpose(1, 2).float()
                p = self.num_prefix
                out = self.signals[index]
                kinds = self.kinds[index]
                if "cls_logits" in kinds or "cls_probs" in kinds:
                    row = (q[:, :, :1] @ k.transpose(-1, -2))[:, :, 0] * scale          # [b, h, n]
                    if "cls_logits" in kinds:
                        out.setdefault("cls_logits", []).append(row.mean(1)[:, p:])
                    if "cls_probs" in kinds:
                        out.setdefault("cls_probs", []).append(row.softmax(-1).mean(1)[:, p:])
                if "column_means" in kinds:
                    cols = torch.zeros(b, n, device=x.device)
                    for s in range(0, n, 256):                                           # bounded memory
                        cols += ((q[:, :, s:s + 256] @ k.transpose(-1, -2)) * scale).softmax(-1).sum(2).sum(1)
                    out.setdefault("column_means", []).append((cols / (h * n))[:, p:])
        return hook

    def __enter__(self) -> TowerAttention:
        for i, module in self.layers.items():
            self._handles.append(module.register_forward_pre_hook(self._hook(i), with_kwargs=True))
        return self

    def __exit__(self, *exc: Any) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        for sig in self.signals.values():       # one entry per tower call (several when chunked)
            for kind, parts in list(sig.items()):
                if isinstance(parts, list):
                    sig[kind] = torch.cat(parts)
