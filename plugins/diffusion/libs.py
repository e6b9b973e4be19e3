"""Lazy imports of the ``zoo[diffusion]`` extra with errors that name the fix.

Example:
    >>> MIN_DIFFUSERS
    '0.32.0'
"""

from __future__ import annotations

from typing import Any

from zoo.errors import ZooError

__all__ = ["MIN_DIFFUSERS", "diffusers_module", "transformers_module"]

#: diffusers' first release with every public class this plugin uses (PixArtTransformer2DModel,
#: SD3Transformer2DModel, AutoencoderDC, FlowMatchEulerDiscreteScheduler's shift options).
MIN_DIFFUSERS = "0.32.0"
_HINT = "`pip install 'zoo[diffusion]'` (diffusers and transformers)"


def diffusers_module() -> Any:
    """``import diffusers`` (torchvision made importable first), or a ZooError naming the extra."""
    from zoo.compat.torchvision import ensure_torchvision

    ensure_torchvision()
    try:
        import diffusers
    except ModuleNotFoundError:
        raise ZooError(f"this generator runs on diffusers, which is not installed: {_HINT}") from None
    from packaging.version import Version

    if Version(diffusers.__version__.split(".dev")[0]) < Version(MIN_DIFFUSERS):
        raise ZooError(f"diffusers {diffusers.__version__} is too old: `pip install -U 'diffusers>={MIN_DIFFUSERS}'`")
    return diffusers


def transformers_module() -> Any:
    """``import transformers`` (for the text encoders), or a ZooError naming the extra."""
    from zoo.compat.torchvision import ensure_torchvision

    ensure_torchvision()
    try:
        import transformers
    except ModuleNotFoundError:
        raise ZooError(f"the text encoders run on transformers, which is not installed: {_HINT}") from None
    return transformers
