"""ViTok-v2's typed config and its variant strings, parsed as data.

A variant reads ``ENC[-DEC]/T x P x C`` (``"Ld4-Ld24/1x16x64"``): an encoder and a decoder size
(a base letter ``B``/``L``/``G``/``T``/``E`` with optional ``w<width>``, ``d<depth>``, ``h<heads>``,
``m<mlp factor>`` overrides, or ``w<width>_d<depth>_h<heads>[_m<mlp>]``), then the temporal
stride, the patch size (spatial stride) and the latent channels per token. Nothing in the string
is executed; an unknown base or a malformed string is a :class:`~zoo.errors.ConfigError`.

Example:
    >>> a = parse_variant("Ld4-Ld24/1x16x64")
    >>> (a.encoder.width, a.encoder.depth, a.encoder.heads), (a.decoder.depth, a.patch, a.channels)
    ((1024, 4, 16), (24, 16, 64))
    >>> a.encoder.mlp_hidden, a.pixels_per_token
    (2736, 768)
    >>> parse_variant("w64_d2_h4-w96_d3_h4/1x8x16").decoder.width
    96
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

from zoo.errors import ConfigError

__all__ = ["ViTokConfig", "ViTokArch", "TowerArch", "parse_variant", "BASES"]

#: base letter -> (width, depth, heads); the MLP factor defaults to 2.67 (vitok/models/ae.py)
BASES = {"B": (768, 12, 12), "L": (1024, 24, 16), "G": (1728, 32, 24), "T": (3072, 40, 24), "E": (4096, 48, 32)}
MLP_FACTOR = 2.67


@dataclass(frozen=True)
class TowerArch:
    """One transformer tower (encoder or decoder) of ViTok-v2."""

    width: int
    depth: int
    heads: int
    mlp_factor: float

    def hidden(self, mlp_factor: float) -> int:
        """SwiGLU width: ``int(width * factor)`` rounded to a multiple of 16 as the reference does."""
        return ((int(self.width * mlp_factor) + 8) // 16) * 16

    @property
    def mlp_hidden(self) -> int:
        return self.hidden(self.mlp_factor)


@dataclass(frozen=True)
class ViTokArch:
    """A parsed variant: both towers (sharing the larger MLP factor, as the reference does), the
    temporal stride, patch size and channels per token."""

    encoder: TowerArch
    decoder: TowerArch
    temporal_stride: int
    patch: int
    channels: int

    @property
    def pixels_per_token(self) -> int:
        return self.patch * self.patch * self.temporal_stride * 3


def _tower(spec: str, variant: str) -> TowerArch:
    m = re.fullmatch(r"w(\d+)_d(\d+)_h(\d+)(?:_m(\d+(?:\.\d+)?))?", spec)
    if m:
        return TowerArch(int(m[1]), int(m[2]), int(m[3]), float(m[4]) if m[4] else MLP_FACTOR)
    mods = dict.fromkeys("wdhm")
    rest = spec
    for key in "wdhm":
        pattern = rf"{key}(\d+(?:\.\d+)?)" if key == "m" else rf"{key}(\d+)"
        found = re.search(pattern, rest)
        if found:
            mods[key] = found[1]
            rest = rest[:found.start()] + rest[found.end():]
    if rest and rest not in BASES:
        raise ConfigError(f"ViTok variant {variant!r}: unknown size {rest!r} (known: {', '.join(BASES)}, or "
                          "w<width>_d<depth>_h<heads>)")
    width, depth, heads = BASES.get(rest, BASES["B"])
    return TowerArch(int(mods["w"] or width), int(mods["d"] or depth), int(mods["h"] or heads),
                     float(mods["m"]) if mods["m"] else MLP_FACTOR)


def parse_variant(variant: str) -> ViTokArch:
    """``"ENC[-DEC]/[T x ]P x C"`` -> :class:`ViTokArch` (see the module doc)."""
    if not isinstance(variant, str) or variant.count("/") != 1:
        raise ConfigError(f"ViTok variant must read 'ENC[-DEC]/TxPxC' (e.g. 'Ld4-Ld24/1x16x64'), got {variant!r}")
    towers, strides = variant.split("/")
    enc, _, dec = towers.partition("-")
    try:
        parts = [int(p) for p in strides.split("x")]
    except ValueError:
        raise ConfigError(f"ViTok variant {variant!r}: strides must be integers 'TxPxC' or 'PxC'") from None
    if len(parts) == 2:
        parts = [1, *parts]
    if len(parts) != 3 or min(parts) <= 0:
        raise ConfigError(f"ViTok variant {variant!r}: expected 'TxPxC' or 'PxC' with positive integers")
    e, d = _tower(enc, variant), _tower(dec or enc, variant)
    factor = max(e.mlp_factor, d.mlp_factor)
    e, d = TowerArch(e.width, e.depth, e.heads, factor), TowerArch(d.width, d.depth, d.heads, factor)
    for name, t in (("encoder", e), ("decoder", d)):
        if t.width % t.heads or (t.width // t.heads) % 4:
            raise ConfigError(f"ViTok variant {variant!r}: {name} width {t.width} / {t.heads} heads must give a head "
                              "size divisible by 4 (2-D RoPE)")
    return ViTokArch(encoder=e, decoder=d, temporal_stride=parts[0], patch=parts[1], channels=parts[2])


@dataclass
class ViTokConfig:
    """``variant``: the release's variant string (see :func:`parse_variant`); ``image_size``: the
    side ``zoo reconstruct`` resizes to (the model takes any size); ``rope_theta``: 10000 in
    every release; ``sliding_window``: ``None`` (no release uses one; the reference's SDPA path
    ignores it)."""

    variant: str = "Ld4-Ld24/1x16x64"
    image_size: int = 256
    rope_theta: float = 10000.0
    sliding_window: Optional[int] = None

    def arch(self) -> ViTokArch:
        a = parse_variant(self.variant)
        if a.temporal_stride != 1:
            raise ConfigError(f"ViTok variant {self.variant!r}: temporal stride {a.temporal_stride} (video) is not "
                              "supported; every published ViTok-v2 checkpoint is an image model (stride 1)")
        if self.sliding_window not in (None, 0):
            raise ConfigError("ViTok sliding-window attention is not supported (no published checkpoint uses it)")
        return a
