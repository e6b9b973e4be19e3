"""Fixtures for the reliability matrix: tiny models loaded once per package, and ``env``, the
namespace every row receives (models, a release file, a fresh temporary folder)."""

from __future__ import annotations

import types

import pytest


@pytest.fixture(scope="package")
def patchvq_registered():
    """The example third-party plugin (patchvq, 32x32 images, 64 tokens) for the whole package."""
    import zoo_patchvq

    from zoo.testing.plugins import temporary_plugin

    with temporary_plugin(zoo_patchvq, "patchvq-reliability") as registry:
        yield registry


@pytest.fixture(scope="package")
def patchvq_release(patchvq_registered, tmp_path_factory):
    from tests.conftest import write_patchvq_release

    return write_patchvq_release(tmp_path_factory.mktemp("patchvq") / "release", dim=8)


@pytest.fixture(scope="package")
def patchvq_model(patchvq_release):
    import zoo

    return zoo.load("patchvq.tiny", weights=patchvq_release)


@pytest.fixture(scope="package")
def flextok_demo():
    import zoo

    return zoo.load("flextok.demo_128")


@pytest.fixture
def env(patchvq_model, patchvq_release, flextok_demo, tmp_path, monkeypatch):
    return types.SimpleNamespace(patchvq=patchvq_model, release=patchvq_release, flextok=flextok_demo,
                                 tmp=tmp_path, monkeypatch=monkeypatch)
