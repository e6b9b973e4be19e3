"""The TiTok / One-D-Piece tokenizer module (state-dict layout = the official checkpoints).

Stages (each usable on its own, all in TiTok's own conventions):

* :meth:`TiTok.encode_latents`: RGB in [0, 1] -> pre-quantisation latents [B, C, 1, N]
  (VAE models: ``[mean | logvar]`` with 2C channels);
* :meth:`TiTok.quantize_latents`: latents -> ids [B, N] (VQ) or the posterior mean (VAE);
* :meth:`TiTok.ids_to_latents`: ids [B, n] -> codewords [B, C, 1, n];
* :meth:`TiTok.decode_latents`: latents [B, C, 1, n] -> RGB (about [0, 1], not clamped).

The zoo interface (:meth:`TiTok.encode` / :meth:`TiTok.decode`) works on images in [-1, 1]
and :class:`zoo.interfaces.Tokens`; it lives in :mod:`zoo_plugins.titok.interface`.
"""

from __future__ import annotations

import torch
from torch import nn

from zoo.errors import InputTypeError
from zoo.model import ZooModel

from .config import TiTokConfig, validate
from .interface import TokenizerMixin
from .pixel_decoder import PixelDecoder
from .quantize import VectorQuantizer, gaussian_mean
from .vit import TiTokDecoder, TiTokEncoder

__all__ = ["TiTok", "ProxyCodebook"]


class ProxyCodebook(nn.Module):
    """MaskGIT-VQGAN codebook (``pixel_quantize.embedding.weight`` [1024, 256])."""

    def __init__(self, num_embeddings: int, dim: int):
        super().__init__()
        self.embedding = nn.Embedding(num_embeddings, dim)


class TiTok(ZooModel, TokenizerMixin, nn.Module):
    """TiTok-family 1D image tokenizer.

    Example:
        >>> cfg = TiTokConfig(vit_enc_model_size="small", vit_dec_model_size="small",
        ...                   crop_size=32, num_latent_tokens=4, finetune_decoder=False, is_legacy=False)
        >>> m = TiTok(cfg).eval()
        >>> ids = m.quantize_latents(m.encode_latents(torch.rand(1, 3, 32, 32)))
        >>> tuple(ids.shape), tuple(m.decode_latents(m.ids_to_latents(ids)).shape)
        ((1, 4), (1, 3, 32, 32))
    """

    def __init__(self, config: TiTokConfig):
        super().__init__()
        validate(vars(config) if not isinstance(config, dict) else config)
        self.config = config
        self.encoder = TiTokEncoder(config)
        self.decoder = TiTokDecoder(config)
        self.latent_tokens = nn.Parameter(self.encoder.width**-0.5 * torch.randn(config.num_latent_tokens, self.encoder.width))
        self.quantize_mode = config.quantize_mode
        if config.quantize_mode == "vq":
            self.quantize = VectorQuantizer(config.codebook_size, config.token_size, config.use_l2_norm)
        if config.finetune_decoder:
            self.pixel_quantize = ProxyCodebook(config.pixel_codebook_size, config.pixel_z_channels)
            self.pixel_decoder = PixelDecoder(
                hidden_channels=config.pixel_hidden_channels,
                channel_mult=config.pixel_channel_mult,
                num_res_blocks=config.pixel_num_res_blocks,
                z_channels=config.pixel_z_channels,
            )

    @property
    def image_size(self) -> int:
        return int(self.config.crop_size)

    @property
    def num_latent_tokens(self) -> int:
        return int(self.config.num_latent_tokens)

    def encode_latents(self, images01: torch.Tensor) -> torch.Tensor:
        """RGB [B, 3, S, S] in [0, 1] -> latents [B, C (2C for VAE), 1, N]."""
        return self.encoder(images01, self.latent_tokens)

    def quantize_latents(self, z: torch.Tensor) -> torch.Tensor:
        """VQ: latents -> ids [B, N] (int64). VAE: ``[mean | logvar]`` -> mean [B, C, 1, N]."""
        if self.quantize_mode == "vq":
            return self.quantize.encode(z)
        return gaussian_mean(z)

    def ids_to_latents(self, ids: torch.Tensor) -> torch.Tensor:
        """Ids [B, n] -> codewords [B, C, 1, n] (the decoder's input)."""
        if self.quantize_mode != "vq":
            raise InputTypeError("this TiTok model is continuous (VAE): decode its latents, it has no ids")
        return self.quantize.decode(ids)

    def decode_latents(self, z: torch.Tensor) -> torch.Tensor:
        """Latents [B, C, 1, n] -> RGB [B, 3, S, S] in TiTok's range (about [0, 1]; unclamped)."""
        out = self.decoder(z)
        if self.config.finetune_decoder:
            probs = out.softmax(1)  # [B, 1024, g, g] proxy-code distribution
            codebook = self.pixel_quantize.embedding.weight.to(probs.dtype)
            latents = torch.einsum("nchw,cd->ndhw", probs, codebook)
            out = self.pixel_decoder(latents)
        return out
