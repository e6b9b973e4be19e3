"""TokenFlow (ByteFlow-AI/TokenFlow): images <-> multi-scale ids over a shared-index dual codebook.

Encode (the reference's ``TokenFlow.encode`` in eval mode):

* semantic branch: the teacher's patch tokens -> ``encode_task_layer`` (Linear, Tanh, Linear) ->
  ``[B, 32, g, g]``. Teacher quirks the weights depend on, kept: the CLIP ViT-B/16 teacher gets the
  image **in [-1, 1] unnormalised** (the reference's ``scaling_layer`` is ``None`` for
  ``clipb_224``) at 256 px with its 14x14 position embedding interpolated to 16x16
  (``infer_interpolate``); the SigLIP teacher gets ``(x01 - 0.5) / 0.5`` (x rounded through
  ``clamp(0, 255)``) and TokenFlow reads its **penultimate** hidden state (``hidden_states[-2]``);
* pixel branch: LlamaGen's conv encoder + ``quant_conv`` -> ``[B, 8, g, g]`` (for SigLIP the image
  is first resized bicubically to ``16 * 27 = 432`` px);
* the concatenation ``[B, 40, g, g]`` is quantised by :class:`zoo.nn.multiscale_vq.MultiScaleResidualVQ`
  over :class:`zoo.nn.dual_codebook.DualCodebook` (no phi convs; area down, bicubic up).

Tokens: ids ``[B, sum(s^2)]`` (every scale row-major, coarse to fine, as the reference
concatenates them), ``codebook_size`` 32768, ``meta["scales"]``. Decode takes any prefix of whole
scales: the codes are summed, split, and the pixel part goes through ``post_quant_conv`` and the
(enhanced) conv decoder (SigLIP: resized to 384 px). :meth:`TokenFlow.decode_semantic` runs the
other half (the BEiT feature decoder + ``decode_task_layer``) -> reconstructed teacher features.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from zoo.errors import TokenError
from zoo.model import ZooModel
from zoo.nn.backbones import OpenAICLIPVisual, interpolate_position_embedding, siglip_vision
from zoo.nn.conv_ae import Decoder, Encoder
from zoo.nn.dual_codebook import DualCodebook
from zoo.nn.multiscale_vq import MultiScaleResidualVQ
from zoo.nn.vit import ViTBlock

from .config import TokenFlowConfig

__all__ = ["FeatureDecoder", "TokenFlow"]


def _task_layer(dim_in: int, dim_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(dim_in, dim_in), nn.Tanh(), nn.Linear(dim_in, dim_out))


class FeatureDecoder(nn.Module):
    """The BEiT-v2 ViT that maps semantic codes ``[B, C, g, g]`` back to tokens (patch size 1,
    class token, learned position embedding interpolated to ``g``, LayerNorm eps 1e-6, ``fc_norm``
    of the patch tokens)."""

    def __init__(self, in_chans: int, dim: int, depth: int, heads: int, grid: int):
        super().__init__()
        self.patch_embed = nn.Module()
        self.patch_embed.proj = nn.Conv2d(in_chans, dim, 1)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, grid * grid + 1, dim))
        self.blocks = nn.ModuleList([ViTBlock(dim, heads, qkv_bias=True, norm_eps=1e-6) for _ in range(depth)])
        self.fc_norm = nn.LayerNorm(dim, eps=1e-6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, w, h = x.shape
        x = self.patch_embed.proj(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls_token.expand(b, -1, -1), x], dim=1)
        x = x + interpolate_position_embedding(self.pos_embed[0], w, h, 1)[None]
        for blk in self.blocks:
            x = blk(x)
        return self.fc_norm(x[:, 1:])


class TokenFlow(ZooModel, nn.Module):
    """TokenFlow's tokenizer: ``encode(images) -> Tokens``, ``decode(tokens) -> images``.

    Example:
        >>> cfg = TokenFlowConfig(ch=32, encoder_ch_mult=[1, 2], decoder_ch_mult=[1, 2], z_channels=32,
        ...     num_res_blocks=1, decoder_ch=32, decoder_num_res_blocks=1, codebook_size=64, scales=[1, 2, 4],
        ...     image_size=8, teacher_width=32, teacher_layers=1, teacher_heads=2, teacher_patch_size=2,
        ...     teacher_image_size=8, vqkd_decoder_heads=2, vqkd_out_dim=16)
        >>> tf = TokenFlow(cfg).eval()
        >>> tok = tf.encode(torch.rand(2, 3, 8, 8) * 2 - 1)
        >>> tuple(tok.ids.shape), tok.meta["scales"]
        ((2, 21), [1, 2, 4])
        >>> tuple(tf.decode(tok).shape), tuple(tf.decode_semantic(tok).shape)
        ((2, 3, 8, 8), (2, 16, 16))
    """

    def __init__(self, config: TokenFlowConfig):
        super().__init__()
        self.config = c = config
        self.encoder = Encoder(c.conv_config("encoder"))
        self.decoder = Decoder(c.conv_config("decoder"))
        self.quant_conv = nn.Conv2d(c.z_channels, c.codebook_embed_dim, 1)
        self.post_quant_conv = nn.Conv2d(c.codebook_embed_dim, c.z_channels, 1)
        if c.teacher == "clipb_224":
            self.encoder_vqkd = OpenAICLIPVisual(width=c.teacher_width, layers=c.teacher_layers, heads=c.teacher_heads,
                                                 patch_size=c.teacher_patch_size, image_size=c.teacher_image_size)
        else:
            self.encoder_vqkd = siglip_vision(hidden_size=c.teacher_width, num_hidden_layers=c.teacher_layers,
                                              num_attention_heads=c.teacher_heads, patch_size=c.teacher_patch_size,
                                              image_size=c.teacher_image_size, intermediate_size=c.teacher_intermediate_size)
        self.decoder_vqkd = FeatureDecoder(c.semantic_code_dim, c.teacher_width, c.vqkd_decoder_depth,
                                           c.vqkd_decoder_heads, c.vqkd_decoder_grid)
        if c.teacher == "siglip_384":  # the reference's ScalingLayerForSigLip (its buffers are in the file)
            self.scaling_layer = nn.Module()
            self.scaling_layer.register_buffer("shift", torch.full((1, 3, 1, 1), 0.5))
            self.scaling_layer.register_buffer("scale", torch.full((1, 3, 1, 1), 0.5))
        self.encode_task_layer = _task_layer(c.teacher_width, c.semantic_code_dim)
        self.decode_task_layer = _task_layer(c.teacher_width, c.vqkd_out_dim)
        dim = c.semantic_code_dim + c.codebook_embed_dim
        self.quantize = MultiScaleResidualVQ(
            c.codebook_size, dim, c.scales, phi_ratio=0.0, l2_norm=c.codebook_l2_norm,
            codebook=DualCodebook(c.codebook_size, c.semantic_code_dim, c.codebook_embed_dim, l2_norm=c.codebook_l2_norm))

    # ------------------------------------------------------------------ facts
    @property
    def codebook_size(self) -> int:
        return int(self.config.codebook_size)

    @property
    def image_size(self) -> int:
        """The resolution the model works at (``zoo reconstruct`` resizes to it)."""
        return int(self.config.image_size)

    @property
    def scales(self) -> list[int]:
        return [int(s) for s in self.config.scales]

    @property
    def num_tokens(self) -> int:
        """Ids per image: the sum of ``s * s`` over the scales (817 for clipb_32k, 2227 for siglip_32k)."""
        return sum(s * s for s in self.scales)

    @property
    def prefix_lengths(self) -> list[int]:
        """The lengths :meth:`decode` accepts: whole scales, coarse first (``zoo reconstruct --tokens``)."""
        return [sum(t * t for t in self.scales[:k + 1]) for k in range(len(self.scales))]

    default_name = "tokenflow"

    # ------------------------------------------------------------------ stages
    def _check_images(self, images: torch.Tensor) -> torch.Tensor:
        from zoo.media.image import check_images

        check_images(images, size=self.image_size, model=self.name)
        p = self.quant_conv.weight
        return images.to(device=p.device, dtype=p.dtype)

    def semantic_features(self, x: torch.Tensor) -> torch.Tensor:
        """Images in [-1, 1] -> the semantic half ``[B, semantic_code_dim, g, g]`` (before quantisation)."""
        if self.config.teacher == "clipb_224":
            feats = self.encoder_vqkd(x)  # the reference feeds [-1, 1] unnormalised
        else:
            x01 = ((x + 1.0) * 127.5).clamp(0, 255.0) / 255.0
            x = (x01 - self.scaling_layer.shift) / self.scaling_layer.scale
            feats = self.encoder_vqkd(pixel_values=x, output_hidden_states=True).hidden_states[-2]
        feats = self.encode_task_layer(feats.to(self.encode_task_layer[-1].weight.dtype))
        g = int(round(feats.shape[1] ** 0.5))
        return feats.transpose(1, 2).reshape(feats.shape[0], -1, g, g)

    def pixel_features(self, x: torch.Tensor, grid: int) -> torch.Tensor:
        """Images in [-1, 1] -> the pixel half ``[B, codebook_embed_dim, grid, grid]``."""
        size = self.config.downsample_factor * grid
        if x.shape[-1] != size or x.shape[-2] != size:
            x = F.interpolate(x, size=(size, size), mode="bicubic")
        return self.quant_conv(self.encoder(x))

    def encode_latents(self, images: torch.Tensor) -> torch.Tensor:
        """Images ``[B, 3, S, S]`` in [-1, 1] -> ``[B, 40, g, g]`` (semantic | pixel, before quantisation)."""
        x = self._check_images(images)
        sem = self.semantic_features(x)
        pix = self.pixel_features(x, sem.shape[-1])
        return torch.cat([sem, pix], dim=1)

    def codes(self, ids: torch.Tensor) -> torch.Tensor:
        """Ids ``[B, L]`` (whole scales, coarse first) -> summed codes ``[B, 40, g, g]``."""
        per_scale, pos = [], 0
        for s in self.scales:
            if pos >= ids.shape[1]:
                break
            per_scale.append(ids[:, pos:pos + s * s])
            pos += s * s
        if pos != ids.shape[1]:
            raise TokenError(f"{self.name} decodes whole scales: {ids.shape[1]} ids is not one of the prefix "
                             f"lengths {self.prefix_lengths}")
        return self.quantize.decode(per_scale)

    def decode_codes(self, codes: torch.Tensor) -> torch.Tensor:
        """Summed codes ``[B, 40, g, g]`` -> images (not clamped)."""
        pix = codes[:, self.config.semantic_code_dim:].to(self.post_quant_conv.weight.dtype)
        out = self.decoder(self.post_quant_conv(pix))
        if self.config.teacher == "siglip_384":
            out = F.interpolate(out, size=(self.image_size, self.image_size), mode="bicubic")
        return out

    # ------------------------------------------------------------------ interface
    @torch.no_grad()
    def encode(self, images: torch.Tensor):
        """Images ``[B, 3, S, S]`` in [-1, 1] (``S = image_size``) -> :class:`zoo.interfaces.Tokens`
        with ids ``[B, sum(s^2)]`` and ``meta["scales"]``."""
        from zoo.interfaces import Tokens

        z = self.encode_latents(images)
        if z.shape[-1] != self.scales[-1]:
            raise TokenError(f"{self.name}: the feature map is {z.shape[-1]}x{z.shape[-1]}, the last scale is {self.scales[-1]}")
        ids = self.quantize.encode(z)
        return Tokens(ids=torch.cat(ids, dim=1), codebook_size=self.codebook_size, tokenizer=self.name,
                      meta={"scales": self.scales})

    def _ids(self, tokens: Any) -> torch.Tensor:
        from zoo.interfaces import Tokens, as_tokens

        if not isinstance(tokens, (Tokens, torch.Tensor)):
            raise TokenError(f"{self.name} decodes Tokens from its encode() or ids [B, L]; got {type(tokens).__name__}")
        if isinstance(tokens, Tokens) and tokens.tokenizer and tokens.tokenizer.split(".")[0] != "tokenflow":
            raise TokenError(f"these tokens were made by {tokens.tokenizer!r}; {self.name} decodes its own tokens")
        tok = as_tokens(tokens, self.codebook_size, self.name)
        if tok.codebook_size != self.codebook_size:
            raise TokenError(f"tokens have codebook_size {tok.codebook_size}, {self.name} uses {self.codebook_size}")
        if tok.ids.dim() != 2:
            raise TokenError(f"{self.name} decodes ids [B, L] (one codebook), got {tuple(tok.ids.shape)}")
        n = int(tok.lengths.max()) if tok.ids.shape[0] else 0
        if bool((tok.lengths != n).any()):
            raise TokenError(f"{self.name} decodes one prefix length per batch, got lengths {tok.lengths.tolist()}: "
                             "decode items of different lengths separately")
        return tok.ids[:, :n].to(self.quant_conv.weight.device).long()

    @torch.no_grad()
    def decode(self, tokens: Any, clamp: bool = True) -> torch.Tensor:
        """Tokens (or ids ``[B, L]``, any prefix of whole scales) -> images ``[B, 3, S, S]`` in [-1, 1]."""
        out = self.decode_codes(self.codes(self._ids(tokens)))
        return out.clamp(-1.0, 1.0) if clamp else out

    @torch.no_grad()
    def decode_semantic(self, tokens: Any) -> torch.Tensor:
        """Tokens -> the teacher's reconstructed features ``[B, g*g, vqkd_out_dim]`` (the reference's ``dec[0]``)."""
        codes = self.codes(self._ids(tokens))
        sem = codes[:, :self.config.semantic_code_dim].to(self.decode_task_layer[0].weight.dtype)
        return self.decode_task_layer(self.decoder_vqkd(sem))
