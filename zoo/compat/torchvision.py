"""Make ``timm`` importable with a CUDA build of torchvision on a CPU-only torch.

The torchvision wheel on PyPI is a CUDA build; with a CPU torch its import fails with
``operator torchvision::nms does not exist`` (its fake-kernel registrations need op schemas that
its C++ extension would have defined). timm imports torchvision, so timm fails too.

:func:`ensure_torchvision` imports torchvision; only if that fails with exactly this error does it
define the two missing schemas (``torchvision::nms``, ``torchvision::qnms``, without kernels: the
ops raise if called) and import again. On a healthy torchvision it changes nothing.

Example:
    >>> from zoo.compat.torchvision import ensure_torchvision
    >>> status = ensure_torchvision()
    >>> status in ("healthy", "patched", "absent")
    True
"""

from __future__ import annotations

import sys

__all__ = ["ensure_torchvision", "import_timm", "status"]

_SCHEMAS = {
    "nms": "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms": "qnms(Tensor qdets, Tensor scores, float iou_threshold) -> Tensor",
}
_status: str | None = None
_library = None  # keeps the torch.library.Library alive


def _missing_op_error(exc: BaseException) -> bool:
    return "torchvision::" in str(exc) and "does not exist" in str(exc)


def _purge() -> None:
    for mod in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
        del sys.modules[mod]


def ensure_torchvision() -> str:
    """Import torchvision, defining the missing op schemas only if needed.

    Returns ``"healthy"`` (imported as is), ``"patched"`` (schemas defined, then imported) or
    ``"absent"`` (torchvision not installed).
    """
    global _status, _library
    if _status is not None:
        return _status
    try:
        import torchvision  # noqa: F401
        _status = "healthy"
    except ModuleNotFoundError:
        _status = "absent"
    except RuntimeError as exc:
        if not _missing_op_error(exc):
            raise
        import torch

        _purge()
        _library = torch.library.Library("torchvision", "FRAGMENT")
        for schema in _SCHEMAS.values():
            try:
                _library.define(schema)
            except RuntimeError:
                pass  # already defined by someone else
        import torchvision  # noqa: F401,F811
        _status = "patched"
    return _status


def status() -> str:
    """What :func:`ensure_torchvision` did, or ``"not checked"`` (for ``zoo doctor``)."""
    return _status or "not checked"


def import_timm():
    """``import timm`` after :func:`ensure_torchvision`; a clear error if timm is missing."""
    ensure_torchvision()
    try:
        import timm
    except ModuleNotFoundError as exc:
        raise ModuleNotFoundError("timm is not installed; `pip install 'zoo[timm]'`") from exc
    return timm
