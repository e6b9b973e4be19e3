"""VAR's multi-scale VQVAE (``vae_ch160v4096z32.pth``) on zoo's conv core and multi-scale VQ.

* :meth:`VARVQVAE.encode_latents`: images ``[B, 3, H, W]`` in [-1, 1] -> ``f`` ``[B, 32, H/16, W/16]``
  (encoder + ``quant_conv``);
* :meth:`VARVQVAE.encode`: -> :class:`zoo.interfaces.Tokens`, ids ``[B, L]`` = every scale's ids
  concatenated coarse to fine (``L = sum(h_k * w_k)``, 680 at 256 px), ``meta["scales"]`` the
  schedule;
* :meth:`VARVQVAE.decode`: Tokens (all scales, or a prefix that ends on a scale boundary: a
  coarser picture) -> images in [-1, 1];
* :meth:`VARVQVAE.fhat_to_img`: ``f_hat`` -> images (``post_quant_conv`` + decoder, clamped), what
  the generator decodes its latents with.

Example:
    >>> from zoo_plugins.var.config import VQVAEConfig
    >>> vae = VARVQVAE(VQVAEConfig(ch=32, ch_mult=[1, 2], num_res_blocks=1, z_channels=8, vocab_size=64,
    ...                            v_patch_nums=[1, 2, 4])).eval()
    >>> tok = vae.encode(torch.zeros(1, 3, 8, 8))
    >>> tuple(tok.ids.shape), tok.meta["scales"]
    ((1, 21), [[1, 1], [2, 2], [4, 4]])
    >>> tuple(vae.decode(tok).shape), tuple(vae.decode(tok.truncate(5)).shape)
    ((1, 3, 8, 8), (1, 3, 8, 8))
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from zoo.errors import TokenError
from zoo.model import ZooModel
from zoo.nn.conv_ae import Decoder, Encoder
from zoo.nn.multiscale_vq import MultiScaleResidualVQ, as_scales, scale_lengths

from .config import VQVAEConfig

__all__ = ["VARVQVAE"]


class VARVQVAE(ZooModel, nn.Module):
    """VAR's tokenizer: ``encode(images) -> Tokens`` (multi-scale ids), ``decode(tokens) -> images``."""

    def __init__(self, config: VQVAEConfig):
        super().__init__()
        self.config = c = config
        conv = c.conv_config()
        self.encoder = Encoder(conv)
        self.decoder = Decoder(conv)
        self.quantize = MultiScaleResidualVQ(
            c.vocab_size, c.z_channels, c.v_patch_nums, phi_ratio=c.quant_resi, phi_sharing=c.share_quant_resi,
            phi_count=c.default_qresi_counts, l2_norm=c.using_znorm)
        k = c.quant_conv_ks
        self.quant_conv = nn.Conv2d(c.z_channels, c.z_channels, k, stride=1, padding=k // 2)
        self.post_quant_conv = nn.Conv2d(c.z_channels, c.z_channels, k, stride=1, padding=k // 2)

    # ------------------------------------------------------------------ facts
    @property
    def codebook_size(self) -> int:
        return int(self.config.vocab_size)

    @property
    def downsample_factor(self) -> int:
        return self.config.downsample_factor

    @property
    def image_size(self) -> int:
        """The training resolution (the last scale times the downsampling factor)."""
        return int(as_scales(self.config.v_patch_nums)[-1][0] * self.downsample_factor)

    default_name = "var_vqvae"

    # ------------------------------------------------------------------ stages
    def encode_latents(self, images: torch.Tensor, scales: Sequence[Any] | None = None) -> torch.Tensor:
        """Images ``[B, 3, H, W]`` in [-1, 1] -> ``f`` ``[B, C, H/16, W/16]`` (before quantisation).
        ``H/16 x W/16`` must be the schedule's last scale."""
        from zoo.media.image import check_images

        sc = as_scales(scales or self.config.v_patch_nums)
        f = self.downsample_factor
        size = (sc[-1][0] * f, sc[-1][1] * f)
        check_images(images, size=size if size[0] != size[1] else size[0], model=self.name)
        p = self.quant_conv.weight
        return self.quant_conv(self.encoder(images.to(device=p.device, dtype=p.dtype)))

    def fhat_to_img(self, f_hat: torch.Tensor, clamp: bool = True) -> torch.Tensor:
        """``f_hat`` ``[B, C, h, w]`` -> images ``[B, 3, 16h, 16w]`` (clamped to [-1, 1] unless ``clamp=False``)."""
        p = self.post_quant_conv.weight
        out = self.decoder(self.post_quant_conv(f_hat.to(device=p.device, dtype=p.dtype)))
        return out.clamp_(-1, 1) if clamp else out

    # ------------------------------------------------------------------ interface
    @torch.no_grad()
    def encode(self, images: torch.Tensor, scales: Sequence[Any] | None = None):
        """Images -> :class:`zoo.interfaces.Tokens` (ids of every scale, coarse first, concatenated;
        ``meta["scales"]`` lists ``[h, w]`` per scale)."""
        from zoo.interfaces import Tokens

        sc = as_scales(scales or self.config.v_patch_nums)
        ids = self.quantize.encode(self.encode_latents(images, sc), sc)
        return Tokens(ids=torch.cat(ids, dim=1), codebook_size=self.codebook_size, tokenizer=self.name,
                      meta={"scales": [list(s) for s in sc]})

    def split_scales(self, tokens: Any, scales: Sequence[Any] | None = None) -> tuple[list[torch.Tensor], tuple]:
        """Tokens (or ids ``[B, L]``) -> ``(ids per scale, schedule)``. A prefix must end on a scale boundary."""
        from zoo.interfaces import Tokens, as_tokens

        if isinstance(tokens, Tokens) and scales is None and "scales" in tokens.meta:
            scales = tokens.meta["scales"]
        if not isinstance(tokens, (Tokens, torch.Tensor)):
            raise TokenError(f"{self.name} decodes Tokens from its encode() or ids [B, L]; got {type(tokens).__name__}")
        tok = as_tokens(tokens, self.codebook_size, self.name)
        if tok.ids.dim() != 2:
            raise TokenError(f"{self.name} decodes ids [B, L] (all scales concatenated), got {tuple(tok.ids.shape)}")
        sc = as_scales(scales or self.config.v_patch_nums)
        sizes = scale_lengths(sc)
        n = int(tok.lengths.max()) if tok.ids.shape[0] else 0
        if bool((tok.lengths != n).any()):
            raise TokenError(f"{self.name}: every image of a batch needs the same number of scales, got lengths {tok.lengths.tolist()}")
        bounds = [sum(sizes[: k + 1]) for k in range(len(sizes))]
        if n not in bounds:
            raise TokenError(f"{self.name} decodes whole scales: {n} ids do not end on a scale boundary of "
                             f"{[list(s) for s in sc]} (cumulative lengths {bounds})")
        ids = tok.ids[:, :n].to(self.quant_conv.weight.device).long()
        return list(ids.split(sizes[: bounds.index(n) + 1], dim=1)), sc

    @torch.no_grad()
    def decode(self, tokens: Any, clamp: bool = True, scales: Sequence[Any] | None = None) -> torch.Tensor:
        """Tokens (every scale, or the first ``k`` scales for a coarser picture) -> images
        ``[B, 3, H, W]`` in [-1, 1]."""
        ids, sc = self.split_scales(tokens, scales)
        return self.fhat_to_img(self.quantize.decode(ids, sc), clamp=clamp)
