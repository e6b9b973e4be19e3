"""CITATION.cff is valid CFF 1.2.0 and CHANGELOG.md follows Keep a Changelog, both in step with
the package version."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import tomllib
import yaml

ROOT = Path(__file__).resolve().parents[2]
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


def test_citation_is_cff_1_2_with_required_keys():
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text(encoding="utf-8"))
    assert cff["cff-version"] == "1.2.0"
    for key in ("message", "title", "authors", "type", "version", "license"):
        assert cff.get(key), f"CITATION.cff lacks {key!r}"
    assert cff["type"] in ("software", "dataset")
    assert all(isinstance(a, dict) and (a.get("name") or a.get("family-names")) for a in cff["authors"])
    assert str(cff["version"]) == VERSION, "CITATION.cff's version differs from pyproject.toml's"
    dt.date.fromisoformat(str(cff["date-released"]))
    license_ = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["license"]
    assert cff["license"] == license_


def test_changelog_follows_keep_a_changelog():
    text = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert text.startswith("# Changelog\n")
    assert "keepachangelog.com" in text
    releases = re.findall(r"^## \[([^\]]+)\](?: - (\d{4}-\d{2}-\d{2}))?$", text, re.MULTILINE)
    names = [r[0] for r in releases]
    assert names[0] == "Unreleased"
    assert names[-1] == "0.1.0", "the changelog starts at 0.1.0"
    assert VERSION in names, f"pyproject's version {VERSION} has no changelog section"
    for name, date in releases[1:]:
        assert date, f"release {name} has no date"
        dt.date.fromisoformat(date)
    allowed = {"Added", "Changed", "Deprecated", "Removed", "Fixed", "Security"}
    assert set(re.findall(r"^### (.+)$", text, re.MULTILINE)) <= allowed


def test_changelog_is_in_the_docs(built_site):
    html = (built_site.root / "changelog" / "index.html").read_text(encoding="utf-8")
    assert "0.1.0" in html and "Unreleased" in html
