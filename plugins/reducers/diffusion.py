"""ToMe for diffusion denoisers (after Bolya & Hoffman, "Token Merging for Fast Stable Diffusion",
CVPRW 2023; dbolya/tomesd, MIT), as a diffusers attention processor.

Before each self-attention over image tokens, the ``ratio * N`` tokens most similar to a
destination token are merged into it (destinations: one token per ``sy x sx`` cell of the token
grid, the cell's top-left token or, with a ``generator``, a random one per call as tomesd does);
the attention runs on the merged tokens and its output is copied back to every token of a group
(unmerge). The wrapper sits around the attention module's own processor, so it works wherever
diffusers runs its ``Attention``: the UNet's ``attn1`` (tomesd's case), PixArt's DiT blocks and
SD3's joint MMDiT blocks (only the image stream is merged; the text stream and cross-attention
are untouched). tomesd patches ``BasicTransformerBlock.forward`` and falls back to the UNet
block layout, which does not fit DiT / MMDiT blocks; a processor does not depend on the block.

The token grid is read from the denoiser's input (a forward pre-hook records ``H x W`` latents
and the patch size): a call with ``N`` tokens is at downsampling ``sqrt(H W / N) / patch``;
only calls at ``<= max_downsample`` merge (1: the UNet's highest-resolution blocks, every DiT
block). The planning step is the bipartite pattern of zoo's ToMe
(:func:`~zoo_plugins.reducers.merge.bipartite_plan`) with a grid partition: a
:class:`~zoo_plugins.reducers.types.Plan` with ``merge`` and ``slots``; unmerge is a gather on
``slots``.

Example:
    >>> import torch
    >>> plan = partition_plan(torch.randn(1, 16, 8), 6, grid_destinations(4, 4))
    >>> merged, size = plan.merge(torch.randn(1, 16, 8), None)
    >>> merged.shape, int(size.sum())
    (torch.Size([1, 10, 8]), 16)
"""

from __future__ import annotations

import inspect
import math
from typing import Any, Optional

import torch

from zoo.errors import InputError

from .types import Plan

__all__ = ["grid_destinations", "partition_plan", "ToMeSDHandle", "apply_tome_sd"]


def grid_destinations(h: int, w: int, sx: int = 2, sy: int = 2, generator: Optional[torch.Generator] = None,
                      device: Any = None) -> torch.Tensor:
    """Row-major positions of one destination token per whole ``sy x sx`` cell of an ``h x w`` grid
    (the top-left one, or a random one per cell drawn from ``generator``); sorted.

    Example:
        >>> grid_destinations(4, 4).tolist()
        [0, 2, 8, 10]
    """
    hs, ws = h // sy, w // sx
    if generator is None:
        off = torch.zeros(hs, ws, dtype=torch.long)
    else:
        off = torch.randint(sy * sx, (hs, ws), generator=generator)
    rows = torch.arange(hs)[:, None] * sy + off // sx
    cols = torch.arange(ws)[None, :] * sx + off % sx
    return (rows * w + cols).flatten().sort().values.to(device)


