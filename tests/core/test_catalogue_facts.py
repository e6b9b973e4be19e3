"""The catalogue answers questions: parameters (from the architectures), download size,
research-only licence, headline metric, parity status and pinning, in `zoo list` and its JSON."""

from __future__ import annotations

import dataclasses
import json

import pytest
from click.testing import CliRunner

import zoo
from zoo.card_facts import (
    card_facts,
    download_bytes,
    format_bytes,
    headline_metric,
    licence_label,
    parity_status,
)
from zoo.cards import FileInfo, card_from_dict
from zoo.cli import cli
from zoo.param_counts import DATA_FILE, cached_counts, compute_counts

SHA = "0123456789abcdef0123456789abcdef01234567"
BASE = {"name": "demo.tiny", "kind": "tokenizer", "plugin": "demo", "modality": "image", "license": {"code": "MIT"}}


def test_committed_param_counts_equal_the_architectures():
    """Recomputed on the meta device for every built-in card: the data file cannot go stale.
    (Regenerate with `python -m zoo.param_counts`.)"""
    fresh = compute_counts()
    assert fresh == cached_counts(), f"{DATA_FILE} is stale: run `python -m zoo.param_counts`"
    assert set(fresh) == {n for n in zoo.list_models() if zoo.get_card(n).source == "registry.yaml"}


@pytest.mark.parametrize(
    "name, low, high",
    [  # sizes the papers state, as sanity bounds on the computed counts
        ("rar.b", 255e6, 265e6),            # RAR-B "261M"
        ("rar.xxl", 1.45e9, 1.55e9),        # RAR-XXL "1.5B"
        ("outetts.v0_1_350m", 340e6, 370e6),  # "350M"
        ("flextok.demo_128", 6e6, 9e6),    # the embedded demo's own architecture (7.3 M with its VAE), not the d18-d28 default
        ("tome.default", 0, 0),
    ],
)
def test_param_counts_are_plausible(name, low, high):
    assert low <= cached_counts()[name] <= high


def test_flextok_cards_build_their_own_published_size():
    counts = cached_counts()
    assert counts["flextok.d12_d12_in1k"] < counts["flextok.d18_d18_in1k"] < counts["flextok.d18_d28_dfn"]
    assert counts["flextok_vae.c4"] < counts["flextok_vae.c8"] < counts["flextok_vae.c16"]


@pytest.mark.parametrize(
    "fields, expected",
    [
        ({}, None),  # hub files without sizes: unknown
        ({"revision": SHA, "file_info": {"w.bin": {"size": 1000}, "config.json": {"size": 24}}}, 1024),
        ({"revision": SHA, "file_info": {"w.bin": {"size": 1000}}}, None),  # one size missing
    ],
)
def test_download_bytes_from_file_info(fields, expected):
    card = card_from_dict({**BASE, "hub_repo": "o/r", "files": ["w.bin", "config.json"], **fields})
    assert download_bytes(card) == expected


def test_download_bytes_nothing_to_download():
    assert download_bytes(zoo.get_card("tome")) == 0
    assert download_bytes(zoo.get_card("flextok.demo_128")) == 0  # inside the package
    card = dataclasses.replace(zoo.get_card("titok.l_32"), revision=SHA,
                               file_info={"model.safetensors": FileInfo(size=2_300_000_000), "config.json": FileInfo(size=900)})
    assert format_bytes(download_bytes(card)) == "2.3 GB"


@pytest.mark.parametrize("n, text", [(None, "?"), (0, "—"), (512, "512 B"), (12_000, "12 KB"), (815_000_000, "815 MB"),
                                     (2_300_000_000, "2.3 GB")])
def test_format_bytes(n, text):
    assert format_bytes(n) == text


@pytest.mark.parametrize(
    "name, label",
    [
        ("titok.l_32", "Apache-2.0, research only"),     # was printed as plain "Apache-2.0"
        ("flextok.d18_d28_dfn", "Apple-ML-Research-Model, research only"),
        ("wavtokenizer.small_75", "MIT"),
        ("outetts.v0_1_350m", "CC-BY-4.0"),
    ],
)
def test_licence_label_says_research_only(name, label):
    assert licence_label(zoo.get_card(name)) == label


