"""The few core calls the reducers plugin depends on, kept in one place."""

from __future__ import annotations

__all__ = ["import_timm"]


def import_timm():
    """Import timm (``zoo.compat.torchvision`` makes the CUDA torchvision wheel importable)."""
    from zoo.compat.torchvision import import_timm as _import_timm

    return _import_timm()
