"""Reading WeTok's Lightning ``.ckpt`` files: EMA selection, dropped prefixes, config sniffing.

A release file (``GrayShine/WeTok``: ``<domain>/<variant>/WeTok.ckpt``) is a pickle of
``{"state_dict": OrderedDict}``. The hub's pickle scan lists exactly ``collections.OrderedDict``,
``torch._utils._rebuild_tensor_v2`` and ``torch.{Float,Long,Int}Storage``, all on torch's
``weights_only=True`` allowlist, so no class is added to it. The state dict holds:

* ``encoder.*`` / ``decoder.*`` -- the *training* weights;
* ``model_ema.<name with the dots removed>`` -- the EMA shadow of every trainable parameter
  (``LitEma``), plus ``model_ema.decay`` / ``model_ema.num_updates``;
* ``loss.*`` -- discriminator and perceptual-loss weights (training only).

The reference evaluates inside ``VQModel.ema_scope()``, which copies every EMA shadow onto the
parameter it shadows. :func:`select_weights` does the same, keyed by the same dot-free names,
and refuses a checkpoint whose EMA copy is incomplete. :data:`DROPPED_PREFIXES` lists what is
deliberately discarded; any other key is left in, so ``load_state_dict_strict`` names it.

Example:
    >>> import torch
    >>> sd = {"encoder.conv_in.weight": torch.zeros(1), "model_ema.encoderconv_inweight": torch.ones(1),
    ...       "model_ema.decay": torch.tensor(0.999), "loss.discriminator.main.0.weight": torch.zeros(1)}
    >>> {k: v.item() for k, v in select_weights(sd, use_ema=True).items()}
    {'encoder.conv_in.weight': 1.0}
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Mapping

import torch

from zoo.weights import load_checkpoint

from ._core import CheckpointError, ConfigError

__all__ = ["DROPPED_PREFIXES", "MODEL_PREFIXES", "load_ckpt", "select_weights", "sniff_config", "check_config"]

MODEL_PREFIXES = ("encoder.", "decoder.")
# Discarded on purpose: the EMA shadows once copied (and the EMA counters), training losses.
DROPPED_PREFIXES = ("model_ema.", "loss.")


def load_ckpt(path: str | Path) -> dict[str, torch.Tensor]:
    """The ``state_dict`` of a WeTok ``.ckpt`` (``torch.load(weights_only=True)``, memory-mapped
    when the file allows it; :func:`zoo.weights.load_checkpoint`), or the mapping itself when the
    file is a bare state dict."""
    ckpt = load_checkpoint(path, what="WeTok", fix="re-download it (`zoo download wetok.NAME --force`)")
    state = ckpt.get("state_dict", ckpt)
    if not isinstance(state, Mapping) or not any(str(k).startswith(MODEL_PREFIXES) for k in state):
        raise CheckpointError(f"{path} holds no WeTok weights (expected a Lightning checkpoint with "
                              "state_dict['encoder.*', 'decoder.*'])")
    return dict(state)


def _ema_name(key: str) -> str:
    return "model_ema." + key.replace(".", "")


def select_weights(state: Mapping[str, torch.Tensor], *, use_ema: bool = True) -> dict[str, torch.Tensor]:
    """``encoder.*`` / ``decoder.*`` weights as ``ema_scope`` sees them (EMA shadows when
    ``use_ema``), everything under :data:`DROPPED_PREFIXES` removed, other keys kept."""
    out: dict[str, torch.Tensor] = {}
    missing: list[str] = []
    shadow_names: dict[str, str] = {}
    for key, value in state.items():
        if key.startswith(DROPPED_PREFIXES):
            continue
        if key.startswith(MODEL_PREFIXES) and use_ema:
            name = _ema_name(key)
            if name in shadow_names:
                raise CheckpointError(f"EMA names collide: {key} and {shadow_names[name]} both map to {name}")
            shadow_names[name] = key
            if name not in state:
                missing.append(key)
                continue
            value = state[name]
        out[key] = value
    if missing:
        raise CheckpointError(
            f"the checkpoint's EMA copy lacks {len(missing)} weights (e.g. {_ema_name(missing[0])} for {missing[0]}); "
            "WeTok releases are evaluated with their EMA weights. Load the training weights instead with "
            "use_ema=False (zoo.load(..., use_ema=False))")
    return out


def _indices(state: Mapping[str, Any], pattern: str) -> list[int]:
    rx = re.compile(pattern)
    return sorted({int(m.group(1)) for k in state if (m := rx.match(k))})


def sniff_config(state: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    """Widths and depths read from the weights' shapes (encoder/decoder keys, EMA selected or not)."""
    try:
        ch = int(state["encoder.conv_in.weight"].shape[0])
        levels = _indices(state, r"encoder\.down\.(\d+)\.")
        blocks = _indices(state, r"encoder\.down\.0\.block\.(\d+)\.")
        ch_mult = [int(state[f"encoder.down.{i}.block.0.conv1.weight"].shape[0]) // ch for i in levels]
        z = int(state["encoder.conv_out.weight"].shape[0])
        dec_in = int(state["decoder.conv_in.weight"].shape[1])
    except KeyError as exc:
        raise CheckpointError(f"not a WeTok state dict: {exc.args[0]} is missing") from None
    return {"ch": ch, "ch_mult": ch_mult, "num_res_blocks": len(blocks), "z_channels": z,
            "in_channels": int(state["encoder.conv_in.weight"].shape[1]),
            "out_ch": int(state["decoder.conv_out.weight"].shape[0]), "gan_decoder": dec_in == 2 * z}


def check_config(config: Mapping[str, Any], sniffed: Mapping[str, Any], *, what: str = "checkpoint") -> None:
    """Raise :class:`~zoo.errors.ConfigError` naming every field where the card/overrides and the
    weights disagree (a f8 file loaded through a f16 card, say)."""
    diffs = [f"{k}: config {config.get(k)!r} vs weights {v!r}" for k, v in sniffed.items()
             if k in config and (list(config[k]) if isinstance(v, list) else config[k]) != v]
    if diffs:
        raise ConfigError(f"{what} does not match this WeTok config ({'; '.join(diffs)}); load it through the card "
                          "of its release (`zoo list wetok`) or drop the conflicting overrides")
