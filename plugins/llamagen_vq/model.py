"""The LlamaGen VQ tokenizer module on zoo's conv core (keys: zoo's names; the builder converts).

Stages, each usable on its own in the reference's conventions:

* :meth:`LlamaGenVQ.encode_latents`: images in [-1, 1] ``[B, 3, H, W]`` -> pre-quantisation
  latents ``[B, 8, H/f, W/f]`` (encoder + ``quant_conv``);
* :meth:`LlamaGenVQ.quantize_latents`: latents -> ``(codes, ids [B, h, w])`` (l2-normalised
  nearest codeword, :class:`zoo.nn.quantize.VectorQuantizer`);
* :meth:`LlamaGenVQ.decode_code`: ids ``[B, h*w]`` + grid -> images (the reference's
  ``decode_code``: ``get_codebook_entry``, ``post_quant_conv``, decoder; not clamped).

Tokens: :class:`zoo.interfaces.Tokens` with ids ``[B, h*w]`` (row-major over the latent grid,
as the reference flattens ``b h w``), ``codebook_size`` 16384 and ``meta["grid"] = (h, w)``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from zoo.errors import TokenError
from zoo.model import ZooModel
from zoo.nn.conv_ae import Decoder, Encoder, channels_last_
from zoo.nn.quantize import VectorQuantizer

from .config import LlamaGenVQConfig

__all__ = ["LlamaGenVQ"]


class LlamaGenVQ(ZooModel, nn.Module):
    """LlamaGen's VQGAN tokenizer: ``encode(images) -> Tokens``, ``decode(tokens) -> images``.

    Example:
        >>> cfg = LlamaGenVQConfig(ch=32, encoder_ch_mult=[1, 2], decoder_ch_mult=[1, 2], z_channels=32,
        ...                        codebook_size=64, num_res_blocks=1)
        >>> vq = LlamaGenVQ(cfg).eval()
        >>> tok = vq.encode(torch.rand(1, 3, 8, 12) * 2 - 1)
        >>> tuple(tok.ids.shape), tok.codebook_size, tok.meta["grid"]
        ((1, 24), 64, (4, 6))
        >>> tuple(vq.decode(tok).shape)
        (1, 3, 8, 12)
    """

    def __init__(self, config: LlamaGenVQConfig):
        super().__init__()
        self.config = config
        conv = config.conv_config()
        self.encoder = Encoder(conv)
        self.decoder = Decoder(conv)
        self.quantize = VectorQuantizer(config.codebook_size, config.codebook_embed_dim, l2_norm=config.codebook_l2_norm)
        self.quant_conv = nn.Conv2d(config.z_channels, config.codebook_embed_dim, 1)
        self.post_quant_conv = nn.Conv2d(config.codebook_embed_dim, config.z_channels, 1)
        channels_last_(self)

    # ------------------------------------------------------------------ facts
    @property
    def downsample_factor(self) -> int:
        return self.config.downsample_factor

    @property
    def codebook_size(self) -> int:
        return int(self.config.codebook_size)

    @property
    def image_size(self) -> int:
        """The training resolution (the default size ``zoo reconstruct`` resizes to)."""
        return int(self.config.image_size)

    default_name = "llamagen_vq"

    # ------------------------------------------------------------------ stages
    def _check_images(self, images: torch.Tensor) -> torch.Tensor:
        from zoo.media.image import check_images

        check_images(images, multiple_of=self.downsample_factor, model=self.name)
        p = self.quant_conv.weight
        return images.to(device=p.device, dtype=p.dtype).contiguous(memory_format=torch.channels_last)

    def encode_latents(self, images: torch.Tensor) -> torch.Tensor:
        """Images ``[B, 3, H, W]`` in [-1, 1] -> latents ``[B, codebook_embed_dim, H/f, W/f]`` (before quantisation)."""
        return self.quant_conv(self.encoder(self._check_images(images))).contiguous()

    def quantize_latents(self, latents: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Latents ``[B, D, h, w]`` -> ``(codes [B, D, h, w], ids [B, h, w])``."""
        return self.quantize(latents)

    def decode_code(self, ids: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        """Ids ``[B, h*w]`` (checked) on a ``grid`` -> images ``[B, 3, h*f, w*f]`` (not clamped)."""
        b = ids.shape[0]
        z = self.quantize.get_codebook_entry(ids.reshape(-1), (b, self.config.codebook_embed_dim, *grid))
        z = z.to(self.post_quant_conv.weight.dtype).contiguous(memory_format=torch.channels_last)
        return self.decoder(self.post_quant_conv(z)).contiguous()

    # ------------------------------------------------------------------ interface
    @torch.no_grad()
    def encode(self, images: torch.Tensor):
        """Images ``[B, 3, H, W]`` in [-1, 1] (H, W multiples of the downsampling factor) ->
        :class:`zoo.interfaces.Tokens` with ids ``[B, (H/f)*(W/f)]`` and ``meta["grid"]``."""
        from zoo.interfaces import Tokens

        z = self.encode_latents(images)
        _, ids = self.quantize_latents(z)
        return Tokens(ids=ids.flatten(1), codebook_size=self.codebook_size, tokenizer=self.name,
                      meta={"grid": (int(z.shape[-2]), int(z.shape[-1]))})

    def _ids_and_grid(self, tokens: Any, grid: tuple[int, int] | None) -> tuple[torch.Tensor, tuple[int, int]]:
        from zoo.interfaces import Tokens, as_tokens

        if isinstance(tokens, Tokens) and grid is None:
            grid = tokens.meta.get("grid")
        if not isinstance(tokens, (Tokens, torch.Tensor)):
            raise TokenError(f"{self.name} decodes Tokens from its encode() or ids [B, h*w]; got {type(tokens).__name__}")
        tok = as_tokens(tokens, self.codebook_size, self.name)
        if tok.ids.dim() != 2:
            raise TokenError(f"{self.name} decodes ids [B, h*w] (one codebook), got {tuple(tok.ids.shape)}")
        if tok.codebook_size != self.codebook_size:
            raise TokenError(f"tokens have codebook_size {tok.codebook_size}, {self.name} uses {self.codebook_size}")
        n = tok.ids.shape[-1]
        if bool((tok.lengths != n).any()):
            raise TokenError(f"{self.name} is a fixed-length 2D tokenizer: every image needs all its {n} "
                             f"positions, got lengths {tok.lengths.tolist()}")
        if grid is None:
            side = int(round(n ** 0.5))
            if side * side != n:
                raise TokenError(f"{n} ids are not a square grid; pass the Tokens from encode() (they carry "
                                 "meta['grid']) or grid=(h, w) for non-square images")
            grid = (side, side)
        grid = (int(grid[0]), int(grid[1]))
        if grid[0] * grid[1] > n:
            raise TokenError(f"{self.name} is a fixed-length 2D tokenizer: a {grid[0]}x{grid[1]} grid needs all "
                             f"{grid[0] * grid[1]} ids, got {n} (a truncated prefix cannot be decoded)")
        if grid[0] * grid[1] != n:
            raise TokenError(f"grid {grid} does not hold {n} ids")
        return tok.ids.to(self.quant_conv.weight.device).long(), grid

    @torch.no_grad()
    def decode(self, tokens: Any, clamp: bool = True, grid: tuple[int, int] | None = None) -> torch.Tensor:
        """Tokens (or ids ``[B, h*w]``: a square grid unless ``grid=(h, w)``) -> images
        ``[B, 3, h*f, w*f]`` in [-1, 1] (clamped unless ``clamp=False``)."""
        ids, grid = self._ids_and_grid(tokens, grid)
        out = self.decode_code(ids, grid)
        return out.clamp(-1.0, 1.0) if clamp else out
