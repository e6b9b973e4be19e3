"""The GigaTok tokenizer module: CNN encoder -> Q-Former -> VQ -> Q-Former -> CNN decoder.

Stages, each usable on its own in the reference's conventions:

* :meth:`GigaTok.encode_latents`: images in [-1, 1] ``[B, 3, 256, 256]`` -> pre-quantisation
  latents ``[B, 8, 1, 256]`` (CNN, 2D->1D Q-Former, ``quant_conv``);
* :meth:`GigaTok.quantize_latents`: latents -> ids ``[B, 256]`` (nearest L2-normalised codeword);
* :meth:`GigaTok.ids_to_codes`: ids -> normalised codewords ``[B, 8, 1, 256]``;
* :meth:`GigaTok.decode_codes`: codes -> images (not clamped).

The reference's quantiser applies the rotation trick (``rot``) in its forward pass; without
gradients it returns the codeword up to float rounding, so zoo decodes the codeword itself.
"""

from __future__ import annotations

import torch
from torch import nn

from zoo.model import ZooModel
from zoo.nn.quantize import lookup_codes, nearest_code

from ._core import InputError, InputTypeError, TokenError
from .config import GigaTokConfig
from .conv import CNNDecoder, build_encoder, conv_config
from .qformer import QFormerDecoder, QFormerEncoder

__all__ = ["GigaTok"]


class _Codebook(nn.Module):
    def __init__(self, size: int, dim: int):
        super().__init__()
        self.embedding = nn.Embedding(size, dim)


class GigaTok(ZooModel, nn.Module):
    """GigaTok hybrid 1D image tokenizer (256 tokens, one 16384-code book).

    Example:
        >>> cfg = GigaTokConfig(encoder_size="t", decoder_size="t", vit_sizes={"t": [64, 1, 2]}, ch=32,
        ...                     encoder_ch_mult=[1, 2], decoder_ch_mult=[1, 2], num_res_blocks=1, z_channels=32,
        ...                     codebook_size=64, num_latent_tokens=16, image_size=16)
        >>> m = GigaTok(cfg).eval()
        >>> tok = m.encode(torch.rand(2, 3, 16, 16) * 2 - 1)
        >>> tuple(tok.ids.shape), tuple(m.decode(tok).shape)
        ((2, 16), (2, 3, 16, 16))
    """

    def __init__(self, config: GigaTokConfig):
        super().__init__()
        config.validate()
        self.config = config
        c = config
        self.encoder = build_encoder(conv_config(c.ch, c.encoder_ch_mult, c.num_res_blocks, c.z_channels))
        self.s2to1encoder = QFormerEncoder(c.z_channels, c.encoder_width, c.encoder_layers, c.encoder_heads,
                                           c.grid_size, c.num_latent_tokens)
        self.quant_conv = nn.Conv2d(c.z_channels, c.codebook_embed_dim, 1)
        self.quantize = _Codebook(c.codebook_size, c.codebook_embed_dim)
        self.post_quant_conv = nn.Conv2d(c.codebook_embed_dim, c.z_channels, 1)
        self.s1to2decoder = QFormerDecoder(c.z_channels, c.decoder_width, c.decoder_layers, c.decoder_heads,
                                           c.grid_size, c.num_latent_tokens)
        self.decoder = CNNDecoder(conv_config(c.ch, c.decoder_ch_mult, c.num_res_blocks, c.z_channels))

    # ------------------------------------------------------------------ stages
    @property
    def image_size(self) -> int:
        return int(self.config.image_size)

    @property
    def codebook_size(self) -> int:
        return int(self.config.codebook_size)

    @property
    def num_tokens(self) -> int:
        return int(self.config.num_latent_tokens)

    def encode_latents(self, images: torch.Tensor) -> torch.Tensor:
        return self.quant_conv(self.s2to1encoder(self.encoder(images)))

    def quantize_latents(self, latents: torch.Tensor) -> torch.Tensor:
        flat = latents.permute(0, 2, 3, 1)  # [B, 1, N, C]
        return nearest_code(flat, self.quantize.embedding.weight, l2_norm=self.config.codebook_l2_norm).flatten(1)

    def ids_to_codes(self, ids: torch.Tensor) -> torch.Tensor:
        codes = lookup_codes(ids, self.quantize.embedding.weight, l2_norm=self.config.codebook_l2_norm)
        return codes.permute(0, 2, 1).unsqueeze(2)  # [B, C, 1, N]

    def decode_codes(self, codes: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.s1to2decoder(self.post_quant_conv(codes)))

    # ------------------------------------------------------------------ zoo interface
    default_name = "gigatok"

    def _check_images(self, images) -> torch.Tensor:
        s = self.image_size
        if not isinstance(images, torch.Tensor):
            raise InputTypeError(f"encode takes a float tensor [B, 3, {s}, {s}] in [-1, 1]; got {type(images).__name__} "
                                 f"(use zoo.media.image.to_tensor(images, size={s}))")
        if images.dim() == 3:
            images = images[None]
        if images.dim() != 4 or images.shape[1] != 3 or tuple(images.shape[-2:]) != (s, s):
            raise InputError(f"{self.name} takes images [B, 3, {s}, {s}] (its Q-Former has {s}x{s} position "
                             f"embeddings), got {tuple(images.shape)}; resize with zoo.media.image.to_tensor(images, size={s})")
        if not images.is_floating_point():
            raise InputTypeError(f"encode expects float images in [-1, 1], got {images.dtype}; "
                                 "convert uint8 images with zoo.media.image.to_tensor")
        if images.shape[0] == 0:
            raise InputError("encode got an empty batch (0 images)")
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
        """Images ``[B, 3, 256, 256]`` in ``[-1, 1]`` -> :class:`zoo.interfaces.Tokens` (ids ``[B, 256]``)."""
        from zoo.interfaces import Tokens  # noqa: PLC0415

        ids = self.quantize_latents(self.encode_latents(self._check_images(images)))
        return Tokens(ids=ids, codebook_size=self.codebook_size, tokenizer=self.name)

    @torch.no_grad()
    def decode(self, tokens, clamp: bool = True) -> torch.Tensor:
        """Tokens (or ids ``[B, 256]``) -> images ``[B, 3, 256, 256]`` in [-1, 1] (clamped unless
        ``clamp=False``). All 256 tokens of every image are needed."""
        from zoo.interfaces import as_tokens  # noqa: PLC0415

        tok = as_tokens(tokens, self.codebook_size, self.name)
        n = self.num_tokens
        if tok.ids.dim() != 2 or tok.ids.shape[1] != n or (tok.lengths != n).any():
            raise TokenError(f"{self.name} decodes exactly {n} tokens per image (one codebook), got ids "
                             f"{tuple(tok.ids.shape)} with lengths {tok.lengths.tolist()}")
        p = next(self.parameters())
        out = self.decode_codes(self.ids_to_codes(tok.ids.to(p.device)).to(p.dtype))
        return out.clamp(-1.0, 1.0) if clamp else out
