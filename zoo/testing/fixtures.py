"""pytest fixtures for zoo and plugin tests: ``pytest_plugins = ["zoo.testing.fixtures"]``.

* ``hub_stand_in``: a running :class:`~zoo.testing.hub.HubStandIn` over a temporary folder,
  with ``HF_ENDPOINT``/``HF_HUB_CACHE`` pointed at it (``hub_stand_in.root`` to add repos).
* ``zoo_registry``: a fresh registry for the test (register plugins with ``register_plugin``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from zoo.testing.hub import HubStandIn, hub_env
from zoo.testing.plugins import isolated_registry


@pytest.fixture
def hub_stand_in(tmp_path: Path) -> Iterator[HubStandIn]:
    """A running hub stand-in over ``tmp_path / "hub"``, with the environment pointed at it."""
    root = tmp_path / "hub"
    root.mkdir()
    hub = HubStandIn(root).start()
    hub.cache_dir = tmp_path / "hf-cache"
    with hub_env(hub.url, hub.cache_dir):
        yield hub
    hub.stop()


@pytest.fixture
def zoo_registry():
    with isolated_registry(entry_points=False) as registry:
        yield registry
