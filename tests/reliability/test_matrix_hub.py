"""Matrix group: hub faults against the stand-in (missing repo/revision/file, 5xx, a stopped
server, dropped connections, a slow server past the client timeout, offline, pins that disagree,
an unwritable cache, concurrent downloaders, a download killed with SIGKILL)."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import threading
import time
import types

import pytest

from zoo.errors import HubError
from zoo.hub import download_file
from zoo.testing.hub import hub_env

from .hubfaults import FaultyHub
from .matrix import Row, check_row, params

REPO = "org/repo"
SMALL = b"weights" * 100
BIG = bytes(range(256)) * 4096  # 1 MiB


@pytest.fixture
def hub(tmp_path, monkeypatch):
    root = tmp_path / "hub"
    (root / REPO).mkdir(parents=True)
    (root / REPO / "w.bin").write_bytes(SMALL)
    (root / REPO / "big.safetensors").write_bytes(BIG)
    server = FaultyHub(root).start()
    server.cache_dir = tmp_path / "cache"
    monkeypatch.setattr(time, "sleep", lambda s: None)  # skip the client's retry back-off
    with hub_env(server.url, server.cache_dir):
        yield server
    server.stop()


def dl(filename="w.bin", repo=REPO, setup=None, **kwargs):
    def call(env):
        if setup is not None:
            setup(env)
        return download_file(repo, filename, **kwargs)
    return call


def fault(**what):
    def setup(env):
        for key, value in what.items():
            getattr(env.hub, key).update(value) if isinstance(value, dict) else getattr(env.hub, key).add(value)
    return setup


def cached_then(change):
    """Download once, then ``change(env, path)`` and return the second download's path."""
    def call(env):
        path = download_file(REPO, "w.bin")
        return change(env, path)
    return call


def snapshots(env):
    return sorted(p.name for p in env.hub.cache_dir.rglob("snapshots/*/*"))


def timeouts(env):
    from huggingface_hub import constants

    env.monkeypatch.setattr(constants, "HF_HUB_ETAG_TIMEOUT", 0.2)
    env.monkeypatch.setattr(constants, "HF_HUB_DOWNLOAD_TIMEOUT", 0.2)
    env.hub.stall["w.bin"] = 3.0


def concurrent(env):
    env.hub.throttle["big.safetensors"] = 0.01
    env.hub.throttle_chunk = 1 << 16
    results, errors = [], []

    def worker():
        try:
            results.append(download_file(REPO, "big.safetensors").read_bytes())
        except Exception as exc:  # noqa: BLE001 -- any error fails the row, reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return types.SimpleNamespace(results=results, errors=errors, blobs=list(env.hub.cache_dir.rglob("blobs/*")))


def sigkill_then_resume(env):
    """A download killed with SIGKILL half-way; the next call completes it byte-identically."""
    from huggingface_hub import constants

    data = bytes(range(256)) * (constants.DOWNLOAD_CHUNK_SIZE // 256) * 2 + b"tail"
    (env.hub.root / REPO / "huge.safetensors").write_bytes(data)
    env.hub.throttle["huge.safetensors"] = 0.05
    env.hub.throttle_chunk = 1 << 20
    proc = subprocess.Popen([sys.executable, "-c", f"import zoo.hub; zoo.hub.download_file({REPO!r}, 'huge.safetensors')"],
                            env=dict(os.environ))
    partial = lambda: [p for p in env.hub.cache_dir.rglob("blobs/*.incomplete") if p.stat().st_size >= constants.DOWNLOAD_CHUNK_SIZE]
    deadline = time.monotonic() + 120
    try:
        while not partial() and time.monotonic() < deadline and proc.poll() is None:
            threading.Event().wait(0.02)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    env.hub.throttle.clear()
    path = download_file(REPO, "huge.safetensors")
    return types.SimpleNamespace(ok=path.read_bytes() == data, killed=proc.returncode == -signal.SIGKILL,
                                 leftovers=list(env.hub.cache_dir.rglob("*.incomplete")))


def truncated_download(env):
    env.hub.truncate.add("big.safetensors")
    try:
        download_file(REPO, "big.safetensors")
    finally:
        assert "big.safetensors" not in snapshots(env)  # nothing half-written where loaders read


ROWS = [
    Row("repo-not-found", dl(repo="org/absent"), HubError, ("org/absent", "not found")),
    Row("revision-not-found", dl(revision="v9"), HubError, ("revision 'v9' does not exist",)),
    Row("file-not-found", dl("absent.bin"), HubError, ("'absent.bin' does not exist", "files")),
    Row("server-500", dl(setup=fault(status={"w.bin": 500})), HubError, ("w.bin", "500")),
    Row("server-503", dl(setup=fault(status={"w.bin": 503})), HubError, ("w.bin", "503")),
    Row("server-502-on-big-file", dl("big.safetensors", setup=fault(status={"big.safetensors": 502})), HubError, ("502",)),
    Row("server-stopped", dl(setup=lambda env: env.hub.stop()), HubError, ("could not reach the hub", "not cached")),
    Row("dropped-connection", truncated_download, HubError, ("interrupted", "big.safetensors")),
    Row("slow-server-timeout", dl(setup=timeouts), HubError, ("w.bin", "timed out")),
    Row("offline-nothing-cached", dl(setup=lambda env: env.monkeypatch.setenv("HF_HUB_OFFLINE", "1")), HubError,
        ("not in the local cache", "offline", "hf_hub_offline=1")),
    Row("offline-cached-ok", cached_then(lambda env, p: (env.monkeypatch.setenv("HF_HUB_OFFLINE", "1"), download_file(REPO, "w.bin"))[1]),
        check=lambda p: p.read_bytes() == SMALL),
    Row("server-stopped-cached-ok", cached_then(lambda env, p: (env.hub.stop(), download_file(REPO, "w.bin"))[1]),
        check=lambda p: p.read_bytes() == SMALL),
    Row("pin-sha256-mismatch", dl("big.safetensors", sha256="0" * 64), HubError, ("does not match", "re-pin the card")),
    Row("pin-sha256-malformed", dl(sha256="xyz"), HubError, ("64 lowercase hex",)),
    Row("pin-size-mismatch-cached", cached_then(lambda env, p: download_file(REPO, "w.bin", size=len(SMALL) + 1)), HubError,
        ("the card says", "removed from the cache")),
    Row("cache-is-a-file", lambda env: download_file(REPO, "w.bin", cache_dir=env.hub.cache_dir.parent / "hub" / REPO / "w.bin"),
        HubError, ("not a writable directory",)),
    Row("concurrent-downloaders", concurrent,
        check=lambda r: not r.errors and len(r.results) == 3 and all(x == BIG for x in r.results)
        and [b.name for b in r.blobs] == [hashlib.sha256(BIG).hexdigest()]),
    Row("sigkill-mid-download-resumes", sigkill_then_resume, check=lambda r: r.killed and r.ok and not r.leftovers),
]


@params(ROWS)
def test_hub(row, env, hub):
    env.hub = hub
    check_row(row, env)
