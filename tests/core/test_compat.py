"""timm imports on this machine; a healthy torchvision is left untouched."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest


def test_timm_imports_and_builds_a_vit():
    pytest.importorskip("timm")
    import torch

    from zoo.compat.torchvision import import_timm, status

    timm = import_timm()
    model = timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=3)
    assert model(torch.zeros(1, 3, 224, 224)).shape == (1, 3)
    assert status() in ("healthy", "patched")


def test_healthy_torchvision_is_not_touched(tmp_path):
    fake = tmp_path / "torchvision"
    fake.mkdir()
    (fake / "__init__.py").write_text("HEALTHY = True\n")
    code = textwrap.dedent(
        """
        import torch
        from zoo.compat.torchvision import ensure_torchvision
        print(ensure_torchvision())
        print(hasattr(torch.ops.torchvision, "nms"))
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={"PYTHONPATH": str(tmp_path), "PATH": ""})
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["healthy", "False"]


def test_absent_torchvision_reports_absent(tmp_path):
    code = "import sys; sys.modules['torchvision'] = None\nfrom zoo.compat.torchvision import ensure_torchvision\nprint(ensure_torchvision())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "absent", out.stderr


def test_other_import_errors_are_not_hidden(tmp_path):
    fake = tmp_path / "torchvision"
    fake.mkdir()
    (fake / "__init__.py").write_text("raise RuntimeError('something else broke')\n")
    code = "from zoo.compat.torchvision import ensure_torchvision\nensure_torchvision()"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={"PYTHONPATH": str(tmp_path), "PATH": ""})
    assert out.returncode != 0 and "something else broke" in out.stderr
