"""The WeTok tokenizer module (state-dict layout = the official checkpoints' EMA-selected keys).

Stages, each usable on its own in the reference's conventions:

* :meth:`WeTok.encode_latents`: images in [-1, 1] ``[B, 3, H, W]`` -> latents ``[B, G*K, h, w]``;
* :meth:`WeTok.quantize_latents`: latents -> ``(codes in {-1, +1}, ids [B, G, h*w])``
  (group-LFQ, :class:`zoo.nn.quantize.LFQ`: channel ``g*K`` is the least significant bit of
  group ``g``);
* :meth:`WeTok.ids_to_codes`: ids ``[B, G, h*w]`` -> codes ``[B, G*K, h, w]``;
* :meth:`WeTok.decode_codes`: codes -> images (not clamped); the generative decoder
  (``gan_decoder``) draws its noise from a caller's :class:`torch.Generator`.

Token layout: :class:`zoo.interfaces.Tokens` with ``ids [B, G, h*w]`` (one row per group, each a
``2**K``-code book, positions row-major over the latent grid) and ``meta["grid"] = (h, w)``.
The reference's flat index tensor (``[B*h*w*G]``, position-major) is
``ids.permute(0, 2, 1).reshape(-1)``; :func:`from_reference_ids` goes the other way.
"""

from __future__ import annotations

import torch
from torch import nn

from zoo.model import ZooModel
from zoo.nn.magvit2 import ConvConfig, Decoder, Encoder
from zoo.nn.quantize import LFQ

from ._core import InputError, InputTypeError, TokenError
from .config import WeTokConfig

__all__ = ["WeTok", "from_reference_ids"]


def from_reference_ids(flat: torch.Tensor, batch: int, groups: int) -> torch.Tensor:
    """The reference's flat indices ``[B*N*G]`` -> zoo's ``[B, G, N]``.

    Example:
        >>> from_reference_ids(torch.arange(8), batch=1, groups=2).tolist()
        [[[0, 2, 4, 6], [1, 3, 5, 7]]]
    """
    return flat.reshape(batch, -1, groups).permute(0, 2, 1).contiguous()


