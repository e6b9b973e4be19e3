"""The card schema and registry.yaml validation: errors name the file, the card and the key."""

from __future__ import annotations

import pytest

from zoo.cards import ModelCard, card_from_dict
from zoo.catalogue import REGISTRY_FILE, load_catalogue
from zoo.errors import CardError

GOOD = {"name": "fam.tag", "kind": "tokenizer", "plugin": "fam", "modality": "image", "license": {"code": "MIT"}}


def test_the_builtin_registry_validates():
    cards = load_catalogue()
    assert all(isinstance(c, ModelCard) for c in cards)
    assert REGISTRY_FILE.resolve().parent.name != "zoo"  # the file lives at the repo root (linked)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"lisence": "MIT"}, r"card 'fam.tag': unknown key\(s\) \['lisence'\]"),
        ({"kind": "detokenizer"}, r"card 'fam.tag'.kind: 'detokenizer' is not one of \['tokenizer', 'generator', 'token_reducer'\]"),
        ({"license": {"code": "MIT", "wieghts": "x"}}, r"card 'fam.tag'.license: unknown key\(s\) \['wieghts'\]"),
        ({"files": "model.safetensors"}, r"card 'fam.tag'.files: expected a list"),
        ({"metrics": ["rfid"]}, r"card 'fam.tag'.metrics: expected a mapping"),
        ({"default": "yes"}, r"card 'fam.tag'.default: expected bool"),
        ({"name": "NoDot"}, r"name must look like 'family.tag'"),
        ({"revision": "abc"}, r"'revision' given without 'hub_repo'"),
        ({"hub_repo": "org/repo"}, r"'files' must list the checkpoint files"),
        ({"tokens": {"length": 32, "codebook_size": 4096}}, r"card 'fam.tag'.tokens.length: expected str"),
    ],
)
def test_bad_cards_name_the_key(change, message):
    with pytest.raises(CardError, match=message):
        card_from_dict({**GOOD, **change}, source="registry.yaml")


@pytest.mark.parametrize("missing", ["name", "kind", "plugin", "modality", "license"])
def test_missing_required_key(missing):
    raw = {k: v for k, v in GOOD.items() if k != missing}
    with pytest.raises(CardError, match=f"missing required key '{missing}'"):
        card_from_dict(raw, source="registry.yaml")


@pytest.mark.parametrize(
    "text, message",
    [
        ("models:\n  - name: a.b\n    kind: tokenizer\n    plugin: a\n    modality: image\n    license: {code: MIT}\n    colour: red\n",
         r"bad.yaml: card 'a.b': unknown key\(s\) \['colour'\]"),
        ("cards: []\n", "single key 'models'"),
        ("models: {a: 1}\n", "'models' must be a list"),
        ("models:\n  - [1, 2]\n", r"models\[0\] must be a mapping"),
        ("models: [\n", "not valid YAML"),
    ],
)
def test_bad_catalogue_files(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(CardError, match=message):
        load_catalogue(path)


def test_duplicate_card_in_one_file(tmp_path):
    card = "  - {name: a.b, kind: tokenizer, plugin: a, modality: image, license: {code: MIT}}\n"
    path = tmp_path / "dup.yaml"
    path.write_text("models:\n" + card + card)
    with pytest.raises(CardError, match="card 'a.b' appears twice"):
        load_catalogue(path)


def test_card_round_trips_to_json():
    import json

    card = card_from_dict({**GOOD, "paper": {"title": "T", "url": "https://arxiv.org/abs/1", "year": 2025},
                           "metrics": {"rfid": 1.5}, "tokens": {"length": "1-256", "codebook_size": 64000}}, source="x")
    record = json.loads(json.dumps(card.to_dict()))
    assert record["paper"]["year"] == 2025 and record["tokens"]["codebook_size"] == 64000 and record["source"] == "x"