def partition_plan(metric: torch.Tensor, r: int, dst: torch.Tensor) -> Plan | None:
    """Merge the ``r`` source tokens (all not in ``dst``) most similar (cosine of ``metric``
    ``[B, N, C]``) to their best destination into it: output ``[unmerged sources (in position
    order), destinations]``; a group's value is the mean (size-weighted with ``size``). None when
    nothing merges."""
    b, n, _ = metric.shape
    dev = metric.device
    is_dst = torch.zeros(n, dtype=torch.bool, device=dev)
    is_dst[dst] = True
    src = (~is_dst).nonzero()[:, 0]
    r = min(int(r), src.numel())
    if r <= 0 or dst.numel() == 0:
        return None
    with torch.no_grad():
        m = metric / metric.norm(dim=-1, keepdim=True)
        scores = m[:, src] @ m[:, dst].transpose(1, 2)
        node_max, node_idx = scores.max(dim=-1)
        order = node_max.argsort(dim=-1, descending=True)
        merged = order[:, :r]
        unmerged = order[:, r:].sort(dim=-1).values
        n_unm = src.numel() - r
        n_out = n_unm + dst.numel()
        keep_pos = torch.cat([src[unmerged], dst.expand(b, -1)], dim=1)  # [B, n_out] input positions
        merged_pos = src[merged]  # [B, r]
        target = n_unm + node_idx.gather(1, merged)  # [B, r] output rows

    def merge(x: torch.Tensor, size: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        c = x.shape[-1]
        s = torch.ones(b, n, 1, dtype=x.dtype, device=x.device) if size is None else size
        xs = x * s if size is not None else x
        out = xs.gather(1, keep_pos[..., None].expand(-1, -1, c))
        out = out.scatter_add(1, target[..., None].expand(-1, -1, c), xs.gather(1, merged_pos[..., None].expand(-1, -1, c)))
        new_size = s.gather(1, keep_pos[..., None]).scatter_add(1, target[..., None], s.gather(1, merged_pos[..., None]))
        return out / new_size, new_size

    def slots() -> torch.Tensor:
        out = torch.empty(b, n, dtype=torch.long, device=dev)
        out.scatter_(1, keep_pos, torch.arange(n_out, device=dev).expand(b, -1))
        out.scatter_(1, merged_pos, target)
        return out

    return Plan(merge=merge, slots=slots, num_out=n_out)


class _State:
    """What the processors of one patched denoiser share: the options and the latent grid."""

    def __init__(self, ratio: float, sx: int, sy: int, max_downsample: int, generator: Optional[torch.Generator], patch: int):
        self.ratio, self.sx, self.sy, self.max_downsample, self.generator, self.patch = ratio, sx, sy, max_downsample, generator, patch
        self.grid: tuple[int, int] | None = None
        self.merged_calls = 0

    def plan_for(self, x: torch.Tensor) -> Plan | None:
        if self.grid is None or self.ratio <= 0 or x.dim() != 3:
            return None
        hh, ww = self.grid
        n = x.shape[1]
        ds = math.sqrt(hh * ww / n)
        d = int(round(ds))
        if d < 1 or (hh // d) * (ww // d) != n or d / self.patch > self.max_downsample:
            return None
        h, w = hh // d, ww // d
        dst = grid_destinations(h, w, self.sx, self.sy, self.generator, device=x.device)
        plan = partition_plan(x, int(n * self.ratio), dst)
        if plan is not None:
            self.merged_calls += 1
        return plan


class _MergingProcessor:
    """Wraps an attention processor: merge the image tokens, attend, unmerge."""

    def __init__(self, inner: Any, state: _State):
        self.inner = inner
        self.state = state
        self._accepts = set(inspect.signature(inner.__call__).parameters)

    def __call__(self, attn: Any, hidden_states: torch.Tensor, encoder_hidden_states: Optional[torch.Tensor] = None,
                 attention_mask: Optional[torch.Tensor] = None, temb: Optional[torch.Tensor] = None,
                 image_rotary_emb: Any = None) -> Any:
        extra = {k: v for k, v in (("temb", temb), ("image_rotary_emb", image_rotary_emb)) if v is not None and k in self._accepts}
        plan = None if attention_mask is not None or image_rotary_emb is not None else self.state.plan_for(hidden_states)
        if plan is None:
            return self.inner(attn, hidden_states, encoder_hidden_states, attention_mask, **extra)
        merged, _ = plan.merge(hidden_states, None)
        out = self.inner(attn, merged, encoder_hidden_states, attention_mask, **extra)
        idx = plan.slots()

        def unmerge(y: torch.Tensor) -> torch.Tensor:
            return y.gather(1, idx[..., None].expand(-1, -1, y.shape[-1]))

        return (unmerge(out[0]), *out[1:]) if isinstance(out, tuple) else unmerge(out)


class ToMeSDHandle:
    """What ``zoo.load("tome_sd").apply(...)`` returns: ``remove()`` restores every processor and
    removes the hook (the denoiser is then bit-identical to before); ``merged_calls`` counts the
    attention calls that merged. A context manager too."""

    def __init__(self, denoiser: torch.nn.Module, state: _State, originals: list[tuple[Any, Any]], hook: Any):
        self.denoiser, self.state, self._originals, self._hook = denoiser, state, originals, hook
        self.removed = False

    @property
    def merged_calls(self) -> int:
        return self.state.merged_calls

    @property
    def patched_modules(self) -> int:
        return len(self._originals)

    def remove(self) -> None:
        if self.removed:
            return
        for module, processor in self._originals:
            module.processor = processor
        self._hook.remove()
        self.removed = True

    def __enter__(self) -> "ToMeSDHandle":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.remove()


def _denoiser(model: Any) -> torch.nn.Module:
    for attr in ("transformer", "unet"):  # zoo generators and diffusers pipelines hold it under one of these
        inner = getattr(model, attr, None)
        if isinstance(inner, torch.nn.Module):
            return inner
    if isinstance(model, torch.nn.Module):
        return model
    raise InputError(f"tome_sd.apply needs a diffusers denoiser (UNet / DiT / MMDiT) or a pipeline holding one, got {type(model).__name__}")


def _self_attentions(denoiser: torch.nn.Module) -> list[torch.nn.Module]:
    """diffusers ``Attention`` modules over image tokens: not cross-attention, no residual or
    group/spatial norm inside (those belong to VAE-style blocks)."""
    out = []
    for m in denoiser.modules():
        if type(m).__name__ != "Attention" or not hasattr(m, "processor"):
            continue
        if getattr(m, "is_cross_attention", False) or getattr(m, "residual_connection", False):
            continue
        if getattr(m, "group_norm", None) is not None or getattr(m, "spatial_norm", None) is not None:
            continue
        out.append(m)
    return out


def apply_tome_sd(model: Any, ratio: float = 0.5, *, sx: int = 2, sy: int = 2, max_downsample: int = 1,
                  generator: Optional[torch.Generator] = None) -> ToMeSDHandle:
    """Patch the denoiser of ``model`` in place (see the module docstring)."""
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0 <= ratio < 1:
        raise InputError(f"ratio must be a number in [0, 1) (the share of image tokens merged), got {ratio!r}")
    for name, v in (("sx", sx), ("sy", sy), ("max_downsample", max_downsample)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise InputError(f"{name} must be a whole number >= 1, got {v!r}")
    if generator is not None and not isinstance(generator, torch.Generator):
        raise InputError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    denoiser = _denoiser(model)
    if any(isinstance(getattr(m, "processor", None), _MergingProcessor) for m in denoiser.modules()):
        raise InputError("this denoiser already carries tome_sd: remove the first handle before applying again")
    attns = _self_attentions(denoiser)
    if not attns:
        raise InputError(f"no diffusers self-attention found in {type(denoiser).__name__}: tome_sd works on diffusers UNets, DiTs and MMDiTs")
    cfg = getattr(denoiser, "config", None)
    patch = int(getattr(cfg, "patch_size", None) or 1) if cfg is not None else 1
    state = _State(float(ratio), sx, sy, max_downsample, generator, patch)

    def record_grid(module: torch.nn.Module, args: tuple, kwargs: dict) -> None:
        x = args[0] if args else kwargs.get("hidden_states", kwargs.get("sample"))
        state.grid = tuple(x.shape[-2:]) if isinstance(x, torch.Tensor) and x.dim() == 4 else None

    hook = denoiser.register_forward_pre_hook(record_grid, with_kwargs=True)
    originals = [(m, m.processor) for m in attns]
    for m, proc in originals:
        m.processor = _MergingProcessor(proc, state)
    return ToMeSDHandle(denoiser, state, originals, hook)