class WeTok(ZooModel, nn.Module):
    """WeTok group-LFQ image tokenizer (Open-MAGVIT2 conv encoder/decoder).

    Example:
        >>> cfg = WeTokConfig(ch=32, ch_mult=[1, 2], num_res_blocks=1, z_channels=8, n_embed=16, num_codebooks=2)
        >>> m = WeTok(cfg).eval()
        >>> tok = m.encode(torch.rand(1, 3, 16, 24) * 2 - 1)
        >>> tuple(tok.ids.shape), tok.codebook_size, tok.meta["grid"]
        ((1, 2, 96), 16, (8, 12))
        >>> tuple(m.decode(tok).shape)
        (1, 3, 16, 24)
    """

    def __init__(self, config: WeTokConfig):
        super().__init__()
        config.validate()
        self.config = config
        conv = ConvConfig(ch=config.ch, ch_mult=tuple(config.ch_mult), num_res_blocks=config.num_res_blocks,
                          z_channels=config.z_channels, in_channels=config.in_channels, out_ch=config.out_ch)
        self.encoder = Encoder(conv)
        self.decoder = Decoder(conv, noise_input=config.gan_decoder)
        self.quantize = LFQ(bits=config.bits_per_group, groups=config.num_codebooks)

    # ------------------------------------------------------------------ stages
    @property
    def downsample_factor(self) -> int:
        return self.config.downsample_factor

    @property
    def image_size(self) -> int:
        """The side ``zoo reconstruct`` resizes inputs to (any multiple of the factor encodes)."""
        return int(self.config.image_size)

    @property
    def codebook_size(self) -> int:
        """Codes per group (``n_embed``); each position carries ``num_codebooks`` ids."""
        return int(self.config.n_embed)

    def encode_latents(self, images: torch.Tensor) -> torch.Tensor:
        return self.encoder(images)

    def quantize_latents(self, latents: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b, c, h, w = latents.shape
        codes, ids = self.quantize(latents.permute(0, 2, 3, 1))  # [B, h, w, C], [B, h, w, G]
        return codes.permute(0, 3, 1, 2), ids.reshape(b, h * w, -1).transpose(1, 2)

    def ids_to_codes(self, ids: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        b, _, n = ids.shape
        h, w = grid
        codes = self.quantize.indices_to_codes(ids.transpose(1, 2))  # [B, N, C]
        p = next(self.parameters())
        return codes.to(dtype=p.dtype, device=p.device).transpose(1, 2).reshape(b, -1, h, w)

    def decode_codes(self, codes: torch.Tensor, noise: torch.Tensor | None = None,
                     generator: torch.Generator | None = None) -> torch.Tensor:
        return self.decoder(codes, noise=noise, generator=generator)

    # ------------------------------------------------------------------ zoo interface
    default_name = "wetok"

    def _check_images(self, images: torch.Tensor) -> torch.Tensor:
        f = self.downsample_factor
        if not isinstance(images, torch.Tensor):
            raise InputTypeError(f"encode takes a float tensor [B, 3, H, W] in [-1, 1]; got {type(images).__name__} "
                                 "(convert PIL images / uint8 arrays with zoo.media.image.to_tensor)")
        if images.dim() == 3:
            images = images[None]
        if images.dim() != 4 or images.shape[1] != self.config.in_channels:
            raise InputError(f"encode expects images [B, 3, H, W], got {tuple(images.shape)}")
        if not images.is_floating_point():
            raise InputTypeError(f"encode expects float images in [-1, 1], got {images.dtype}; "
                                 "convert uint8 images with zoo.media.image.to_tensor")
        if images.shape[0] == 0:
            raise InputError("encode got an empty batch (0 images)")
        h, w = images.shape[-2:]
        if h < f or w < f or h % f or w % f:
            raise InputError(f"{self.name} downsamples by {f}: height and width must be positive multiples of {f}, "
                             f"got {h}x{w}; resize or crop with zoo.media.image.to_tensor(images, size=...)")
        if not bool(torch.isfinite(images).all()):
            raise InputError(f"images hold NaN/Inf pixel values; {self.name} encodes finite pixels in [-1, 1] only")
        lo, hi = float(images.min()), float(images.max())
        if lo < -1.001 or hi > 1.001:
            raise InputError(f"encode expects images in [-1, 1], got values in [{lo:.3g}, {hi:.3g}]"
                             + ("; images in [0, 255] must be scaled (x / 127.5 - 1)" if hi > 2 else ""))
        p = next(self.parameters())
        return images.to(device=p.device, dtype=p.dtype)

    @torch.no_grad()
    def encode(self, images: torch.Tensor):
        """Images ``[B, 3, H, W]`` in ``[-1, 1]`` (H, W multiples of the downsampling factor) ->
        :class:`zoo.interfaces.Tokens` with ids ``[B, G, (H/f)*(W/f)]`` and ``meta["grid"]``."""
        from zoo.interfaces import Tokens  # noqa: PLC0415

        x = self._check_images(images)
        z = self.encode_latents(x)
        _, ids = self.quantize_latents(z)
        return Tokens(ids=ids, codebook_size=self.codebook_size, tokenizer=self.name,
                      meta={"grid": (int(z.shape[-2]), int(z.shape[-1]))})

    def _ids_and_grid(self, tokens) -> tuple[torch.Tensor, tuple[int, int]]:
        from zoo.interfaces import Tokens, as_tokens  # noqa: PLC0415

        grid = tokens.meta.get("grid") if isinstance(tokens, Tokens) else None
        if isinstance(tokens, torch.Tensor) and tokens.dim() == 3:
            tok = Tokens(ids=tokens, codebook_size=self.codebook_size, tokenizer="")
            as_tokens(tok.ids[:, 0], self.codebook_size)  # dtype / range checks
            as_tokens(tok.ids.flatten(1), self.codebook_size)
        else:
            tok = tokens if isinstance(tokens, Tokens) else None
            if tok is None:
                raise TokenError(f"{self.name} decodes Tokens from its encode() or ids [B, "
                                 f"{self.config.num_codebooks}, h*w]; got {type(tokens).__name__}"
                                 + (f" of shape {tuple(tokens.shape)}" if isinstance(tokens, torch.Tensor) else ""))
            if tok.tokenizer and tok.tokenizer != self.name:
                as_tokens(tok, self.codebook_size, self.name)  # raises: made by another tokenizer
            if tok.ids.dim() != 3:
                raise TokenError(f"{self.name} decodes ids [B, {self.config.num_codebooks}, h*w] (one row per LFQ group), "
                                 f"got {tuple(tok.ids.shape)}")
            if tok.codebook_size != self.codebook_size:
                raise TokenError(f"tokens have codebook_size {tok.codebook_size}, {self.name} uses {self.codebook_size}")
            as_tokens(tok.ids.flatten(1), self.codebook_size)
            if (tok.lengths != tok.ids.shape[-1]).any():
                raise TokenError(f"{self.name} is a fixed-length 2D tokenizer: every image needs all its "
                                 f"{tok.ids.shape[-1]} positions, got lengths {tok.lengths.tolist()}")
        ids = tok.ids
        if ids.shape[0] == 0:
            raise TokenError("decode got an empty batch")
        if ids.shape[1] != self.config.num_codebooks:
            raise TokenError(f"{self.name} has {self.config.num_codebooks} LFQ groups, got ids with {ids.shape[1]} rows "
                             f"({tuple(ids.shape)}); tokens from another WeTok release?")
        n = ids.shape[-1]
        if grid is None:
            side = int(round(n**0.5))
            if side * side != n:
                raise TokenError(f"{n} positions are not a square grid; pass the Tokens from encode() (they carry "
                                 "meta['grid']) for non-square images")
            grid = (side, side)
        grid = (int(grid[0]), int(grid[1]))
        if grid[0] * grid[1] != n:
            raise TokenError(f"{self.name} is a fixed-length 2D tokenizer: decoding needs all {grid[0] * grid[1]} "
                             f"positions of the {grid[0]}x{grid[1]} grid (meta['grid']), got {n}")
        return ids.to(next(self.parameters()).device), grid

    @torch.no_grad()
    def decode(self, tokens, clamp: bool = True, generator: torch.Generator | None = None) -> torch.Tensor:
        """Tokens (or ids ``[B, G, h*w]``, square grid) -> images ``[B, 3, h*f, w*f]`` in [-1, 1]
        (clamped unless ``clamp=False``). ``generator`` seeds the generative decoder's noise
        (GeneralDomain compratio768); other releases are deterministic."""
        ids, grid = self._ids_and_grid(tokens)
        out = self.decode_codes(self.ids_to_codes(ids, grid), generator=generator)
        return out.clamp(-1.0, 1.0) if clamp else out
