"""Official key layouts of the conv autoencoder, mapped as data onto zoo's (diffusers') names.

zoo's :mod:`zoo.nn.conv_ae` modules carry diffusers' names. Releases in other layouts are
renamed by the rule tables below, both ways (:func:`convert_state_dict`): each rule pairs a
key prefix in the official layout with the canonical one; ``{i}``/``{j}`` stand for indices and
``{~i}`` for a level index counted from the other end (LDM stores decoder levels by resolution,
``up.0`` = full resolution, run last; zoo stores them in execution order). What follows the
prefix is renamed by the block's leaf table (ResNet: ``nin_shortcut`` -> ``conv_shortcut``;
attention: ``norm q k v proj_out`` 1x1 convs -> ``group_norm to_q to_k to_v to_out.0``
linears, weights reshaped ``[C, C, 1, 1]`` <-> ``[C, C]``). Keys outside ``encoder.`` /
``decoder.`` and keys no rule matches pass through unchanged (``conv_in``, ``conv_out``,
``quant_conv``, ...).

=========================  ======================================  ======================================
zoo / diffusers            LDM / taming (``ldm``)                  LlamaGen (``llamagen``)
=========================  ======================================  ======================================
``down_blocks.i.resnets.j``  ``down.i.block.j``                    ``conv_blocks.i.res.j``
``down_blocks.i.attentions.j``  ``down.i.attn.j``                  ``conv_blocks.i.attn.j``
``down_blocks.i.downsamplers.0.conv``  ``down.i.downsample.conv``  ``conv_blocks.i.downsample.conv``
``mid_block.resnets.0``    ``mid.block_1``                         ``mid.0``
``mid_block.attentions.0``  ``mid.attn_1``                         ``mid.1``
``mid_block.resnets.1``    ``mid.block_2``                         ``mid.2``
``up_blocks.i.resnets.j``  ``up.(n-1-i).block.j``                  ``conv_blocks.i.res.j``
``up_blocks.i.attentions.j``  ``up.(n-1-i).attn.j``                ``conv_blocks.i.attn.j``
``up_blocks.i.upsamplers.0.conv``  ``up.(n-1-i).upsample.conv``    ``conv_blocks.i.upsample.conv``
``conv_norm_out``          ``norm_out``                            ``norm_out``
=========================  ======================================  ======================================

Example:
    >>> import torch
    >>> sd = {"encoder.down.1.block.0.nin_shortcut.weight": torch.zeros(4, 2, 1, 1),
    ...       "decoder.up.0.attn.1.q.weight": torch.zeros(4, 4, 1, 1), "quant_conv.bias": torch.zeros(2)}
    >>> out = convert_state_dict(sd, "ldm", "diffusers", num_levels=3)
    >>> sorted((k, tuple(v.shape)) for k, v in out.items())  # doctest: +NORMALIZE_WHITESPACE
    [('decoder.up_blocks.2.attentions.1.to_q.weight', (4, 4)),
     ('encoder.down_blocks.1.resnets.0.conv_shortcut.weight', (4, 2, 1, 1)),
     ('quant_conv.bias', (2,))]
    >>> sorted(convert_state_dict(out, "diffusers", "ldm", num_levels=3)) == sorted(sd)
    True
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from zoo.errors import ConfigError

__all__ = ["LAYOUTS", "LayoutRule", "convert_state_dict", "layout_table"]


@dataclass(frozen=True)
class LayoutRule:
    """One prefix pair: ``official`` <-> ``canonical`` under ``scope`` (``encoder``, ``decoder`` or
    ``both``); ``block`` picks the leaf table of what follows (``resnet``, ``attention`` or ``""``)."""

    scope: str
    official: str
    canonical: str
    block: str = ""


R, A = "resnet", "attention"

#: The rule tables, one per official layout. ``diffusers`` is zoo's own (no rules).
LAYOUTS: dict[str, tuple[LayoutRule, ...]] = {
    "diffusers": (),
    "ldm": (
        LayoutRule("encoder", "down.{i}.block.{j}.", "down_blocks.{i}.resnets.{j}.", R),
        LayoutRule("encoder", "down.{i}.attn.{j}.", "down_blocks.{i}.attentions.{j}.", A),
        LayoutRule("encoder", "down.{i}.downsample.", "down_blocks.{i}.downsamplers.0."),
        LayoutRule("both", "mid.block_1.", "mid_block.resnets.0.", R),
        LayoutRule("both", "mid.attn_1.", "mid_block.attentions.0.", A),
        LayoutRule("both", "mid.block_2.", "mid_block.resnets.1.", R),
        LayoutRule("both", "norm_out.", "conv_norm_out."),
        LayoutRule("decoder", "up.{~i}.block.{j}.", "up_blocks.{i}.resnets.{j}.", R),
        LayoutRule("decoder", "up.{~i}.attn.{j}.", "up_blocks.{i}.attentions.{j}.", A),
        LayoutRule("decoder", "up.{~i}.upsample.", "up_blocks.{i}.upsamplers.0."),
    ),
    "llamagen": (
        LayoutRule("encoder", "conv_blocks.{i}.res.{j}.", "down_blocks.{i}.resnets.{j}.", R),
        LayoutRule("encoder", "conv_blocks.{i}.attn.{j}.", "down_blocks.{i}.attentions.{j}.", A),
        LayoutRule("encoder", "conv_blocks.{i}.downsample.", "down_blocks.{i}.downsamplers.0."),
        LayoutRule("both", "mid.0.", "mid_block.resnets.0.", R),
        LayoutRule("both", "mid.1.", "mid_block.attentions.0.", A),
        LayoutRule("both", "mid.2.", "mid_block.resnets.1.", R),
        LayoutRule("both", "norm_out.", "conv_norm_out."),
        LayoutRule("decoder", "conv_blocks.{i}.res.{j}.", "up_blocks.{i}.resnets.{j}.", R),
        LayoutRule("decoder", "conv_blocks.{i}.attn.{j}.", "up_blocks.{i}.attentions.{j}.", A),
        LayoutRule("decoder", "conv_blocks.{i}.upsample.", "up_blocks.{i}.upsamplers.0."),
    ),
}

#: Leaf renames inside a block (official -> canonical); ``True`` marks 1x1-conv <-> linear weights.
LEAVES: dict[str, dict[str, tuple[str, bool]]] = {
    R: {"nin_shortcut.": ("conv_shortcut.", False)},
    A: {"norm.": ("group_norm.", False), "q.": ("to_q.", True), "k.": ("to_k.", True), "v.": ("to_v.", True),
        "proj_out.": ("to_out.0.", True)},
}

_FIELD = re.compile(r"\{(~?)(\w+)\}")


def _compile(template: str) -> re.Pattern[str]:
    out, pos = [], 0
    for m in _FIELD.finditer(template):
        out.append(re.escape(template[pos:m.start()]))
        out.append(f"(?P<{'r_' if m.group(1) else ''}{m.group(2)}>\\d+)")
        pos = m.end()
    out.append(re.escape(template[pos:]))
    return re.compile("".join(out))


def _fill(template: str, values: dict[str, int], num_levels: int) -> str:
    def sub(m: re.Match[str]) -> str:
        v = values[m.group(2)]
        return str(num_levels - 1 - v if m.group(1) else v)

    return _FIELD.sub(sub, template)


def _values(m: re.Match[str], num_levels: int) -> dict[str, int]:
    out = {}
    for k, v in m.groupdict().items():
        out[k[2:] if k.startswith("r_") else k] = num_levels - 1 - int(v) if k.startswith("r_") else int(v)
    return out


def _leaf(rest: str, value: Any, block: str, to_canonical: bool) -> tuple[str, Any]:
    for off, (can, reshape) in LEAVES.get(block, {}).items():
        src, dst = (off, can) if to_canonical else (can, off)
        if rest.startswith(src):
            if reshape and rest.endswith("weight") and isinstance(value, (torch.Tensor, _Shape)):
                value = value.reshape(*value.shape[:2]) if to_canonical else value.reshape(*value.shape, 1, 1)
            return dst + rest[len(src):], value
    return rest, value


def convert_state_dict(state: Mapping[str, Any], src: str, dst: str, *, num_levels: int,
                       prefix: str = "") -> dict[str, Any]:
    """Rename the conv autoencoder keys of ``state`` from layout ``src`` to ``dst``
    (``"diffusers"`` = zoo's, ``"ldm"``, ``"llamagen"``), under ``prefix`` + ``encoder.`` / ``decoder.``.

    ``num_levels`` is ``len(ch_mult)`` (LDM numbers decoder levels from the other end). Values may
    be tensors (weights are reshaped where the layouts differ) or manifest entries ``(shape, dtype)``
    (:func:`zoo.testing.state_manifest`), reshaped alike.

    Example:
        >>> convert_state_dict({"encoder.mid.0.norm1.weight": 1}, "llamagen", "ldm", num_levels=2)
        {'encoder.mid.block_1.norm1.weight': 1}
    """
    for name in (src, dst):
        if name not in LAYOUTS:
            raise ConfigError(f"unknown conv autoencoder layout {name!r}; known: {sorted(LAYOUTS)}")
    if src == dst:
        return dict(state)
    if src != "diffusers":  # via the canonical names
        state = _convert(state, src, True, num_levels, prefix)
    return _convert(state, dst, False, num_levels, prefix) if dst != "diffusers" else dict(state)


def _convert(state: Mapping[str, Any], layout: str, to_canonical: bool, num_levels: int, prefix: str) -> dict[str, Any]:
    rules = [(r, _compile(r.official if to_canonical else r.canonical)) for r in LAYOUTS[layout]]
    out: dict[str, Any] = {}
    for key, value in state.items():
        new_key, new_value = key, value
        for part in ("encoder.", "decoder."):
            head = prefix + part
            if not key.startswith(head):
                continue
            rest = key[len(head):]
            for rule, pattern in rules:
                if rule.scope not in ("both", part[:-1]):
                    continue
                m = pattern.match(rest)
                if m is None:
                    continue
                vals = _values(m, num_levels)
                target = _fill(rule.canonical if to_canonical else rule.official, vals, num_levels)
                leaf, new_value = _leaf(rest[m.end():], _as_shape_aware(value), rule.block, to_canonical)
                new_key = head + target + leaf
                break
        if isinstance(new_value, _Shape):  # manifests: (shape, dtype) tuples
            new_value = (new_value.shape, *new_value.rest)
        out[new_key] = new_value
    return out


class _Shape:
    """A shape that reshapes like a tensor (so manifests convert with the same leaf rules)."""

    def __init__(self, shape: tuple, rest: tuple):
        self.shape, self.rest = tuple(shape), rest

    def reshape(self, *shape: int) -> _Shape:
        return _Shape(shape, self.rest)


def _as_shape_aware(value: Any) -> Any:
    if isinstance(value, tuple) and value and isinstance(value[0], (list, tuple)):
        return _Shape(tuple(value[0]), tuple(value[1:]))
    return value


def layout_table(layout: str) -> list[tuple[str, str, str]]:
    """``(scope, official prefix, zoo prefix)`` rows of one layout (for docs and reports).

    Example:
        >>> layout_table("llamagen")[0]
        ('encoder', 'conv_blocks.{i}.res.{j}.', 'down_blocks.{i}.resnets.{j}.')
    """
    if layout not in LAYOUTS:
        raise ConfigError(f"unknown conv autoencoder layout {layout!r}; known: {sorted(LAYOUTS)}")
    return [(r.scope, r.official, r.canonical) for r in LAYOUTS[layout]]
