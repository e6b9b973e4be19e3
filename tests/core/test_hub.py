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
