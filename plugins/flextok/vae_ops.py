"""FlexTok's VAE kernels now live in core: :mod:`zoo.nn.conv_ops` (shared by every conv autoencoder).

This module keeps the names importable from their old place (FlexTok's parity tests and
benchmarks import them from here).

Example:
    >>> from zoo_plugins.flextok.vae_ops import upsample_conv
    >>> upsample_conv.__module__
    'zoo.nn.conv_ops'
"""

from zoo.nn.conv_ops import (
    conv1x1,
    downsample_pad,
    fold_upsample_conv_weight,
    group_norm_silu,
    upsample_conv,
    winograd_conv3x3,
    winograd_weight,
)

__all__ = [
    "conv1x1", "downsample_pad", "fold_upsample_conv_weight", "group_norm_silu", "upsample_conv",
    "winograd_conv3x3", "winograd_weight",
]
