"""Fixtures for the documentation tests: the generator module, and one strict site build.

The site is built once per session (``mkdocs build --strict``, in a subprocess, into a tmp dir)
with the example third-party plugin ``examples/zoo-patchvq`` *installed* next to zoo, so the
tests can check that an installed plugin's models reach the generated catalogue.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS_SCRIPTS = ROOT / "scripts" / "docs"


def load_script(name: str):
    """Import ``scripts/docs/<name>.py`` (scripts/ is not a package)."""
    mod_name = f"_zoo_docs_test_{name}"
    if mod_name in sys.modules:
        return sys.modules[mod_name]
    spec = importlib.util.spec_from_file_location(mod_name, DOCS_SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def gen():
    """scripts/docs/zoo_docs.py, the catalogue generators."""
    return load_script("zoo_docs")


@dataclass
class BuiltSite:
    root: Path
    seconds: float
    log: str
    extra_models: tuple[str, ...]  # models registered only by the installed example plugin


@pytest.fixture(scope="session")
def built_site(tmp_path_factory) -> BuiltSite:
    """``mkdocs build --strict`` of the whole site, with the example plugin installed."""
    pytest.importorskip("mkdocs", reason="the docs extra is not installed: pip install -e '.[docs]'")
    pytest.importorskip("mkdocstrings", reason="the docs extra is not installed: pip install -e '.[docs]'")
    pytest.importorskip("mkdocs_click", reason="the docs extra is not installed: pip install -e '.[docs]'")
    tmp = tmp_path_factory.mktemp("docs")
    # install the example plugin for real (entry point + dist-info), from a copy of its source
    src = tmp / "zoo-patchvq"
    shutil.copytree(ROOT / "examples" / "zoo-patchvq", src, ignore=shutil.ignore_patterns("build", "*.egg-info"))
    site_packages = tmp / "site-packages"
    pip = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", "--no-build-isolation",
         "--target", str(site_packages), str(src)],
        capture_output=True, text=True,
    )
    assert pip.returncode == 0, f"could not install the example plugin:\n{pip.stderr}"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(site_packages), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
        "ZOO_STRICT_PLUGINS": "1",
        "NO_MKDOCS_2_WARNING": "1",
    }
    site = tmp / "site"
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(ROOT / "mkdocs.yml"), "--site-dir", str(site)],
        capture_output=True, text=True, cwd=ROOT, env=env,
    )
    seconds = time.perf_counter() - start
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{proc.stdout}\n{proc.stderr}"
    return BuiltSite(root=site, seconds=seconds, log=proc.stdout + proc.stderr, extra_models=("patchvq.tiny",))
