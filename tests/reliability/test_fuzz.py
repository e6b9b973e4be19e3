"""A bounded, seeded fuzz of the name parser and the card schema (a few seconds).

Properties: the parser either raises UnknownModelError or returns parts that re-format to a name
that parses to the same parts; the registry never raises anything but UnknownModelError for a
name; a mutated card either validates into a card whose record is JSON and re-validates to the
same record, or is a CardError; a plugin registering it never takes the registry down. Whatever
the fuzz once found is a row in the matrix (see the report in docs/security.md)."""

from __future__ import annotations

import copy
import json
import random
import time
import types
import warnings

from zoo.cards import ModelCard, card_from_dict
from zoo.errors import CardError, UnknownModelError
from zoo.hookspecs import hookimpl
from zoo.registry import ModelName, get_registry, parse_model_name
from zoo.testing.plugins import isolated_registry

SEED = 1313
BUDGET_S = 2.0
PIECES = list("abcxyz019_-.@:/ ") + ["\t", "\n", "\\", "$", "{", "}", "é", "\x00", "hf-hub:", "HF-HUB:", "flextok",
                                     "demo_tiny", "@", ".", "..", "//", "refs/pr/1", "${x}", "main"]


def _format(m: ModelName) -> str:
    base = f"hf-hub:{m.hub_repo}" if m.hub_repo else m.family + (f".{m.tag}" if m.tag else "")
    return base + (f"@{m.revision}" if m.revision else "")


def _names(rng: random.Random):
    while True:
        yield "".join(rng.choice(PIECES) for _ in range(rng.randint(0, 10)))


def test_name_parser_fuzz():
    rng = random.Random(SEED)
    registry = get_registry()
    start, tried, accepted = time.monotonic(), 0, 0
    for name in _names(rng):
        if tried >= 20000 or time.monotonic() - start > BUDGET_S:
            break
        tried += 1
        try:
            parsed = parse_model_name(name)
        except UnknownModelError as exc:
            assert str(exc), name
            continue
        accepted += 1
        assert parsed.revision is None or (parsed.revision and "@" not in parsed.revision and not parsed.revision.isspace()), (name, parsed)
        if parsed.hub_repo is None:
            assert parsed.family and parsed.family == parsed.family.lower() and "." not in parsed.family, (name, parsed)
            assert parsed.tag is None or (parsed.tag and not parsed.tag.startswith(".") and not parsed.tag.endswith(".")), (name, parsed)
        assert parse_model_name(_format(parsed)) == parsed, (name, parsed)
        try:
            registry.find_card(name)
        except UnknownModelError:
            pass
    assert tried >= 1000 and 0 < accepted < tried, (tried, accepted)


BASE = {"name": "fuzz.card", "kind": "tokenizer", "plugin": "fuzz", "modality": "image", "license": {"code": "MIT"},
        "metrics": {"psnr": 20.0}, "config": {"width": 8}}
VALUES = [None, 0, -1, 1.5, float("nan"), float("inf"), "", "x", "Fuzz.Card", "a.b.c", "${oc.env:HOME}", [], [1, "a"], {},
          {"a": object()}, {"code": 1}, True, object(), b"bytes", ("t",), {"psnr": float("nan")}, "0" * 40, ["w.bin"]]
KEYS = [*ModelCard.__dataclass_fields__, "junk"]


def _mutants(rng: random.Random):
    while True:
        card = copy.deepcopy(BASE)
        for _ in range(rng.randint(1, 3)):
            key = rng.choice(KEYS)
            if rng.random() < 0.2:
                card.pop(key, None)
            elif key in ("metrics", "config", "license") and isinstance(card.get(key), dict) and rng.random() < 0.5:
                card[key][rng.choice(["psnr", "width", "code", "weights", "x"])] = rng.choice(VALUES)
            else:
                card[key] = rng.choice(VALUES)
        yield card


def test_card_schema_fuzz():
    rng = random.Random(SEED)
    start, tried, valid = time.monotonic(), 0, 0
    for raw in _mutants(rng):
        if tried >= 5000 or time.monotonic() - start > BUDGET_S:
            break
        tried += 1
        try:
            card = card_from_dict(raw, source="fuzz")
        except CardError:
            continue
        valid += 1
        record = json.loads(json.dumps(card.to_dict(), allow_nan=False))
        again = card_from_dict({k: v for k, v in record.items() if k != "source"}, source="fuzz")
        assert json.loads(json.dumps(again.to_dict())) == record, raw  # the JSON record is a fixed point
    assert tried >= 500 and 0 < valid < tried, (tried, valid)


def test_a_plugin_with_fuzzed_cards_never_takes_the_registry_down():
    rng = random.Random(SEED + 1)
    good = types.ModuleType("fuzz_good")
    good.register_cards = hookimpl(lambda register: register({**BASE, "name": "good.one", "plugin": "good"}))
    mutants = _mutants(rng)
    for i in range(40):
        cards = [dict(next(mutants), name=f"fuzz.c{i}_{j}") if j % 2 else next(mutants) for j in range(3)]
        bad = types.ModuleType(f"fuzz_{i}")
        bad.register_cards = hookimpl(lambda register, cards=cards: [register(c) for c in cards])
        with isolated_registry(good, bad) as registry, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import zoo

            names = zoo.list_models()
            assert "good.one" in names
            mine = [n for n in names if n.startswith("fuzz.")]
            failed = any(p.name == f"fuzz_{i}" and p.error for p in registry.plugins())
            assert failed or len(mine) == len({c.get("name") for c in cards}), (cards, names)
            assert not (failed and mine), f"a failed plugin left cards behind: {mine}"
            json.dumps([zoo.info(n) for n in names], allow_nan=False)
