"""The real huggingface_hub client against the local stand-in: download, cache, offline, faults."""

from __future__ import annotations

import hashlib

import pytest
import torch

import zoo
from zoo.errors import HubError
from zoo.hub import download_file
from zoo.testing.hub import commit_for

REPO = "zoo-examples/patchvq-tiny"


def _snapshot_files(cache_dir):
    return sorted(p.name for p in cache_dir.rglob("snapshots/*/*"))


def test_first_download_then_cached_reload_with_server_stopped(patchvq_hub):
    model = zoo.load("patchvq.tiny")
    assert ("GET", f"/{REPO}/resolve/main/model.safetensors") in patchvq_hub.requests
    served = (patchvq_hub.root / REPO / "model.safetensors").read_bytes()
    cached = next(patchvq_hub.cache_dir.rglob("snapshots/*/model.safetensors")).read_bytes()
    assert hashlib.sha256(served).digest() == hashlib.sha256(cached).digest()

    patchvq_hub.stop()  # the network is gone: the cache must do
    again = zoo.load("patchvq.tiny", local_files_only=True)
    for (k, a), (_, b) in zip(model.state_dict().items(), again.state_dict().items()):
        assert torch.equal(a, b), k


def test_hf_hub_offline_env_uses_cache(patchvq_hub, monkeypatch):
    zoo.load("patchvq.tiny")
    n = len(patchvq_hub.requests)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    zoo.load("patchvq.tiny")
    assert len(patchvq_hub.requests) == n  # offline: not a single request


def test_offline_with_nothing_cached_is_a_clear_error(patchvq_hub, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(HubError, match="not in the local cache .* zoo is offline .*HF_HUB_OFFLINE=1 is set.*zoo download"):
        zoo.load("patchvq.tiny")
    assert patchvq_hub.requests == []


@pytest.fixture
def no_backoff(monkeypatch):
    """Skip the client's retry back-off sleeps (the retries themselves still happen)."""
    import time

    monkeypatch.setattr(time, "sleep", lambda seconds: None)


def test_unreachable_hub_with_nothing_cached(patchvq_hub, no_backoff):
    patchvq_hub.stop()
    with pytest.raises(HubError, match="could not reach the hub .* not cached"):
        zoo.load("patchvq.tiny")


def test_missing_file(patchvq_hub):
    with pytest.raises(HubError, match="file 'nope.bin' does not exist in zoo-examples/patchvq-tiny"):
        download_file(REPO, "nope.bin")


def test_missing_repo(patchvq_hub):
    with pytest.raises(HubError, match="hub repository 'zoo-examples/absent' not found"):
        download_file("zoo-examples/absent", "model.safetensors")


def test_wrong_revision(patchvq_hub):
    with pytest.raises(HubError, match="revision 'v9.9' does not exist"):
        zoo.load("patchvq.tiny", revision="v9.9")
    with pytest.raises(HubError, match="revision 'v9.9' does not exist"):
        zoo.load("patchvq.tiny@v9.9")


def test_pinned_commit_revision_is_sent(patchvq_hub):
    commit = commit_for(REPO)
    zoo.load(f"patchvq.tiny@{commit}")
    assert ("HEAD", f"/{REPO}/resolve/{commit}/model.safetensors") in patchvq_hub.requests


def test_truncated_download_leaves_nothing_corrupt(patchvq_hub, no_backoff):
    patchvq_hub.truncate.add("model.safetensors")
    with pytest.raises(HubError, match="interrupted|could not reach"):
        zoo.load("patchvq.tiny")
    assert _snapshot_files(patchvq_hub.cache_dir) == []  # no half file where a loader would look
    patchvq_hub.truncate.clear()
    model = zoo.load("patchvq.tiny")  # a retry resumes the partial file and heals
    assert _snapshot_files(patchvq_hub.cache_dir) == ["model.safetensors"]
    served = (patchvq_hub.root / REPO / "model.safetensors").read_bytes()
    assert next(patchvq_hub.cache_dir.rglob("snapshots/*/model.safetensors")).read_bytes() == served
    assert any(r == ("GET", f"/{REPO}/resolve/main/model.safetensors") for r in patchvq_hub.requests)
    assert model.encode(torch.zeros(1, 3, 32, 32)).ids.shape == (1, 64)


def test_cache_dir_argument(patchvq_hub, tmp_path):
    own = tmp_path / "own-cache"
    zoo.load("patchvq.tiny", cache_dir=own)
    assert any(own.rglob("model.safetensors"))


def test_dependencies_resolve_with_the_same_settings(hub_stand_in, monkeypatch):
    """A card's dependency (e.g. a VAE) honours cache_dir/offline like the card's own files."""
    from zoo.cards import card_from_dict
    from zoo.hub import resolve_files

    for repo in ("org/main-model", "org/the-vae"):
        (hub_stand_in.root / repo).mkdir(parents=True)
        (hub_stand_in.root / repo / "w.bin").write_bytes(repo.encode())
    base = {"kind": "tokenizer", "plugin": "x", "modality": "image", "license": {"code": "MIT"}, "files": ["w.bin"]}
    vae = card_from_dict({**base, "name": "x.vae", "hub_repo": "org/the-vae"})
    main = card_from_dict({**base, "name": "x.main", "hub_repo": "org/main-model", "dependencies": {"vae": "x.vae"}})
    cards = {c.name: c for c in (vae, main)}
    files = resolve_files(main, cards, cache_dir=hub_stand_in.cache_dir)
    assert files.deps["vae"]["w.bin"].read_bytes() == b"org/the-vae"
    hub_stand_in.stop()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    again = resolve_files(main, cards, cache_dir=hub_stand_in.cache_dir)
    assert again.deps["vae"]["w.bin"] == files.deps["vae"]["w.bin"]
    (other := hub_stand_in.cache_dir.parent / "empty").mkdir()
    with pytest.raises(HubError, match="org/main-model/w.bin .* offline"):
        resolve_files(main, cards, cache_dir=other)


# ------------------------------------------------------------------ resume after SIGKILL


def _wait_for(predicate, what: str, limit: float = 120.0):
    import time

    deadline = time.monotonic() + limit
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.01)


