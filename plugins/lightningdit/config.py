"""Typed config of a LightningDiT generator (hustvl/LightningDiT ``models/lightningdit.py`` and
``configs/reproductions/lightningdit_xl_vavae_f16d32_{800ep,64ep}_cfg.yaml``).

Example:
    >>> c = LightningDiTConfig()
    >>> c.hidden_size, c.depth, c.cfg_scale, c.cfg_interval_start
    (1152, 28, 6.7, 0.125)
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["LightningDiTConfig"]


@dataclass
class LightningDiTConfig:
    """Architecture (``LightningDiT-XL/1``: depth 28, width 1152, 16 heads, patch 1, SwiGLU,
    RMSNorm, RoPE, no QK-norm, shift kept in adaLN) and the sampler of the reproduction configs
    (rectified-flow ODE, Euler on ``linspace(0, 1, 250)`` shifted by ``timestep_shift``; CFG on the
    first ``cfg_channels`` latent channels, only for ``t >= cfg_interval_start``). ``cfg_scale``
    is LightningDiT's weight in ``uncond + cfg_scale (cond - uncond)``: zoo's ``w``."""

    input_size: int = 16
    patch_size: int = 1
    in_channels: int = 32
    hidden_size: int = 1152
    depth: int = 28
    num_heads: int = 16
    mlp_ratio: float = 4.0
    num_classes: int = 1000
    class_dropout_prob: float = 0.1
    learn_sigma: bool = False
    use_qknorm: bool = False
    use_swiglu: bool = True
    use_rope: bool = True
    use_rmsnorm: bool = True
    wo_shift: bool = False
    # sampler defaults (reproduction configs)
    num_sampling_steps: int = 250
    cfg_scale: float = 6.7
    cfg_interval_start: float = 0.125
    timestep_shift: float = 0.3
    cfg_channels: int = 3
    vae: str = "va_vae.f16d32"
