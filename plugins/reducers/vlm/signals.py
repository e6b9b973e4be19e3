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

__all__ = ["KINDS", "TowerAttention", "attention_layers"]

KINDS = ("column_means", "cls_probs", "cls_logits")


def attention_layers(tower: nn.Module) -> list[nn.Module]:
    """The self-attention modules of a CLIP / SigLIP-like tower, in layer order."""
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
                       "SigLIP-like tower (encoder.layers[i].self_attn with q_proj / k_proj); use a reducer that reads "
                       "only the tokens (divprune, mmtok, dymu, tome)")


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
