"""The MaskGIT-VQGAN tokenizer (f16, 1024 codes of 256 dims) that RAR generates for, as
released in ``fun-research/TiTok/maskgit-vqgan-imagenet-f16-256.bin``.

Images in [-1, 1] (zoo's convention; the model itself works in [0, 1]) -> 16x16 = 256 ids,
and back. The decoder is the MaskGIT-VQGAN pixel decoder that TiTok's legacy path also uses
(:class:`zoo_plugins.titok.pixel_decoder.PixelDecoder`, same weights layout), which is why this
tokenizer lives in the TiTok family (both come from bytedance/1d-tokenizer); the encoder
mirrors it (3x3 "same" convolutions, GroupNorm-SiLU residual blocks, 2x2 average pooling).

Example:
    >>> import torch
    >>> tok = MaskGITVQGAN(VQGANConfig(hidden_channels=32, channel_mult=[1, 2], num_res_blocks=1,
    ...                                z_channels=32, num_embeddings=16, resolution=32))
    >>> t = tok.encode(torch.zeros(1, 3, 32, 32))
    >>> t.ids.shape, tok.decode(t).shape
    (torch.Size([1, 256]), torch.Size([1, 3, 32, 32]))
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from zoo.builders import Checkpoint, CheckpointFiles, ModelBuilder
from zoo.errors import InputError
from zoo.model import ZooModel
from zoo.nn.quantize import lookup_codes, nearest_code

from .pixel_decoder import PixelDecoder, ResnetBlock

__all__ = ["VQGANConfig", "MaskGITVQGAN", "MaskGITVQGANBuilder"]


@dataclass
class VQGANConfig:
    """``PretrainedTokenizer``'s hard-coded config in 1d-tokenizer (modeling/titok.py)."""

    hidden_channels: int = 128
    channel_mult: list[int] = field(default_factory=lambda: [1, 1, 2, 2, 4])
    num_res_blocks: int = 2
    z_channels: int = 256
    num_embeddings: int = 1024
    resolution: int = 256


class _Down(nn.Module):
    def __init__(self, c_in: int, c_out: int, n: int, downsample: bool):
        super().__init__()

        blocks = []
        for _ in range(n):
            blocks.append(ResnetBlock(c_in, c_out))
            c_in = c_out
        self.block = nn.ModuleList(blocks)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for b in self.block:
            x = b(x)
        return F.avg_pool2d(x, 2, 2) if self.downsample else x


class _Encoder(nn.Module):
    def __init__(self, cfg: VQGANConfig):
        super().__init__()

        h, mult = cfg.hidden_channels, list(cfg.channel_mult)
        self.conv_in = nn.Conv2d(3, h, 3, padding=1, bias=False)
        ins = [1] + mult
        self.down = nn.ModuleList(
            _Down(h * ins[i], h * mult[i], cfg.num_res_blocks, i != len(mult) - 1) for i in range(len(mult))
        )
        top = h * mult[-1]
        self.mid = nn.ModuleList(ResnetBlock(top, top) for _ in range(cfg.num_res_blocks))
        self.norm_out = nn.GroupNorm(32, top, eps=1e-6)
        self.conv_out = nn.Conv2d(top, cfg.z_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv_in(x)
        for b in self.down:
            x = b(x)
        for b in self.mid:
            x = b(x)
        return self.conv_out(F.silu(self.norm_out(x)))


class _Quantize(nn.Module):
    def __init__(self, n: int, dim: int):
        super().__init__()
        self.embedding = nn.Embedding(n, dim)

    def codes(self, z: torch.Tensor) -> torch.Tensor:
        """Nearest codebook entry per position of ``z`` ``[B, C, h, w]`` -> ids ``[B, h*w]``."""
        return nearest_code(z.flatten(2).transpose(1, 2), self.embedding.weight)

    def lookup(self, ids: torch.Tensor, side: int) -> torch.Tensor:
        return lookup_codes(ids, self.embedding.weight).view(ids.shape[0], side, side, -1).permute(0, 3, 1, 2)


class MaskGITVQGAN(ZooModel, nn.Module):
    """``encode(images in [-1, 1]) -> Tokens`` (``[B, (S/16)^2]``, codebook 1024),
    ``decode(tokens) -> images in [-1, 1]`` (the reference clamps to [0, 1] first)."""

    def __init__(self, cfg: VQGANConfig | None = None):
        super().__init__()
        cfg = cfg or VQGANConfig()

        self.cfg = cfg
        self.encoder = _Encoder(cfg)
        self.decoder = PixelDecoder(cfg.hidden_channels, cfg.channel_mult, cfg.num_res_blocks, cfg.z_channels)
        self.quantize = _Quantize(cfg.num_embeddings, cfg.z_channels)

    @property
    def codebook_size(self) -> int:
        return self.cfg.num_embeddings

    @property
    def grid(self) -> int:
        return self.cfg.resolution // 2 ** (len(self.cfg.channel_mult) - 1)

    @torch.no_grad()
    def encode(self, images: torch.Tensor):
        from zoo.interfaces import Tokens

        s = self.cfg.resolution
        if not isinstance(images, torch.Tensor) or images.dim() != 4 or images.shape[1] != 3 or tuple(images.shape[-2:]) != (s, s):
            got = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
            raise InputError(f"encode expects images [B, 3, {s}, {s}] in [-1, 1], got {got}")
        from zoo.media.image import check_images

        check_images(images, size=s, model=getattr(getattr(self, "card", None), "name", "") or "maskgit_vqgan")
        p = self.quantize.embedding.weight
        x = (images.to(device=p.device, dtype=p.dtype) + 1) / 2
        ids = self.quantize.codes(self.encoder(x))
        name = getattr(getattr(self, "card", None), "name", "") or "maskgit_vqgan"
        return Tokens(ids=ids, codebook_size=self.codebook_size, tokenizer=name)

    @torch.no_grad()
    def decode(self, tokens) -> torch.Tensor:
        from zoo.interfaces import as_tokens

        t = as_tokens(tokens, self.codebook_size, getattr(getattr(self, "card", None), "name", ""))
        n = self.grid ** 2
        if t.ids.dim() != 2 or t.ids.shape[1] != n or bool((t.lengths != n).any()):
            raise InputError(f"MaskGIT-VQGAN decodes exactly {n} ids per image ({self.grid}x{self.grid}), got {tuple(t.ids.shape)}")
        z = self.quantize.lookup(t.ids.to(self.quantize.embedding.weight.device), self.grid)
        return self.decoder(z).clamp(0.0, 1.0) * 2 - 1


class MaskGITVQGANBuilder(ModelBuilder):
    """``maskgit-vqgan-imagenet-f16-256.bin`` (weights-only pickle): keys ``encoder.*``,
    ``decoder.*``, ``quantize.embedding.weight`` as released."""

    name = "maskgit_vqgan"
    config_class = VQGANConfig

    def read_checkpoint(self, files: CheckpointFiles) -> Checkpoint:
        from zoo.weights import load_weights_file

        state, _ = load_weights_file(files.primary)
        return Checkpoint(state_dict=state)

    def build(self, config: VQGANConfig):
        return MaskGITVQGAN(config)

    def convert(self, state_dict: Mapping[str, Any], config: VQGANConfig) -> Mapping[str, Any]:
        return state_dict
