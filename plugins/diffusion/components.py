"""The pieces a text-to-image generator depends on, as zoo models with their own cards:

* :class:`TextEncoder`: a transformers text encoder (``T5EncoderModel``) with its tokenizer;
  ``embed(texts)`` gives the hidden states and the attention mask a denoiser cross-attends to,
  ``encode(texts)`` the same as :class:`~zoo.interfaces.Latents` (a text encoder has no decoder);
* :class:`DiffusersVAE`: a diffusers ``AutoencoderKL`` as an image tokenizer (``encode(images)
  -> Latents``, ``decode(latents) -> images`` in ``[-1, 1]``), with ``scaling_factor`` /
  ``shift_factor`` applied where the generators need them (:meth:`DiffusersVAE.to_model_space`);
* :func:`shared_component`: one instance per (card, device, dtype, weights) in a process, so two
  generator cards that name the same text encoder hold one copy of it.

Example:
    >>> from zoo_plugins.diffusion.testing import tiny_vae
    >>> vae = tiny_vae()
    >>> import torch
    >>> z = vae.encode(torch.zeros(1, 3, 32, 32))
    >>> tuple(z.values.shape), z.meta["grid"]
    ((1, 16, 4), (4, 4))
    >>> tuple(vae.decode(z).shape)
    (1, 3, 32, 32)
"""

from __future__ import annotations

import threading
import weakref
from typing import Any, Callable, Optional, Sequence

import torch
from torch import nn

from zoo.errors import InputError, InputTypeError, TokenError, ZooError
from zoo.interfaces import Latents, as_latents
from zoo.model import ZooModel

__all__ = ["TextEncoder", "DiffusersVAE", "shared_component", "check_prompts"]

_SHARED: "weakref.WeakValueDictionary[tuple, nn.Module]" = weakref.WeakValueDictionary()
_LOCK = threading.Lock()


def shared_component(key: tuple, factory: Callable[[], nn.Module]) -> nn.Module:
    """The live component made for ``key`` in this process, or a new one from ``factory()``.

    Held weakly: once no generator uses it, it is freed.

    Example:
        >>> a = shared_component(("demo", 1), lambda: nn.Linear(1, 1))
        >>> shared_component(("demo", 1), lambda: nn.Linear(1, 1)) is a
        True
    """
    with _LOCK:
        found = _SHARED.get(key)
        if found is None:
            found = factory()
            _SHARED[key] = found
        return found


def check_prompts(prompt: Any, what: str = "prompt") -> list[str]:
    """A prompt or a list of prompts as a non-empty list of strings (else an InputError).

    Example:
        >>> check_prompts("a red fox"), check_prompts(["a", "b"])
        (['a red fox'], ['a', 'b'])
    """
    prompts = [prompt] if isinstance(prompt, str) else prompt
    if not isinstance(prompts, (list, tuple)) or not all(isinstance(p, str) for p in prompts):
        raise InputTypeError(f"{what} must be a string or a list of strings, got {type(prompt).__name__}")
    if not prompts:
        raise InputError(f"{what} is an empty list: give at least one prompt")
    return list(prompts)


