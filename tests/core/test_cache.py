"""`zoo cache ls / rm / verify` and `zoo doctor`'s cache lines, on a cache filled from the stand-in."""

from __future__ import annotations

import json
import os
import time
import types

import pytest
from click.testing import CliRunner

import zoo
from zoo.cli import cli
from zoo.hookspecs import hookimpl
from zoo.testing.plugins import temporary_plugin

REPO = "org/shared"
FILES = {"a.bin": b"A" * 3000, "b.bin": b"B" * 5000, "shared.json": b'{"x": 1}'}


@hookimpl
def _register_cards(register):
    base = {"kind": "tokenizer", "plugin": "x", "modality": "image", "license": {"code": "MIT"}, "hub_repo": REPO}
    register({**base, "name": "cachetest.a", "files": ["a.bin", "shared.json"]})
    register({**base, "name": "cachetest.b", "files": ["b.bin", "shared.json"]})


@pytest.fixture
def cached(hub_stand_in):
    """Both cards downloaded into the stand-in's cache; they share repo and shared.json's blob."""
    for name, data in FILES.items():
        (hub_stand_in.root / REPO).mkdir(parents=True, exist_ok=True)
        (hub_stand_in.root / REPO / name).write_bytes(data)
    with temporary_plugin(types.SimpleNamespace(register_cards=_register_cards), "cachetest"):
        zoo.download("cachetest.a")
        zoo.download("cachetest.b")
        yield hub_stand_in


def _ls(*args):
    result = CliRunner().invoke(cli, ["cache", "ls", "--json", *args])
    assert result.exit_code == 0, result.output
    return {m["name"]: m for m in json.loads(result.output)}


def test_ls_lists_models_with_files_size_revision_status(cached):
    models = _ls()
    assert set(models) == {"cachetest.a", "cachetest.b"}
    a = models["cachetest.a"]
    assert sorted(f["name"] for f in a["files"]) == ["a.bin", "shared.json"]
    assert a["size_on_disk"] == len(FILES["a.bin"]) + len(FILES["shared.json"])
    assert a["status"] == "complete" and a["repo"] == REPO and len(a["revisions"]) == 1
    assert set(_ls("cachetest.b")) == {"cachetest.b"}
    table = CliRunner().invoke(cli, ["cache", "ls"]).output
    assert "cachetest.a" in table and "complete" in table and str(cached.cache_dir) in table


def test_rm_keeps_blobs_another_model_uses(cached):
    runner = CliRunner()
    refused = runner.invoke(cli, ["cache", "rm", "cachetest.a"], input="n\n")
    assert "nothing removed" in refused.output and set(_ls()) == {"cachetest.a", "cachetest.b"}
    result = runner.invoke(cli, ["cache", "rm", "cachetest.a", "--yes"])
    assert result.exit_code == 0, result.output
    assert "also used by cachetest.b" in result.output
    left = _ls()
    assert left["cachetest.b"]["status"] == "complete"
    # shared.json stays (cachetest.b uses it), so cachetest.a shows as partial, missing a.bin
    assert left["cachetest.a"]["status"] == "partial" and left["cachetest.a"]["missing"] == ["a.bin"]
    blobs = {p.read_bytes() for p in cached.cache_dir.rglob("blobs/*")}
    assert blobs == {FILES["b.bin"], FILES["shared.json"]}  # a.bin's blob gone, the shared one kept
    cached.stop()  # b still loads from the cache alone
    os.environ["HF_HUB_OFFLINE"] = "1"
    try:
        from zoo.hub import resolve_files

        got = resolve_files(zoo.get_card("cachetest.b"))
        assert got["shared.json"].read_bytes() == FILES["shared.json"]
    finally:
        del os.environ["HF_HUB_OFFLINE"]
    assert runner.invoke(cli, ["cache", "rm", "cachetest.b", "--yes"]).exit_code == 0
    # shared.json stays while a model that lists it is (partially) cached: both are partial now
    assert {n: m["status"] for n, m in _ls().items()} == {"cachetest.a": "partial", "cachetest.b": "partial"}
    assert runner.invoke(cli, ["cache", "rm", "cachetest.a", "cachetest.b", "--yes"]).exit_code == 0
    assert _ls() == {} and not (cached.cache_dir / "models--org--shared").exists()


