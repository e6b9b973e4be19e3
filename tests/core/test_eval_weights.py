"""Metric networks' weights resolve like models: a local file, else zoo's cache, else one download
(checked against the hash in the file name); offline with nothing cached is a clear error."""

from __future__ import annotations

import hashlib
import os

import pytest
import torch

from zoo.errors import CheckpointError, HubError
from zoo.evaluation import metric_weights as mw


@pytest.fixture
def offline(monkeypatch, tmp_path, no_packaged_metric_weights):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    return tmp_path / "hub"


@pytest.fixture(scope="module")
def alex(tmp_path_factory):
    return mw.write_standin_weights("lpips-alex", tmp_path_factory.mktemp("w") / "alex.pth")


@pytest.mark.parametrize("name,key", [("lpips-alex", "lpips"), ("lpips-vgg", "lpips"), ("inception", "inception")])
def test_offline_with_nothing_cached_says_what_to_do(offline, name, key):
    spec = mw.METRIC_WEIGHTS[name]
    with pytest.raises(HubError) as err:
        mw.resolve_metric_weights(name)
    msg = str(err.value)
    assert spec.filename in msg and "zoo is offline (HF_HUB_OFFLINE=1 is set)" in msg
    assert str(offline / "zoo-metrics") in msg and spec.url in msg
    assert f"--metric-weights {key}=PATH" in msg


def test_the_metric_suite_fails_offline_before_any_work(offline):
    from zoo.evaluation.metrics import MetricSuite

    with pytest.raises(HubError, match="AlexNet ImageNet features"):
        MetricSuite("image", ["psnr", "lpips"])
    with pytest.raises(HubError, match="FID Inception"):
        MetricSuite("image", ["rfid"])
    assert MetricSuite("image", ["psnr", "ssim"]).names == ["psnr", "ssim"]  # no network needed


def test_a_local_file_is_used_as_given(offline, alex):
    assert mw.resolve_metric_weights("lpips-alex", alex) == alex
    with pytest.raises(HubError, match="weights file not found"):
        mw.resolve_metric_weights("lpips-alex", alex.parent / "missing.pth")


def test_the_cache_is_used_offline(offline, alex):
    cached = offline / "zoo-metrics" / mw.METRIC_WEIGHTS["lpips-alex"].filename
    cached.parent.mkdir(parents=True)
    cached.write_bytes(alex.read_bytes())
    assert mw.resolve_metric_weights("lpips-alex") == cached
    assert mw.metric_cache_dir() == offline / "zoo-metrics"


def test_files_are_read_weights_only(tmp_path):
    """torch-fidelity unpickles the Inception file with weights_only=False: zoo reads it weights-only
    first, so a file that would run code never reaches it."""
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    bad = tmp_path / "evil.pth"
    torch.save({"w": Payload()}, bad)
    with pytest.raises(CheckpointError, match="weights-only"):
        mw.resolve_metric_weights("inception", bad)
    from zoo.evaluation.metrics import MetricSuite

    with pytest.raises(CheckpointError):
        MetricSuite("image", ["rfid"], weights={"rfid": bad})
    assert not marker.exists()
    empty = tmp_path / "empty.pth"
    torch.save({}, empty)
    with pytest.raises(CheckpointError, match="expected a state dict"):
        mw.resolve_metric_weights("inception", empty)


def _local_release(monkeypatch, tmp_path, alex, prefix=None):
    """Serve the stand-in from a file:// URL named like the release (hash prefix in the name)."""
    digest = hashlib.sha256(alex.read_bytes()).hexdigest()
    name = f"alexnet-owt-{digest[:8]}.pth"
    src = tmp_path / "release" / name
    src.parent.mkdir()
    src.write_bytes(alex.read_bytes())
    spec = mw.MetricWeights("lpips-alex", "AlexNet ImageNet features (test release)", src.as_uri(), "test",
                            prefix if prefix is not None else digest[:8])
    monkeypatch.setitem(mw.METRIC_WEIGHTS, "lpips-alex", spec)
    return src, spec


def test_download_goes_into_the_cache_once(monkeypatch, tmp_path, alex, no_packaged_metric_weights):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    src, spec = _local_release(monkeypatch, tmp_path, alex)
    got = mw.resolve_metric_weights("lpips-alex", cache_dir=tmp_path / "hub")
    assert got == tmp_path / "hub" / "zoo-metrics" / spec.filename
    assert got.read_bytes() == alex.read_bytes()
    src.unlink()  # the second call finds it in the cache
    assert mw.resolve_metric_weights("lpips-alex", cache_dir=tmp_path / "hub") == got


def test_a_download_that_does_not_match_its_hash_is_not_kept(monkeypatch, tmp_path, alex, no_packaged_metric_weights):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    _, spec = _local_release(monkeypatch, tmp_path, alex, prefix="00000000")
    with pytest.raises(HubError, match="the file was not kept"):
        mw.resolve_metric_weights("lpips-alex", cache_dir=tmp_path / "hub")
    assert not (tmp_path / "hub" / "zoo-metrics" / spec.filename).exists()


def test_an_unreachable_url_is_a_hub_error(monkeypatch, tmp_path, no_packaged_metric_weights):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    spec = mw.MetricWeights("lpips-alex", "AlexNet", (tmp_path / "nowhere" / "alexnet-owt-7be5be79.pth").as_uri(), "test")
    monkeypatch.setitem(mw.METRIC_WEIGHTS, "lpips-alex", spec)
    with pytest.raises(HubError, match="could not download AlexNet"):
        mw.resolve_metric_weights("lpips-alex", cache_dir=tmp_path / "hub")


def test_standin_weights_have_the_published_layout(tmp_path):
    from zoo.compat.torchvision import ensure_torchvision

    ensure_torchvision()
    import torchvision

    state = torch.load(mw.write_standin_weights("lpips-squeeze", tmp_path / "s.pth"), weights_only=True)
    assert set(state) == set(torchvision.models.squeezenet1_1().state_dict())
    with pytest.raises(HubError, match="no metric weights named"):
        mw.write_standin_weights("clip", tmp_path / "c.pth")
