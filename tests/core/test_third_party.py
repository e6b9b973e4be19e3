"""The example third-party package, installed for real, is found through its entry point."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_installed_example_plugin_is_discovered_and_runs(tmp_path):
    target = tmp_path / "site"
    source = tmp_path / "zoo-patchvq"  # build from a copy: setuptools writes build/ and egg-info in-tree
    shutil.copytree(ROOT / "examples" / "zoo-patchvq", source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    pip = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--no-index",
         "--target", str(target), str(source)],
        capture_output=True, text=True,
    )
    assert pip.returncode == 0, pip.stderr
    assert any(target.glob("zoo_patchvq-*.dist-info/entry_points.txt"))
    code = (
        "import zoo, torch; "
        "print(zoo.list_models('patchvq*')); "
        "print([p['name'] for p in zoo.plugins() if p['distribution'] == 'zoo-patchvq']); "
        "m = zoo.load('patchvq.tiny', pretrained=False); "
        "t = m.encode(torch.zeros(1, 3, 32, 32)); print(tuple(t.ids.shape), tuple(m.decode(t).shape))"
    )
    env = {**os.environ, "PYTHONPATH": str(target), "ZOO_STRICT_PLUGINS": "1"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["['patchvq.tiny']", "['patchvq']", "(1, 64) (1, 3, 32, 32)"]
