"""`zoo registry pin` against the hub stand-in, the YAML rewrite, checksums on download, honest wording."""

from __future__ import annotations

import difflib
import hashlib
import json
import shutil
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

import zoo
from zoo.catalogue import REGISTRY_FILE, load_catalogue
from zoo.cli import cli
from zoo.errors import CardError, HubError
from zoo.pin import set_card_fields
from zoo.testing.hub import commit_for, is_lfs

SHA_A = "a" * 64


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (  # both fields new: revision after hub_repo, file_info after files
            "models:\n  - name: a.b\n    hub_repo: o/r\n    files: [w.bin, c.json]\n    notes: x\n",
            ("models:\n  - name: a.b\n    hub_repo: o/r\n    revision: {rev}\n    files: [w.bin, c.json]\n"
            "    file_info:\n      w.bin: {{size: 3, sha256: \"{sha}\"}}\n      c.json: {{size: 2}}\n    notes: x\n"),
        ),
        (  # both fields replaced; the comment on the revision line and the card after stay
            ("models:\n  - name: a.b\n    hub_repo: o/r\n    revision: main  # keep me\n    files: [w.bin, c.json]\n"
            "    file_info:\n      w.bin: {size: 1}\n    notes: x\n  # between cards\n  - name: a.c\n    hub_repo: o/r\n"),
            ("models:\n  - name: a.b\n    hub_repo: o/r\n    revision: {rev}  # keep me\n    files: [w.bin, c.json]\n"
            "    file_info:\n      w.bin: {{size: 3, sha256: \"{sha}\"}}\n      c.json: {{size: 2}}\n    notes: x\n"
            "  # between cards\n  - name: a.c\n    hub_repo: o/r\n"),
        ),
        (  # last card of the file, block-style files list, blank line after
            "models:\n  - name: z.y\n  - name: a.b\n    hub_repo: o/r\n    files:\n      - w.bin\n      - c.json\n\n",
            ("models:\n  - name: z.y\n  - name: a.b\n    hub_repo: o/r\n    revision: {rev}\n    files:\n      - w.bin\n      - c.json\n"
            "    file_info:\n      w.bin: {{size: 3, sha256: \"{sha}\"}}\n      c.json: {{size: 2}}\n\n"),
        ),
    ],
)
def test_set_card_fields_rewrites_only_those_fields(before, after):
    rev = "1" * 40
    got = set_card_fields(before, "a.b", rev, {"w.bin": {"size": 3, "sha256": SHA_A}, "c.json": {"size": 2}})
    assert got == after.format(rev=rev, sha=SHA_A)
    card = next(c for c in yaml.safe_load(got)["models"] if c["name"] == "a.b")
    assert card["file_info"] == {"w.bin": {"size": 3, "sha256": SHA_A}, "c.json": {"size": 2}}


def test_set_card_fields_refuses_a_flow_style_card():
    with pytest.raises(CardError, match="block style"):
        set_card_fields("models:\n  - {name: a.b, hub_repo: o/r, files: [w]}\n", "a.b", "1" * 40, {})


def _serve_catalogue(root: Path, cards) -> dict[tuple[str, str], bytes]:
    """Write a tiny file for every file of every hub card (repos shared by several cards too)."""
    served = {}
    for card in cards:
        for name in card.files if card.hub_repo else ():
            data = hashlib.sha256(f"{card.hub_repo}/{name}".encode()).digest() * 3
            path = root / card.hub_repo / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            served[(card.hub_repo, name)] = data
    return served


PINNED_KEYS = {"revision", "file_info"}


def _is_pin_line(line: str) -> bool:
    s = line.strip()
    return s.startswith(("revision:", "file_info:")) or (line.startswith("      ") and ": {size:" in line)


