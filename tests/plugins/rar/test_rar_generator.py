"""RAR (bytedance/1d-tokenizer): cards, manifests, parity, weights-only pickles and
``zoo convert`` (its MaskGIT-VQGAN tokenizer is tested with the TiTok family).

Fixtures (tests/fixtures/rar) were recorded by scripts/parity/record_generators.py from the
reference on per-key seeded weights, its random draws routed to the seeded global generator.
"""

from __future__ import annotations

import gzip
import json
from functools import lru_cache
from pathlib import Path

import pytest
import torch

from zoo.testing.weights import (
    assert_manifest_equal,
    load_seeded,
    state_manifest,
)

FIX = Path(__file__).resolve().parents[2] / "fixtures" / "rar"
SIZES = {"rar.b": "rar_b", "rar.l": "rar_l", "rar.xl": "rar_xl", "rar.xxl": "rar_xxl"}


@lru_cache(maxsize=None)
def fixtures() -> dict:
    return json.loads((FIX / "cases.json").read_text())


@lru_cache(maxsize=None)
def tiny():
    from zoo_plugins.rar.config import RARConfig
    from zoo_plugins.rar.model import RAR

    d = fixtures()
    model = RAR(RARConfig(**d["config"])).eval()
    load_seeded(model, d["manifest"])
    return model


@pytest.mark.parametrize("name", sorted(SIZES))
def test_cards_build_the_published_key_layout(name):
    from zoo_plugins.rar.config import RAR_SIZES, RARConfig
    from zoo_plugins.rar.model import RAR

    from zoo.catalogue import load_catalogue
    from zoo.config import merge_config
    from zoo.weights import no_init

    card = next(c for c in load_catalogue() if c.name == name)
    cfg = merge_config(RARConfig, [("card", card.config)])
    assert {k: getattr(cfg, k) for k in RAR_SIZES[SIZES[name]]} == RAR_SIZES[SIZES[name]]
    with no_init(), torch.device("meta"):
        model = RAR(cfg)
    published = json.loads(gzip.decompress((FIX / "manifests.json.gz").read_bytes()))[SIZES[name]]
    assert_manifest_equal(state_manifest(model), {k: (tuple(s), t) for k, (s, t) in published.items()}, what=name)


def test_teacher_forced_logits_equal_reference():
    f = fixtures()["forward"]
    with torch.no_grad():
        logits = tiny()(torch.tensor(f["ids"]), torch.tensor(f["labels"]))
    assert torch.allclose(logits[0, :3, :8], torch.tensor(f["logits_head"]), atol=1e-5)
    assert torch.allclose(logits[1, -2, :8], torch.tensor(f["logits_last"]), atol=1e-5)
    assert abs(float(logits.double().sum()) - f["logits_sum"]) < 1e-3


def _runs():
    return [r for r in fixtures()["runs"] if r["kv_cache"]]


@pytest.mark.parametrize("run", _runs(), ids=[f"s{r['setting']}-seed{r['seed']}" for r in _runs()])
def test_generated_ids_equal_reference(run):
    """Same seed and settings -> the reference's ids (its kv-cache and no-cache runs agree)."""
    d = fixtures()
    twin = next(r for r in d["runs"] if not r["kv_cache"] and r["seed"] == run["seed"] and r["setting"] == run["setting"])
    assert twin["ids"] == run["ids"]
    out = tiny().generate(d["labels"], seed=run["seed"], decode=False, **d["settings"][run["setting"]])
    assert torch.equal(out.tokens.ids, torch.tensor(run["ids"]))


def test_cache_decode_equals_teacher_forcing():
    model = tiny()
    out = model.generate([4, 5], seed=1, decode=False, randomize_temperature=1.0, guidance_scale=0.0)
    with torch.no_grad():
        logits = model(out.tokens.ids, torch.tensor([4, 5]))
    g = torch.Generator().manual_seed(1)
    ids = [torch.multinomial(torch.softmax(logits[:, i], -1), 1, generator=g) for i in range(out.tokens.ids.shape[1])]
    assert torch.equal(torch.cat(ids, 1), out.tokens.ids)


def test_pickle_loads_weights_only_and_convert_writes_safetensors(tmp_path):
    import zoo_plugins.rar
    from click.testing import CliRunner

    import zoo
    from zoo.cli import cli
    from zoo.errors import CheckpointError
    from zoo.generation_commands import add_commands, convert_checkpoint
    from zoo.testing.plugins import temporary_plugin

    model = tiny()
    src = tmp_path / "rar_b.bin"
    torch.save(model.state_dict(), src)
    small = dict(fixtures()["config"])
    with temporary_plugin(zoo_plugins.rar, "rar-test"):
        loaded = zoo.load("rar.b", weights=src, **small)
        add_commands(cli)
        # the card's config is rar_b's: converting a tiny checkpoint must fail its strict check
        with pytest.raises(CheckpointError, match="shape"):
            convert_checkpoint("rar.b", src, tmp_path / "x.safetensors")
        bad = tmp_path / "evil.bin"
        torch.save({"w": torch.zeros(1), "obj": _Unpicklable()}, bad)
        with pytest.raises(CheckpointError, match="weights-only"):
            zoo.load("rar.b", weights=bad, **small)
        result = CliRunner().invoke(cli, ["convert", "rar.b", str(src), str(tmp_path / "y.safetensors")])
        assert result.exit_code != 0 and "shape" in result.output
    a = loaded.generate([1], seed=0, decode=False)
    b = model.generate([1], seed=0, decode=False, guidance_scale=16.0, guidance_scale_pow=2.75, randomize_temperature=1.0)
    assert torch.equal(a.tokens.ids, b.tokens.ids)


class _Unpicklable:
    """An arbitrary object: a weights-only load must refuse it."""


def test_convert_round_trip(tmp_path, monkeypatch):
    """convert_checkpoint -> safetensors with the same keys/values, loadable by zoo.load."""
    import dataclasses

    import zoo_plugins.rar

    import zoo
    from zoo.generation_commands import convert_checkpoint
    from zoo.registry import get_registry
    from zoo.testing.plugins import temporary_plugin
    from zoo.weights import load_safetensors

    model = tiny()
    src = tmp_path / "rar_b.bin"
    torch.save(model.state_dict(), src)
    with temporary_plugin(zoo_plugins.rar, "rar-test"):
        card = get_registry().cards["rar.b"]
        small = dataclasses.replace(card, config={**card.config, **fixtures()["config"]})
        monkeypatch.setitem(get_registry().cards, "rar.b", small)
        out = convert_checkpoint("rar.b", src, tmp_path / "rar_b.safetensors")
        sd, meta = load_safetensors(out)
        assert meta["zoo_model"] == "rar.b" and sorted(sd) == sorted(model.state_dict())
        assert all(torch.equal(sd[k], v) for k, v in model.state_dict().items())
        again = zoo.load("rar.b", weights=out)
    assert torch.equal(again.generate([2], seed=3, decode=False).tokens.ids,
                       model.generate([2], seed=3, decode=False, **{k: small.config[k] for k in ("guidance_scale", "guidance_scale_pow", "randomize_temperature")}).tokens.ids)
