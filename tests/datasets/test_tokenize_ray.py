"""The Ray engine writes the same bytes as the local engine: on a local Ray runtime
(``ray.init(num_cpus=2)``) and on a simulated two-node cluster (``ray.cluster_utils.Cluster``)."""

from __future__ import annotations

import json

import pytest
import torch

import zoo

from .conftest import DEMO, png_bytes, wav_bytes
from .test_tokenize import tree

ray = pytest.importorskip("ray", reason="the Ray engine needs Ray: pip install 'zoo[ray]'")
pytestmark = pytest.mark.slow  # a Ray runtime starts in ~10 s per test
pytest.importorskip("pyarrow", reason="zoo tokenize writes Parquet: pip install 'zoo[datasets]'")


@pytest.fixture
def images(tmp_path):
    root = tmp_path / "images"
    root.mkdir()
    for i in range(7):
        (root / f"{i:02d}.png").write_bytes(png_bytes(i))
    (root / "03b.png").write_bytes(b"not a png")
    return root


@pytest.fixture
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def test_ray_runtime_matches_the_local_engine(local_ray, images, tmp_path):
    args = {"batch_size": 3, "shard_size": 4, "tokens": 16, "progress": False}
    zoo.tokenize(DEMO, [images], tmp_path / "local", workers=0, **args)
    summary = zoo.tokenize(DEMO, [images], tmp_path / "ray", engine="ray", actors=1, **args)
    assert (summary.written, summary.failed, summary.engine) == (7, 1, "ray")
    assert tree(tmp_path / "ray") == tree(tmp_path / "local")
    manifest = json.loads((tmp_path / "ray" / "manifest.json").read_text())
    assert manifest["failures"][0]["key"] == "03b.png"


def test_a_model_object_travels_to_the_actors(local_ray, tmp_path):
    """A random-weight model (no card weights to load) is shipped pickled: the actors' tokens
    equal the local engine's."""
    from zoo_plugins.snac.testing import SMALL

    torch.manual_seed(0)
    snac = zoo.load("snac.24khz", pretrained=False, **SMALL["plain"])
    root = tmp_path / "audio"
    root.mkdir()
    for i, n in enumerate((1600, 3200, 1600, 800)):
        (root / f"{i}.wav").write_bytes(wav_bytes(i, samples=n, rate=16000))
    zoo.tokenize(snac, [root], tmp_path / "local", workers=0, batch_size=2, progress=False)
    zoo.tokenize(snac, [root], tmp_path / "ray", engine="ray", actors=1, batch_size=2, progress=False)
    assert tree(tmp_path / "ray") == tree(tmp_path / "local")


def test_two_node_cluster_with_two_actors(images, tmp_path):
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    cluster.add_node(num_cpus=2)
    try:
        ray.init(address=cluster.address, include_dashboard=False, log_to_driver=False)
        assert len([n for n in ray.nodes() if n["Alive"]]) == 2
        args = {"batch_size": 2, "shard_size": 3, "progress": False}
        zoo.tokenize(DEMO, [images], tmp_path / "local", workers=0, **args)
        summary = zoo.tokenize(DEMO, [images], tmp_path / "cluster", engine="ray", actors=2, **args)
        assert (summary.written, summary.failed) == (7, 1)
        assert tree(tmp_path / "cluster") == tree(tmp_path / "local")
    finally:
        ray.shutdown()
        cluster.shutdown()
