"""OmniTokenizer's typed config and the mapping from a release's hyper-parameters.

The releases are PyTorch Lightning checkpoints whose ``hyper_parameters["args"]`` is the training
``argparse.Namespace`` (read with ``weights_only=True`` and that one class allowed). Its
architecture fields (:data:`ARCH_FIELDS`) are read as data onto :class:`OmniTokenizerConfig`;
the rest of the Namespace (losses, discriminators, data, optimiser and the dozens of Lightning
``Trainer`` arguments the script adds) does not change the inference graph and is not read.
Architecture variants no release uses are a :class:`~zoo.errors.ConfigError`.

This module does not import torch.

Example:
    >>> cfg = from_hparams({"resolution": 256, "patch_size": 8, "temporal_patch_size": 4, "enc_block": "ttww",
    ...                     "n_codes": 8192, "codebook_dim": 8, "l2_code": True, "perceptual_weight": 4})
    >>> cfg["enc_block"], cfg["codebook_dim"]
    ('ttww', 8)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, Optional

__all__ = ["OmniTokenizerConfig", "from_hparams", "ARCH_FIELDS"]


@dataclass
class OmniTokenizerConfig:
    """Architecture of an OmniTokenizer (field names of its ``argparse`` arguments).

    The encoder embeds the first frame alone (``patch_size``\\ :sup:`2` patches) and the rest in
    ``temporal_patch_size`` x ``patch_size``\\ :sup:`2` tubelets, runs a spatial transformer per
    frame (``enc_block``: ``t`` attention, ``w`` window attention of ``twod_window_size``) and a
    temporal one per position (causal when ``causal_in_temporal_transformer``), then a linear map
    to ``codebook_dim``: VQ over ``n_codes`` (cosine when ``l2_code``) or, with ``use_vae``, a
    diagonal Gaussian. The decoder mirrors it (temporal first, ``dec_block``).
    """

    resolution: int = 256
    image_channels: int = 3
    patch_embed: str = "linear"
    patch_size: int = 8
    temporal_patch_size: int = 4
    spatial_depth: int = 4
    temporal_depth: int = 4
    enc_block: str = "ttww"
    dec_block: str = "tttt"
    twod_window_size: int = 8
    spatial_pos: str = "rope"
    causal_in_temporal_transformer: bool = True
    causal_in_peg: bool = True
    embedding_dim: int = 512
    dim_head: int = 64
    heads: int = 8
    ff_mult: float = 4.0
    n_codes: int = 8192
    codebook_dim: int = 8
    l2_code: bool = True
    use_vae: bool = False
    sequence_length: int = 17
    defer_temporal_pool: bool = False
    defer_spatial_pool: bool = False
    gen_upscale: Optional[int] = None
    use_external_codebook: bool = False


ARCH_FIELDS = tuple(f.name for f in fields(OmniTokenizerConfig))
def from_hparams(args: Mapping[str, Any]) -> dict[str, Any]:
    """A release's ``args`` (as a mapping) -> :class:`OmniTokenizerConfig` fields (the reference's
    defaults for blocks and ``codebook_dim`` applied)."""
    from zoo.errors import ConfigError

    out = {k: args[k] for k in ARCH_FIELDS if k in args}
    if out.get("codebook_dim") is None and "codebook_dim" in out:
        out["codebook_dim"] = int(args.get("embedding_dim", 512))
    if "enc_block" not in out and "spatial_depth" in out:
        out["enc_block"] = "t" * int(out["spatial_depth"])
    if "dec_block" not in out and "spatial_depth" in out:
        out["dec_block"] = "t" * int(out["spatial_depth"])
    if out.get("patch_embed", "linear") != "linear":
        raise ConfigError(f"OmniTokenizer patch_embed {out['patch_embed']!r}: zoo implements the released 'linear' embedding")
    if out.get("defer_temporal_pool") or out.get("defer_spatial_pool") or out.get("gen_upscale") or out.get("use_external_codebook"):
        raise ConfigError("OmniTokenizer deferred pooling / gen_upscale / an external codebook are not in any release; not supported")
    if set(out.get("enc_block", "")) - {"t", "w"} or set(out.get("dec_block", "")) - {"t", "w"}:
        raise ConfigError(f"OmniTokenizer blocks must be 't' / 'w', got {out.get('enc_block')!r} / {out.get('dec_block')!r}")
    return out