def test_a_download_killed_with_sigkill_resumes_with_a_range_request(hub_stand_in):
    """The killed process leaves blobs/<etag>.incomplete; the next call asks only for the rest."""
    import os
    import random
    import signal
    import subprocess
    import sys

    repo, name = "org/big", "big.safetensors"
    from huggingface_hub import constants

    chunk = constants.DOWNLOAD_CHUNK_SIZE  # the client writes to disk every `chunk` bytes (10 MB)
    data = random.Random(0).randbytes(2 * chunk + chunk // 2)
    (hub_stand_in.root / repo).mkdir(parents=True)
    (hub_stand_in.root / repo / name).write_bytes(data)
    hub_stand_in.throttle[name] = 0.1  # a slow link: 1 MiB per 100 ms
    hub_stand_in.throttle_chunk = 1 << 20
    script = f"import zoo.hub; zoo.hub.download_file({repo!r}, {name!r})"
    proc = subprocess.Popen([sys.executable, "-c", script], env=dict(os.environ))
    partials = lambda: list(hub_stand_in.cache_dir.rglob("blobs/*.incomplete"))
    try:
        _wait_for(lambda: partials() and partials()[0].stat().st_size >= chunk, "the first chunk on disk")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    (partial,) = partials()
    have = partial.stat().st_size
    assert 0 < have < len(data) and partial.read_bytes() == data[:have]
    assert partial.name == hashlib.sha256(data).hexdigest() + ".incomplete"  # a stable name the retry finds

    hub_stand_in.throttle.clear()
    sent_before = hub_stand_in.bytes_sent[name]
    path = download_file(repo, name)
    assert path.read_bytes() == data  # byte-identical
    assert hub_stand_in.ranges == [(name, f"bytes={have}-")]
    fetched = hub_stand_in.bytes_sent[name] - sent_before
    assert fetched == len(data) - have  # only the missing bytes
    assert partials() == []
    print(f"resume: {have} bytes kept after SIGKILL, {fetched} fetched on retry, {len(data)} total")


# ------------------------------------------------------------------ offline read per call, honest errors


def test_clearing_hf_hub_offline_in_a_running_process_takes_effect(hub_stand_in, tmp_path):
    """huggingface_hub reads HF_HUB_OFFLINE once at import; zoo reads it at every call."""
    import os
    import subprocess
    import sys

    (hub_stand_in.root / "org" / "r").mkdir(parents=True)
    (hub_stand_in.root / "org" / "r" / "w.bin").write_bytes(b"w" * 10)
    script = """
import os, huggingface_hub.constants as c, zoo.hub
from zoo.errors import HubError
assert c.HF_HUB_OFFLINE  # imported while offline
try:
    zoo.hub.download_file("org/r", "w.bin")
except HubError as exc:
    print("offline:", exc)
del os.environ["HF_HUB_OFFLINE"]
print("online:", zoo.hub.download_file("org/r", "w.bin").read_bytes())
os.environ["HF_HUB_OFFLINE"] = "1"
print("cached:", zoo.hub.download_file("org/r", "w.bin").read_bytes())
"""
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    out = subprocess.run([sys.executable, "-c", script], check=False, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith("offline:") and "HF_HUB_OFFLINE=1 is set" in lines[0]
    assert lines[1:] == ["online: b'wwwwwwwwww'", "cached: b'wwwwwwwwww'"]
    gets = [p for m, p in hub_stand_in.requests if m == "GET"]
    assert gets == ["/org/r/resolve/main/w.bin"]  # one download, nothing while offline


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("local_files_only", r"offline \(local_files_only=True was passed\)"),
        ("offline_force", "cannot download .* again: zoo is offline \\(HF_HUB_OFFLINE=1 is set\\)"),
        ("unwritable_cache", "not a writable directory"),
    ],
)
def test_errors_name_the_real_cause_and_do_not_advise_a_useless_retry(hub_stand_in, monkeypatch, tmp_path, case, expected):
    (hub_stand_in.root / "org" / "r").mkdir(parents=True)
    (hub_stand_in.root / "org" / "r" / "w.bin").write_bytes(b"w")
    kwargs = {}
    if case == "local_files_only":
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
        kwargs["local_files_only"] = True
    elif case == "offline_force":
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
        kwargs["force_download"] = True
    else:
        (tmp_path / "a-file").write_text("not a folder")
        kwargs["cache_dir"] = tmp_path / "a-file" / "cache"
    with pytest.raises(HubError, match=expected) as info:
        download_file("org/r", "w.bin", **kwargs)
    message = str(info.value).lower()
    assert "retry" not in message and "run the command again" not in message
    assert "unset" not in message


def test_force_download_fetches_the_file_once(patchvq_hub):
    zoo.download("patchvq.tiny")
    before = len([r for r in patchvq_hub.requests if r[0] == "GET"])
    files = zoo.download("patchvq.tiny", force=True)
    gets = [r for r in patchvq_hub.requests if r[0] == "GET"][before:]
    assert gets == [("GET", f"/{REPO}/resolve/main/model.safetensors")]  # once, not once per layer
    assert files["model.safetensors"].read_bytes() == (patchvq_hub.root / REPO / "model.safetensors").read_bytes()