def test_every_research_only_card_says_so_in_the_table():
    out = CliRunner().invoke(cli, ["list"]).output
    for name in zoo.list_models():
        row = next(line for line in out.splitlines() if line.split()[0] == name)
        assert ("research only" in row) == zoo.get_card(name).license.research_only, row


@pytest.mark.parametrize(
    "metrics, text",
    [
        ({}, ""),
        ({"imagenet_256_rfid": 2.21, "other": 1}, "imagenet_256_rfid=2.21"),
        ({"heldout_psnr_db": {"1": 15.58, "32": 16.3}}, "heldout_psnr_db[32]=16.3"),
        ({"gfid": "< 2 for 8-128 tokens (paper abstract)"}, "gfid=< 2 for 8-128 tokens"),
    ],
)
def test_headline_metric(metrics, text):
    assert headline_metric(card_from_dict({**BASE, "metrics": metrics})) == text


@pytest.mark.parametrize(
    "parity, status",
    [
        ("no reference implementation or weights published; tested on tiny configs", "no reference"),
        ("n/a: zoo-trained demo weights", "n/a"),
        ("random-weight parity with jishengpeng/WavTokenizer@5cf440d (frame40 config)", "✓ vs jishengpeng/WavTokenizer"),
    ],
)
def test_parity_status(parity, status):
    assert parity_status(parity) == status


def test_list_table_has_the_columns_and_a_bare_family():
    out = CliRunner().invoke(cli, ["list", "titok"])
    assert out.exit_code == 0, out.output
    header, *rows = out.output.splitlines()
    assert header.split() == ["NAME", "KIND", "MODALITY", "PARAMS", "DOWNLOAD", "LICENCE", "METRIC", "PARITY", "WEIGHTS"]
    l32 = next(r for r in rows if r.startswith("titok.l_32 *"))
    for cell in ("641M", "Apache-2.0, research only", "imagenet_256_rfid=2.21", "✓ vs bytedance/1d-tokenizer", "hub, main branch"):
        assert cell in l32, (cell, l32)
    assert len([r for r in rows if r.startswith("titok.")]) == len(zoo.list_models("titok.*"))


def test_list_json_carries_the_facts():
    records = json.loads(CliRunner().invoke(cli, ["list", "rar", "--json"]).output)
    assert [r["name"] for r in records] == zoo.list_models("rar.*")
    b = records[0]
    assert b["parameters"] == cached_counts()["rar.b"] and b["research_only"] is True
    assert b["licence_label"] == "Apache-2.0, research only" and b["headline_metric"] == "imagenet_256_gfid=1.95"
    assert b["parity_status"] == "✓ vs bytedance/1d-tokenizer" and b["pinned"] is False and b["weights"] == "hub, main branch"
    assert b["download_bytes"] is None
    assert card_facts(zoo.get_card("rar.b")).items() <= b.items()


def test_list_and_info_do_not_import_torch():
    import subprocess
    import sys

    code = ("import sys, zoo, json; from click.testing import CliRunner; from zoo.cli import cli; "
            "CliRunner().invoke(cli, ['list']); CliRunner().invoke(cli, ['list', '--json']); print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "False"


def test_registry_params_command_writes_and_checks(tmp_path, monkeypatch):
    import zoo.param_counts as pc

    target = tmp_path / "param_counts.json"
    monkeypatch.setattr(pc, "DATA_FILE", target)
    monkeypatch.setattr(pc, "compute_counts", lambda names=None: {"rar.b": 260923648, "tome.default": 0})
    pc.cached_counts.cache_clear()
    try:
        stale = CliRunner().invoke(cli, ["registry", "params", "--check"])
        assert stale.exit_code == 1 and "rar.b: committed None, architecture 260923648" in stale.output
        wrote = CliRunner().invoke(cli, ["registry", "params"])
        assert wrote.exit_code == 0 and json.loads(target.read_text()) == {"rar.b": 260923648, "tome.default": 0}
        fresh = CliRunner().invoke(cli, ["registry", "params", "--check"])
        assert fresh.exit_code == 0 and "up to date" in fresh.output
    finally:
        pc.cached_counts.cache_clear()