def test_rm_unknown_name_is_a_clear_error(cached):
    result = CliRunner().invoke(cli, ["cache", "rm", "nothing.here", "--yes"])
    assert result.exit_code == 1 and "'nothing.here' is not in the cache" in result.output


def test_rm_partial_removes_only_old_incomplete_files(cached):
    blobs = next(cached.cache_dir.rglob("blobs"))
    old, fresh = blobs / ("1" * 64 + ".incomplete"), blobs / ("2" * 64 + ".abcd1234.incomplete")
    old.write_bytes(b"x" * 100)
    fresh.write_bytes(b"y" * 10)
    two_days_ago = time.time() - 2 * 24 * 3600
    os.utime(old, (two_days_ago, two_days_ago))
    assert "in .incomplete downloads" in CliRunner().invoke(cli, ["cache", "ls"]).output
    result = CliRunner().invoke(cli, ["cache", "rm", "--partial", "--yes"])
    assert result.exit_code == 0 and "removed 1 partial download(s), 100 B" in result.output
    assert not old.exists() and fresh.exists()
    assert set(_ls()) == {"cachetest.a", "cachetest.b"}  # complete files untouched


def test_verify_rehashes_against_the_card(cached, monkeypatch):
    import dataclasses
    import hashlib

    from zoo.cards import FileInfo

    runner = CliRunner()
    out = runner.invoke(cli, ["cache", "verify", "cachetest.a"]).output
    assert "unpinned" in out and hashlib.sha256(FILES["a.bin"]).hexdigest() in out  # nothing to compare with
    card = zoo.get_card("cachetest.a")
    rev = _ls()["cachetest.a"]["revisions"][0]
    pinned = dataclasses.replace(card, revision=rev, file_info={
        "a.bin": FileInfo(size=3000, sha256=hashlib.sha256(FILES["a.bin"]).hexdigest()), "shared.json": FileInfo(size=8)})
    from zoo.registry import get_registry

    monkeypatch.setitem(get_registry().cards, "cachetest.a", pinned)
    ok = runner.invoke(cli, ["cache", "verify", "cachetest.a"])
    assert ok.exit_code == 0 and ok.output.count("\nok ") + ok.output.startswith("ok ") == 2, ok.output
    blob = next(p for p in cached.cache_dir.rglob("blobs/*") if p.read_bytes() == FILES["a.bin"])
    blob.write_bytes(b"Z" * 3000)  # same size, different bytes
    bad = runner.invoke(cli, ["cache", "verify", "cachetest.a"])
    assert bad.exit_code == 1 and "mismatch" in bad.output and "a.bin" in bad.output


def test_doctor_reports_the_cache(cached):
    report = json.loads(CliRunner().invoke(cli, ["doctor", "--json"]).output)
    cache = report["cache"]
    assert cache["cache_dir"] == str(cached.cache_dir) and cache["exists"]
    assert cache["size_on_disk"] == sum(len(v) for v in FILES.values()) and cache["free_disk"] > 0
    text = CliRunner().invoke(cli, ["doctor"]).output
    assert f"cache: {cached.cache_dir}" in text and "free disk" in text


def test_doctor_counts_metric_weights(cached):
    _metric_files(cached.cache_dir)
    cache = json.loads(CliRunner().invoke(cli, ["doctor", "--json"]).output)["cache"]
    assert (cache["metric_files"], cache["metric_bytes"]) == (2, 700 + 900)
    assert cache["size_on_disk"] == sum(len(v) for v in FILES.values()) + 700 + 900
    assert (cache["partial_files"], cache["partial_bytes"]) == (1, 50)  # the lpips-vgg download in progress
    text = CliRunner().invoke(cli, ["doctor"]).output
    assert "2 metric weight file(s)" in text and "1 partial download(s)" in text


