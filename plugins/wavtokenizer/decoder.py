"""WavTokenizer's decoder: the Vocos backbone and ISTFT head of :mod:`zoo.nn.vocos` (shared with
Language-Codec), re-exported under the names this plugin has always used."""

from __future__ import annotations

from zoo.nn.vocos import (
    ATTN_QUERY_BLOCK,
    AdaLayerNorm,
    AttnBlock,
    ConvNeXtBlock,
    ISTFTHead,
    ResnetBlock,
    VocosBackbone,
    istft_same,
    overlap_add,
    window_envelope,
)

__all__ = ["ATTN_QUERY_BLOCK", "ResnetBlock", "AttnBlock", "AdaLayerNorm", "ConvNeXtBlock", "VocosBackbone", "ISTFTHead",
           "istft_same", "overlap_add", "window_envelope"]