def test_pin_a_copy_of_the_catalogue_against_the_stand_in(hub_stand_in, tmp_path):
    cards = load_catalogue()
    served = _serve_catalogue(hub_stand_in.root, cards)
    copy = tmp_path / "registry.yaml"
    shutil.copyfile(REGISTRY_FILE, copy)
    original = copy.read_text()
    runner = CliRunner()

    dry = runner.invoke(cli, ["registry", "pin", "--file", str(copy), "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert copy.read_text() == original  # a dry run writes nothing
    assert dry.stdout.startswith("--- a/registry.yaml\n+++ b/registry.yaml\n")
    changed = [line[1:] for line in dry.stdout.splitlines(True)[2:] if line[:1] in "+-"]
    assert changed and all(_is_pin_line(line) for line in changed)  # the diff shows only pin lines
    (tmp_path / "pin.diff").write_text(dry.stdout)  # kept for the report

    result = runner.invoke(cli, ["registry", "pin", "--file", str(copy)])
    assert result.exit_code == 0, result.output
    new = copy.read_text()

    # only revision / file_info lines differ: every other byte of the file is the original's
    ops = difflib.SequenceMatcher(None, original.splitlines(True), new.splitlines(True), autojunk=False).get_opcodes()
    old_lines, new_lines = original.splitlines(True), new.splitlines(True)
    for tag, i1, i2, j1, j2 in ops:
        if tag == "equal":
            continue
        assert all(_is_pin_line(x) for x in old_lines[i1:i2]), old_lines[i1:i2]
        assert all(_is_pin_line(x) for x in new_lines[j1:j2]), new_lines[j1:j2]

    # semantically: the same cards, plus the pins, which say what the stand-in serves
    before = {c["name"]: c for c in yaml.safe_load(original)["models"]}
    after = {c["name"]: c for c in yaml.safe_load(new)["models"]}
    assert list(before) == list(after)
    pinned = 0
    for name, card in after.items():
        rest = {k: v for k, v in card.items() if k not in PINNED_KEYS}
        assert rest == {k: v for k, v in before[name].items() if k not in PINNED_KEYS}, name
        if not card.get("hub_repo"):
            assert PINNED_KEYS.isdisjoint(card), name
            continue
        pinned += 1
        assert card["revision"] == commit_for(card["hub_repo"]), name
        for fname in card["files"]:
            data = served[(card["hub_repo"], fname)]
            want = {"size": len(data)} | ({"sha256": hashlib.sha256(data).hexdigest()} if is_lfs(fname) else {})
            assert card["file_info"][fname] == want, (name, fname)
    assert pinned == sum(1 for c in cards if c.hub_repo)
    assert all(c.pinned for c in load_catalogue(copy) if c.hub_repo)  # the result validates

    # one model_info call per repo (with blobs=true) and run, not per card
    api_calls = [p for m, p in hub_stand_in.requests if p.startswith("/api/models/")]
    assert all("blobs=true" in p for p in api_calls)
    assert len(api_calls) == 2 * len({c.hub_repo for c in cards if c.hub_repo})
    again = runner.invoke(cli, ["registry", "pin", "--file", str(copy)])
    assert again.exit_code == 0 and copy.read_text() == new  # idempotent


def test_pin_pattern_includes_dependencies_and_only_those(hub_stand_in, tmp_path):
    cards = load_catalogue()
    _serve_catalogue(hub_stand_in.root, cards)
    copy = tmp_path / "registry.yaml"
    shutil.copyfile(REGISTRY_FILE, copy)
    result = CliRunner().invoke(cli, ["registry", "pin", "flextok.d12*", "--file", str(copy)])
    assert result.exit_code == 0, result.output
    changed = {c.name for c in load_catalogue(copy) if c.file_info}
    assert changed == {"flextok.d12_d12_in1k", "flextok_vae.c16"}


def test_pin_refuses_a_card_whose_file_is_not_in_the_repo(hub_stand_in, tmp_path):
    cards = load_catalogue()
    _serve_catalogue(hub_stand_in.root, cards)
    (hub_stand_in.root / "yucornetto/RAR/rar_xl.bin").unlink()
    copy = tmp_path / "registry.yaml"
    shutil.copyfile(REGISTRY_FILE, copy)
    result = CliRunner().invoke(cli, ["registry", "pin", "rar.*", "--file", str(copy)])
    assert result.exit_code == 1
    assert "rar.xl" in result.output and "rar_xl.bin" in result.output and "yucornetto/RAR" in result.output
    assert copy.read_text() == REGISTRY_FILE.read_text()  # nothing written


def test_pin_revision_that_does_not_exist(hub_stand_in, tmp_path):
    _serve_catalogue(hub_stand_in.root, load_catalogue())
    copy = tmp_path / "registry.yaml"
    shutil.copyfile(REGISTRY_FILE, copy)
    result = CliRunner().invoke(cli, ["registry", "pin", "rar.b", "--file", str(copy), "--revision", "v9"])
    assert result.exit_code == 1 and "revision 'v9' does not exist in yucornetto/RAR" in result.output


# ------------------------------------------------------------------ checksums on download


def _pinned_card(name: str, repo: str, files: dict[str, dict]) -> dict:
    return {"name": name, "kind": "tokenizer", "plugin": "x", "modality": "image", "license": {"code": "MIT"},
            "hub_repo": repo, "revision": commit_for(repo), "files": list(files), "file_info": files}


@pytest.mark.parametrize(
    ("fname", "good"),
    [("w.bin", True), ("w.bin", False), ("w.json", True), ("w.json", False)],
)
def test_download_checks_the_cards_sha256(hub_stand_in, fname, good):
    """An LFS file whose hub sha256 (its ETag) differs is refused before any byte; any other file is
    hashed after the download and kept only if it matches."""
    from zoo.cards import card_from_dict
    from zoo.hub import resolve_files

    repo = "org/pinned"
    (hub_stand_in.root / repo).mkdir(parents=True)
    data = b"weights" * 100
    (hub_stand_in.root / repo / fname).write_bytes(data)
    sha = hashlib.sha256(data).hexdigest() if good else SHA_A
    card = card_from_dict(_pinned_card("x.pinned", repo, {fname: {"size": len(data), "sha256": sha}}))
    if good:
        files = resolve_files(card)
        assert files[fname].read_bytes() == data
        return
    with pytest.raises(HubError, match=rf"org/pinned/{fname} .*sha256 [0-9a-f]{{64}}.* does not match the card's a{{64}}"):
        resolve_files(card)
    gets = [p for m, p in hub_stand_in.requests if m == "GET"]
    assert gets == ([] if is_lfs(fname) else [f"/{repo}/resolve/{commit_for(repo)}/{fname}"])
    cached = [p for p in hub_stand_in.cache_dir.rglob("*") if p.is_file() and not p.name.endswith(".lock")]
    assert not any(p.read_bytes() == data for p in cached)  # the bad file is not where a loader reads
    assert not list(hub_stand_in.cache_dir.rglob(f"snapshots/*/{fname}"))


def test_a_cached_file_that_differs_from_the_pin_is_refused_and_removed(hub_stand_in):
    from zoo.cards import card_from_dict
    from zoo.hub import resolve_files

    repo = "org/pinned"
    (hub_stand_in.root / repo).mkdir(parents=True)
    (hub_stand_in.root / repo / "c.json").write_bytes(b"{}")
    card = card_from_dict(_pinned_card("x.pinned", repo, {"c.json": {"size": 2}}))
    path = resolve_files(card)["c.json"]
    path.resolve().write_bytes(b"{ }")  # the cache's copy changes on disk
    with pytest.raises(HubError, match="c.json .* has 3 bytes, the card says 2; the file was removed"):
        resolve_files(card)
    assert resolve_files(card)["c.json"].read_bytes() == b"{}"  # downloaded again


@pytest.mark.parametrize(
    ("field", "message"),
    [
        ({"file_info": {"w.bin": {"sha256": "abc"}}}, "64 lowercase hex"),
        ({"file_info": {"other.bin": {"size": 1}}}, r"not in 'files'"),
        ({"file_info": {"w.bin": {"size": -1}}}, ">= 0"),
        ({"file_info": {"w.bin": {"size": 1}}, "revision": "main"}, "40-hex 'revision'"),
        ({"file_info": {"w.bin": {"sise": 1}}}, "unknown key"),
    ],
)
def test_file_info_schema(field, message):
    from zoo.cards import card_from_dict

    raw = {**_pinned_card("x.y", "o/r", {"w.bin": {"size": 1}}), **field}
    with pytest.raises(CardError, match=message):
        card_from_dict(raw)


# ------------------------------------------------------------------ honest wording


def test_info_and_list_say_whether_a_card_is_pinned():
    unpinned = zoo.info("titok.l_32")
    assert unpinned["pinned"] is False
    assert unpinned["revision_note"] == "follows the repository's main branch (not pinned)"
    assert "pinned" not in unpinned["revision_note"].replace("(not pinned)", "")
    pinned = [c for c in zoo.list_models() if zoo.get_card(c).pinned]
    assert pinned, "the catalogue has cards with a commit revision"
    assert zoo.info(pinned[0])["revision_note"].startswith("pinned to commit ")

    runner = CliRunner()
    listed = json.loads(runner.invoke(cli, ["list", "--pinned", "--json"]).output)
    assert {r["name"] for r in listed} == set(pinned) and all(r["pinned"] for r in listed)
    not_pinned = json.loads(runner.invoke(cli, ["list", "--not-pinned", "--json"]).output)
    assert not_pinned and all(r["revision_note"].endswith("(not pinned)") for r in not_pinned)
    hub_cards = {n for n in zoo.list_models() if zoo.get_card(n).hub_repo}
    assert {r["name"] for r in not_pinned} == hub_cards - set(pinned)


def test_pin_with_the_hub_unreachable(hub_stand_in, tmp_path, monkeypatch):
    import time

    monkeypatch.setattr(time, "sleep", lambda seconds: None)  # no retry back-off
    copy = tmp_path / "registry.yaml"
    shutil.copyfile(REGISTRY_FILE, copy)
    url = hub_stand_in.url
    hub_stand_in.stop()
    result = CliRunner().invoke(cli, ["registry", "pin", "rar.b", "--file", str(copy)])
    assert result.exit_code == 1 and f"could not reach the hub at {url}" in result.output
    assert copy.read_text() == REGISTRY_FILE.read_text()
