"""Reading GigaTok's ``.pt`` release files and mapping them onto zoo's module names.

A release (``VQ_SS256_e100.pt`` etc., Google Drive) is a ``torch.save`` of the training
checkpoint dict: ``"model"`` (and ``"ema"`` when trained with EMA), possibly ``"optimizer"``,
``"discriminator"``, ``"optimizer_disc"``, ``"steps"`` and ``"args"`` (an
``argparse.Namespace``). It is loaded with ``weights_only=True`` and exactly one class added to
torch's allowlist: :class:`argparse.Namespace` (plain values inside it are already allowed). The
weights are chosen as the reference's ``reconstruction_ddp.py`` chooses them: ``"ema"`` if present,
else ``"model"``, else ``"state_dict"``.

:data:`DROPPED_PREFIXES` lists what is deliberately not loaded: the distillation MLP of the
decoder (semantic regularisation during training; the reference's ``custom_load`` exists to
tolerate its absence) and the quantiser's codebook-usage ring buffer.

Example:
    >>> import torch
    >>> sd = {"encoder.conv_blocks.0.res.1.nin_shortcut.weight": torch.zeros(1),
    ...       "quantize.codebook_used": torch.zeros(4), "s1to2decoder.distill_mlp.0.weight": torch.zeros(1)}
    >>> sorted(convert_state_dict(sd))
    ['encoder.down_blocks.0.resnets.1.conv_shortcut.weight']
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any, Mapping

import torch

from zoo.weights import load_checkpoint

from ._core import CheckpointError, ConfigError
from .config import VIT_SIZES

__all__ = ["ALLOWED_GLOBALS", "DROPPED_PREFIXES", "check_config", "convert_state_dict", "load_release", "sniff_config"]

ALLOWED_GLOBALS = (argparse.Namespace,)
DROPPED_PREFIXES = ("s1to2decoder.distill_mlp.", "quantize.codebook_used")
_WEIGHT_KEYS = ("ema", "model", "state_dict")


def load_release(path: str | Path) -> dict[str, torch.Tensor]:
    """The weights of a GigaTok release file (``ema`` > ``model`` > ``state_dict``), weights-only."""
    ckpt: Any = load_checkpoint(path, what="GigaTok", allow=ALLOWED_GLOBALS, mmap=False,
                                fix="download it again from the link on the card (`zoo info gigatok.NAME`)")
    if isinstance(ckpt, Mapping):
        for key in _WEIGHT_KEYS:
            if isinstance(ckpt.get(key), Mapping):
                ckpt = ckpt[key]
                break
    if not isinstance(ckpt, Mapping) or "quantize.embedding.weight" not in ckpt:
        raise CheckpointError(f"{path} holds no GigaTok weights (expected {'/'.join(_WEIGHT_KEYS)} with "
                              "'s2to1encoder.*', 'quantize.embedding.weight', ...)")
    return dict(ckpt)


def convert_state_dict(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop :data:`DROPPED_PREFIXES`, rename the CNN stages (:data:`.conv.KEY_RULES`)."""
    from .conv import rename  # noqa: PLC0415

    return {rename(k): v for k, v in state.items() if not k.startswith(DROPPED_PREFIXES)}


def _size_name(width: int, layers: int, heads: int | None = None) -> str | None:
    for name, (w, n, _h) in VIT_SIZES.items():
        if (w, n) == (width, layers):
            return name
    return None


def _layers(state: Mapping[str, Any], prefix: str) -> int:
    rx = re.compile(re.escape(prefix) + r"\.transformer\.(\d+)\.")
    found = {int(m.group(1)) for k in state if (m := rx.match(k))}
    return max(found) + 1 if found else 0


def sniff_config(state: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    """Sizes read from the weights' shapes (release or zoo names)."""
    try:
        enc_w = int(state["s2to1encoder.encoder_embed.weight"].shape[0])
        dec_w = int(state["s1to2decoder.decoder_embed.weight"].shape[0])
        size, dim = (int(s) for s in state["quantize.embedding.weight"].shape)
        tokens = int(state["s2to1encoder.latent_token_positional_embedding"].shape[0])
        z = int(state["quant_conv.weight"].shape[1])
    except KeyError as exc:
        raise CheckpointError(f"not a GigaTok state dict: {exc.args[0]} is missing") from None
    out: dict[str, Any] = {"codebook_size": size, "codebook_embed_dim": dim, "num_latent_tokens": tokens, "z_channels": z}
    enc = _size_name(enc_w, _layers(state, "s2to1encoder"))
    dec = _size_name(dec_w, _layers(state, "s1to2decoder"))
    if enc:
        out["encoder_size"] = enc
    if dec:
        out["decoder_size"] = dec
    return out


def check_config(config: Mapping[str, Any], sniffed: Mapping[str, Any], *, what: str = "checkpoint") -> None:
    """Raise :class:`~zoo.errors.ConfigError` naming every field where config and weights disagree."""
    diffs = [f"{k}: config {config.get(k)!r} vs weights {v!r}" for k, v in sniffed.items() if k in config and config[k] != v]
    if diffs:
        raise ConfigError(f"{what} does not match this GigaTok config ({'; '.join(diffs)}); load it through the card "
                          "of its release (`zoo list gigatok`) or drop the conflicting overrides")