class TextEncoder(ZooModel, nn.Module):
    """A transformers text encoder (``self.encoder``) and its tokenizer (``self.tokenizer``).

    ``embed(texts, max_length)`` pads every text to ``max_length`` tokens (truncating longer ones,
    as the diffusers pipelines do) and returns ``(hidden [B, L, D], mask [B, L])`` where ``L`` is
    ``max_length``, or, with ``trim=True``, the longest real length in the batch (the padding is
    masked out wherever these states are used, so trimming it changes nothing but the cost).
    """

    def __init__(self, encoder: nn.Module, tokenizer: Any, *, max_length: int = 512):
        super().__init__()
        self.encoder = encoder
        self.tokenizer = tokenizer
        self.max_length = max_length

    @property
    def hidden_size(self) -> int:
        return int(self.encoder.config.d_model if hasattr(self.encoder.config, "d_model") else self.encoder.config.hidden_size)

    def describe_facts(self) -> dict[str, Any]:
        return {"hidden_size": self.hidden_size, "max_length": self.max_length}

    def tokenize(self, texts: Sequence[str], max_length: Optional[int] = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(input_ids, attention_mask)`` ``[B, max_length]`` (padded to the length, truncated)."""
        texts = check_prompts(list(texts) if not isinstance(texts, str) else texts, "texts")
        if self.tokenizer is None:
            raise ZooError(f"{self.name} was built without its tokenizer files (pretrained=False): load it with weights=DIR "
                           "holding tokenizer/spiece.model, or attach a tokenizer (model.tokenizer = ...)")
        n = int(max_length or self.max_length)
        out = self.tokenizer(texts, padding="max_length", max_length=n, truncation=True, add_special_tokens=True,
                             return_tensors="pt")
        return out.input_ids, out.attention_mask

    @torch.no_grad()
    def embed(self, texts: Sequence[str], max_length: Optional[int] = None, *, trim: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """Hidden states ``[B, L, D]`` and mask ``[B, L]`` of ``texts`` (see the class docstring)."""
        ids, mask = self.tokenize(texts, max_length)
        if trim:
            keep = max(int(mask.sum(1).max()), 1)
            ids, mask = ids[:, :keep], mask[:, :keep]
        device = next(self.encoder.parameters()).device
        hidden = self.encoder(ids.to(device), attention_mask=mask.to(device))[0]
        return hidden, mask.to(device)

    def encode(self, texts: Sequence[str] | str, max_length: Optional[int] = None) -> Latents:
        """The hidden states as :class:`~zoo.interfaces.Latents` (``lengths``: real tokens per text)."""
        hidden, mask = self.embed(texts, max_length, trim=True)
        return Latents(values=hidden.float(), tokenizer=self.name, lengths=mask.sum(1).cpu(), meta={"kind": "text embeddings"})

    def decode(self, tokens: Any, **kwargs: Any) -> Any:
        raise TokenError(f"{self.name} is a text encoder: its embeddings cannot be decoded back to text")


class DiffusersVAE(ZooModel, nn.Module):
    """A diffusers ``AutoencoderKL`` (``self.vae``) behind zoo's tokenizer interface.

    ``encode(images [B, 3, H, W] in [-1, 1]) -> Latents`` (values ``[B, h*w, C]`` row-major,
    ``meta["grid"] = (h, w)``; the posterior mode, the VAE's raw latents) and ``decode``.
    Generators work in the scaled space ``(z - shift_factor) * scaling_factor``
    (:meth:`to_model_space` / :meth:`from_model_space`)."""

    def __init__(self, vae: nn.Module):
        super().__init__()
        self.vae = vae

    @property
    def scaling_factor(self) -> float:
        return float(self.vae.config.scaling_factor)

    @property
    def shift_factor(self) -> float:
        return float(getattr(self.vae.config, "shift_factor", None) or 0.0)

    @property
    def latent_channels(self) -> int:
        return int(self.vae.config.latent_channels)

    @property
    def downsample_factor(self) -> int:
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    def describe_facts(self) -> dict[str, Any]:
        return {"latent_channels": self.latent_channels, "downsample": self.downsample_factor, "scaling_factor": self.scaling_factor}

    def to_model_space(self, z: torch.Tensor) -> torch.Tensor:
        return (z - self.shift_factor) * self.scaling_factor

    def from_model_space(self, z: torch.Tensor) -> torch.Tensor:
        return z / self.scaling_factor + self.shift_factor

    def _check_images(self, images: Any) -> torch.Tensor:
        if not isinstance(images, torch.Tensor) or not images.is_floating_point():
            raise InputTypeError(f"images must be a float tensor [B, 3, H, W] in [-1, 1], got {type(images).__name__}")
        if images.dim() == 3:
            images = images[None]
        f = self.downsample_factor
        if images.dim() != 4 or images.shape[1] != 3 or images.shape[0] == 0:
            raise InputError(f"images must be [B>0, 3, H, W], got {tuple(images.shape)}")
        if images.shape[-2] % f or images.shape[-1] % f:
            raise InputError(f"image sides must be multiples of {f}, got {tuple(images.shape[-2:])}: crop or resize them")
        if not torch.isfinite(images).all():
            raise InputError("images hold NaN or Inf")
        return images

    @torch.no_grad()
    def encode(self, images: torch.Tensor, *, sample: bool = False, generator: Optional[torch.Generator] = None) -> Latents:
        images = self._check_images(images)
        p = next(self.vae.parameters())
        dist = self.vae.encode(images.to(p.device, p.dtype)).latent_dist
        z = dist.sample(generator) if sample else dist.mode()
        b, c, h, w = z.shape
        return Latents(values=z.flatten(2).transpose(1, 2).float(), tokenizer=self.name, meta={"grid": (h, w)})

    @torch.no_grad()
    def decode_raw(self, z: torch.Tensor) -> torch.Tensor:
        """Images ``[B, 3, H, W]`` (clamped to ``[-1, 1]``) of raw latents ``[B, C, h, w]``."""
        p = next(self.vae.parameters())
        return self.vae.decode(z.to(p.device, p.dtype), return_dict=False)[0].float().clamp(-1, 1)

    def decode(self, latents: Latents | torch.Tensor, grid: Optional[tuple[int, int]] = None) -> torch.Tensor:
        if isinstance(latents, torch.Tensor) and latents.dim() == 4:
            return self.decode_raw(latents)
        z = as_latents(latents, dim=self.latent_channels)
        h, w = grid or z.meta.get("grid") or (0, 0)
        if h * w != z.max_length:
            raise TokenError(f"cannot lay {z.max_length} latents on a grid {(h, w)}: pass grid=(h, w) or Latents with meta['grid']")
        return self.decode_raw(z.values.transpose(1, 2).reshape(len(z), -1, h, w))