def _metric_files(cache_dir):
    """lpips-alex and the inception weights cached as `zoo eval` leaves them, plus an unfinished download."""
    from zoo.evaluation.metric_weights import METRIC_WEIGHTS, metric_cache_dir

    folder = metric_cache_dir(cache_dir)
    folder.mkdir(parents=True)
    alex, inception = METRIC_WEIGHTS["lpips-alex"], METRIC_WEIGHTS["inception"]
    (folder / alex.filename).write_bytes(b"a" * 700)
    (folder / inception.filename).write_bytes(b"i" * 900)
    (folder / (METRIC_WEIGHTS["lpips-vgg"].filename + ".0123abcd.partial")).write_bytes(b"v" * 50)
    return folder, alex, inception


def test_ls_lists_metric_weights(cached):
    folder, alex, inception = _metric_files(cached.cache_dir)
    models = _ls()
    assert set(models) == {"cachetest.a", "cachetest.b", "metric:inception", "metric:lpips-alex", "metric:lpips-vgg"}
    a = models["metric:lpips-alex"]
    assert (a["repo"], a["size_on_disk"], a["status"]) == (alex.url, 700, "complete")
    assert [(f["name"], f["path"], f["size"]) for f in a["files"]] == [(alex.filename, str(folder / alex.filename), 700)]
    assert models["metric:inception"]["size_on_disk"] == 900
    vgg = models["metric:lpips-vgg"]  # only an unfinished download
    assert (vgg["status"], vgg["partial_bytes"], vgg["files"]) == ("partial", 50, [])
    assert set(_ls("metric:*")) == {"metric:inception", "metric:lpips-alex", "metric:lpips-vgg"}
    table = CliRunner().invoke(cli, ["cache", "ls"]).output
    assert "metric:lpips-alex" in table and "700 B" in table


def test_rm_and_verify_take_metric_weights(cached, monkeypatch):
    import dataclasses
    import hashlib

    from zoo.evaluation import metric_weights

    folder, alex, inception = _metric_files(cached.cache_dir)
    runner = CliRunner()
    out = runner.invoke(cli, ["cache", "verify", "metric:inception"]).output
    assert "unpinned" in out and hashlib.sha256(b"i" * 900).hexdigest() in out  # its publisher names no hash
    bad = runner.invoke(cli, ["cache", "verify", "metric:lpips-alex"])
    assert bad.exit_code == 1 and "mismatch" in bad.output and "the file name says 7be5be79" in bad.output
    prefix = hashlib.sha256(b"a" * 700).hexdigest()[:8]
    monkeypatch.setitem(metric_weights.METRIC_WEIGHTS, "lpips-alex", dataclasses.replace(alex, hash_prefix=prefix))
    assert runner.invoke(cli, ["cache", "verify", "metric:lpips-alex"]).output.startswith("ok ")

    result = runner.invoke(cli, ["cache", "rm", "metric:lpips-alex", "--yes"])
    assert result.exit_code == 0 and "freed 700 B" in result.output, result.output
    assert not (folder / alex.filename).exists() and (folder / inception.filename).exists()
    assert set(_ls()) == {"cachetest.a", "cachetest.b", "metric:inception", "metric:lpips-vgg"}
    partial = next(folder.glob("*.partial"))
    two_days_ago = time.time() - 2 * 24 * 3600
    os.utime(partial, (two_days_ago, two_days_ago))
    result = runner.invoke(cli, ["cache", "rm", "--partial", "--yes"])
    assert "removed 1 partial download(s), 50 B" in result.output and not partial.exists()
    assert set(_ls()) == {"cachetest.a", "cachetest.b", "metric:inception"}
