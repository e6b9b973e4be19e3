"""GigaTok's CNN stages on zoo's conv core, and the release's key layout mapped as data.

* encoder: :class:`zoo.nn.conv_ae.Encoder` (LlamaGen topology, no attention anywhere);
* decoder: :class:`CNNDecoder`, :class:`zoo.nn.conv_ae.Decoder` with depth-to-space upsamplers
  (:class:`zoo.nn.magvit2.DepthToSpaceUpsample`) and one :class:`zoo.nn.magvit2.AdaptiveGroupNorm`
  at the start of every level, conditioned on the decoder's input (the Q-Former's 2D map).

The release names these modules as LlamaGen does (``conv_blocks.i.res.j``, ``mid.j``, ``norm_out``,
``nin_shortcut``); :data:`KEY_RULES` renames them onto the core's names. Both stages keep their
levels in execution order, as the release does.

Example:
    >>> rename("decoder.conv_blocks.1.upsample.conv1.weight")
    'decoder.up_blocks.1.upsamplers.0.conv1.weight'
    >>> rename("encoder.mid.1.nin_shortcut.bias")
    'encoder.mid_block.resnets.1.conv_shortcut.bias'
"""

from __future__ import annotations

import re

import torch

from zoo.nn.conv_ae import ConvAEConfig, Decoder, Encoder, norm_act
from zoo.nn.magvit2 import AdaptiveGroupNorm, DepthToSpaceUpsample

__all__ = ["CNNDecoder", "KEY_RULES", "build_encoder", "conv_config", "rename"]

# (pattern, replacement), applied in order to every encoder./decoder. key of a release
KEY_RULES: tuple[tuple[str, str], ...] = (
    (r"^(encoder)\.conv_blocks\.(\d+)\.res\.(\d+)\.", r"\1.down_blocks.\2.resnets.\3."),
    (r"^(encoder)\.conv_blocks\.(\d+)\.downsample\.conv\.", r"\1.down_blocks.\2.downsamplers.0.conv."),
    (r"^(decoder)\.conv_blocks\.(\d+)\.res\.(\d+)\.", r"\1.up_blocks.\2.resnets.\3."),
    (r"^(decoder)\.conv_blocks\.(\d+)\.upsample\.conv1\.", r"\1.up_blocks.\2.upsamplers.0.conv1."),
    (r"^(encoder|decoder)\.mid\.(\d+)\.", r"\1.mid_block.resnets.\2."),
    (r"^(encoder|decoder)\.norm_out\.", r"\1.conv_norm_out."),
    (r"\.nin_shortcut\.", ".conv_shortcut."),
)
_COMPILED = tuple((re.compile(p), r) for p, r in KEY_RULES)


def rename(key: str) -> str:
    """A release key -> zoo's key (keys outside the CNN stages are returned unchanged)."""
    for pattern, repl in _COMPILED:
        key = pattern.sub(repl, key)
    return key


def conv_config(ch: int, ch_mult, num_res_blocks: int, z_channels: int) -> ConvAEConfig:
    return ConvAEConfig(ch=ch, ch_mult=tuple(ch_mult), num_res_blocks=num_res_blocks, z_channels=z_channels,
                        resolution=256, attn_resolutions=(), mid_attention=False)


def build_encoder(cfg: ConvAEConfig) -> Encoder:
    return Encoder(cfg)


class CNNDecoder(Decoder):
    """``[B, z, g, g]`` -> images; ``adaptive.i`` modulates level ``i`` (execution order) by the
    input's per-channel std and mean."""

    def __init__(self, cfg: ConvAEConfig):
        super().__init__(cfg, upsample=DepthToSpaceUpsample)
        rev = list(reversed(cfg.widths))
        self.adaptive = torch.nn.ModuleList(
            AdaptiveGroupNorm(cfg.z_channels, rev[max(i - 1, 0)]) for i in range(len(rev)))

    def forward(self, z: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        stats = AdaptiveGroupNorm.style_stats(z, self.adaptive[0].eps)
        # One flat loop in this frame (as Decoder.forward), not ``block(x)`` per level: calling a
        # level would keep its input alive in this frame (and in the call's arguments) while all
        # of its ResNet blocks run -- one full-size activation more than the reference at peak.
        mid = self.mid_block
        x = mid.resnets[0](self.conv_in(z))
        x = mid.resnets[1](x)
        for norm, blk in zip(self.adaptive, self.up_blocks):
            x = norm(x, stats)  # separate statement: the un-normalised map is freed before the level runs
            for r in blk.resnets:
                x = r(x)
            if blk.upsamplers is not None:
                x = blk.upsamplers[0](x)
        return self.conv_out(norm_act(x, self.conv_norm_out))
