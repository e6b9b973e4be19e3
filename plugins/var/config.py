"""Typed configs of VAR (FoundationVision/VAR): the multi-scale VQVAE and the next-scale transformer.

Field names follow the reference's constructor arguments (``models/vqvae.py`` ``VQVAE``,
``models/var.py`` ``VAR``, ``models/__init__.py`` ``build_vae_var``).

Example:
    >>> VARConfig().embed_dim, sum(p * p for p in VARConfig().patch_nums)
    (1024, 680)
    >>> VQVAEConfig().conv_config().widths
    (160, 160, 320, 320, 640)
"""

from __future__ import annotations

from dataclasses import dataclass, field

from zoo.nn.conv_ae import ConvAEConfig

__all__ = ["PATCH_NUMS", "VARConfig", "VQVAEConfig"]

#: The reference's scale schedules by resolution (``utils/arg_util.py`` ``--pn``).
PATCH_NUMS = {
    256: (1, 2, 3, 4, 5, 6, 8, 10, 13, 16),
    512: (1, 2, 3, 4, 6, 9, 13, 18, 24, 32),
    1024: (1, 2, 3, 4, 5, 7, 9, 12, 16, 21, 27, 36, 48, 64),
}


@dataclass
class VQVAEConfig:
    """VAR's ``VQVAE``: an LDM-style conv encoder/decoder (``ch_mult`` ``(1, 1, 2, 2, 4)``, two
    ResNet blocks per level, attention at the lowest level and in the middle), 3x3
    ``quant_conv``/``post_quant_conv``, and a multi-scale residual quantizer with
    ``share_quant_resi`` partially shared phi convs (``quant_resi`` mixing ratio).

    ``v_patch_nums`` is the default scale schedule; the 512 px generator passes its own."""

    vocab_size: int = 4096
    z_channels: int = 32
    ch: int = 160
    ch_mult: list[int] = field(default_factory=lambda: [1, 1, 2, 2, 4])
    num_res_blocks: int = 2
    using_znorm: bool = False
    quant_conv_ks: int = 3
    quant_resi: float = 0.5
    share_quant_resi: int = 4
    default_qresi_counts: int = 0
    v_patch_nums: list[int] = field(default_factory=lambda: list(PATCH_NUMS[256]))
    beta: float = 0.25  # commitment loss weight: training only

    @property
    def downsample_factor(self) -> int:
        return 2 ** (len(self.ch_mult) - 1)

    def conv_config(self) -> ConvAEConfig:
        """The shared conv core's config (attention at the lowest-resolution level and the middle)."""
        lowest = self.downsample_factor
        return ConvAEConfig(ch=self.ch, ch_mult=tuple(self.ch_mult), num_res_blocks=self.num_res_blocks,
                            z_channels=self.z_channels, resolution=lowest, attn_resolutions=(1,))


@dataclass
class VARConfig:
    """VAR transformer: ``depth`` blocks of width ``embed_dim`` with ``num_heads`` heads (the cards
    set ``build_vae_var``'s ``64 * depth`` and ``depth``), adaLN from the class embedding (``shared_aln``: one shared adaLN linear,
    the ``-s`` models), l2-normalised q/k with a learned per-head scale (``attn_l2_norm``).

    Sampler defaults are the README's FID settings (``cfg=1.5, top_k=900, top_p=0.96``);
    ``guidance_scale`` is zoo's ``w`` at the last scale: the reference's ``cfg`` is
    ``guidance_scale - 1`` (``w(r) = 1 + cfg * r`` over the scales, ``r = k / (K - 1)``)."""

    depth: int = 16
    embed_dim: int = 1024
    num_heads: int = 16
    mlp_ratio: float = 4.0
    num_classes: int = 1000
    norm_eps: float = 1e-6
    shared_aln: bool = False
    attn_l2_norm: bool = True
    patch_nums: list[int] = field(default_factory=lambda: list(PATCH_NUMS[256]))
    vae_channels: int = 32
    vocab_size: int = 4096
    image_size: int = 256
    guidance_scale: float = 2.5
    top_k: int = 900
    top_p: float = 0.96
    more_smooth: bool = False
    tokenizer: str = "var_vqvae.ch160v4096z32"
