"""Family pages show the pictures and audio samples named ``docs/assets/figures/<family>_*``."""

from __future__ import annotations

import pytest

from tests.docs.conftest import load_script


@pytest.fixture
def docs(tmp_path):
    figures = tmp_path / "assets" / "figures"
    figures.mkdir(parents=True)
    (figures / "wavtokenizer_speech_roundtrip.wav").write_bytes(b"RIFF0000WAVE")
    (figures / "wavtokenizer_speech_roundtrip.md").write_text("Made by `python scripts/x.py`.\n")
    (figures / "titok_grid.png").write_bytes(b"\x89PNG")
    (figures / "titok_notes.txt").write_text("not media")
    (figures / "flextok_ar_samples.png").write_bytes(b"\x89PNG")
    return tmp_path


@pytest.mark.parametrize("family, expected, absent", [
    ("wavtokenizer", ['<audio controls preload="none" src="../assets/figures/wavtokenizer_speech_roundtrip.wav"',
                      "### Speech roundtrip", "Made by `python scripts/x.py`."], ["<img", "![", "titok"]),
    ("titok", ["![grid](../assets/figures/titok_grid.png)"], ["notes", "<audio"]),
    ("flextok", [], []),  # flextok_ar_samples.png belongs to flextok_ar, not flextok
    ("flextok_ar", ["flextok_ar_samples.png"], []),
])
def test_media_section(docs, family, expected, absent):
    families = ["wavtokenizer", "titok", "flextok", "flextok_ar", "flextok_vae"]
    text = load_script("family_media").media_section(family, docs, families)
    if not expected:
        assert text == ""
    for part in expected:
        assert part in text, (part, text)
    for part in absent:
        assert part not in text, (part, text)
