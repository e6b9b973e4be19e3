"""MaskGIT generators (TiTok ImageBert / UViTBert, One-D-Piece): cards, manifests, parity.

Fixtures (tests/fixtures/maskgit) were recorded by scripts/parity/record_generators.py from
bytedance/1d-tokenizer on per-key seeded weights, with the reference's random draws routed to
the seeded global generator; zoo draws from ``torch.Generator().manual_seed(seed)``.
"""

from __future__ import annotations

import gzip
import json
from functools import lru_cache
from pathlib import Path

import pytest
import torch

from zoo.testing.weights import assert_manifest_equal, seeded_state_dict, state_manifest

FIX = Path(__file__).resolve().parents[2] / "fixtures" / "maskgit"
CARDS = {
    "maskgit.titok_l_32": "titok_l32",
    "maskgit.titok_b_64": "titok_b64",
    "maskgit.titok_s_128": "titok_s128",
    "maskgit.one_d_piece_l_256": "one_d_piece_256",
    "maskgit.one_d_piece_b_256": "one_d_piece_256",
    "maskgit.one_d_piece_s_256": "one_d_piece_256",
}


@lru_cache(maxsize=None)
def fixtures() -> dict:
    return json.loads((FIX / "cases.json").read_text())


@lru_cache(maxsize=None)
def published() -> dict:
    raw = json.loads(gzip.decompress((FIX / "manifests.json.gz").read_bytes()))
    return {n: {k: (tuple(s), d) for k, (s, d) in m.items()} for n, m in raw.items()}


def _manifest(case):
    return {k: (tuple(s), d) for k, (s, d) in case["manifest"].items()}


@lru_cache(maxsize=None)
def tiny_model(name: str):
    from zoo_plugins.maskgit.config import MaskGITConfig
    from zoo_plugins.maskgit.model import build_generator

    case = next(c for c in fixtures()["cases"] if c["name"] == name)
    model = build_generator(MaskGITConfig(**case["config"])).eval()
    model.load_state_dict(seeded_state_dict(_manifest(case)), strict=True)
    return model, case


def _card_config(name):
    from zoo.catalogue import load_catalogue
    from zoo.config import merge_config
    from zoo_plugins.maskgit.config import MaskGITConfig

    card = next(c for c in load_catalogue() if c.name == name)
    return card, merge_config(MaskGITConfig, [("card", card.config)])


@pytest.mark.parametrize("name", sorted(CARDS))
def test_card_builds_the_published_key_layout(name):
    """A model built from each card has the official keys and shapes (strict load)."""
    from zoo.weights import no_init
    from zoo_plugins.maskgit.model import build_generator

    card, cfg = _card_config(name)
    assert card.hub_repo and card.tokens.codebook_size == cfg.codebook_size == 4096
    with no_init(), torch.device("meta"):
        model = build_generator(cfg)
    assert_manifest_equal(state_manifest(model), published()[CARDS[name]], what=name)


@pytest.mark.parametrize("case_name", ["bert", "uvit"])
def test_forward_logits_equal_reference(case_name):
    model, case = tiny_model(case_name)
    f = case["forward"]
    with torch.no_grad():
        logits = model(torch.tensor(f["ids"]), torch.tensor(f["labels"]))
    assert torch.allclose(logits[0, :2, :8], torch.tensor(f["logits_head"]), atol=1e-5)
    assert abs(float(logits.double().sum()) - f["logits_sum"]) < 1e-3


def _runs():
    return [(c["name"], r) for c in fixtures()["cases"] for r in c["runs"]]


@pytest.mark.parametrize("case_name, run", _runs(), ids=[f"{n}-s{r['setting']}-seed{r['seed']}" for n, r in _runs()])
def test_generated_ids_equal_reference(case_name, run):
    """Same seed and sampler settings (linear / power-cosine / constant / no CFG) -> same ids."""
    model, _ = tiny_model(case_name)
    s = dict(fixtures()["settings"][run["setting"]])
    s["num_steps"] = s.pop("num_sample_steps")
    out = model.generate(fixtures()["labels"], seed=run["seed"], decode=False, **s)
    assert torch.equal(out.tokens.ids, torch.tensor(run["ids"]))


def test_generator_argument_and_no_global_rng():
    model, _ = tiny_model("bert")
    state = torch.get_rng_state()
    a = model.generate([1, 2], generator=torch.Generator().manual_seed(3), decode=False)
    b = model.generate([1, 2], seed=3, decode=False)
    assert torch.equal(a.tokens.ids, b.tokens.ids)
    assert torch.equal(torch.get_rng_state(), state)
    assert a.meta["num_steps"] == model.cfg.num_steps


def test_reference_guidance_mapping():
    from zoo_plugins.maskgit.model import reference_guidance

    assert reference_guidance(4.5, "constant").weight(3, 8) == 5.5
    assert [reference_guidance(4.0, "linear").weight(i, 4) for i in range(4)] == [1.0, 2.0, 3.0, 4.0]
    pc = reference_guidance(6.9, "power-cosine", 3.0)
    assert pc.weight(0, 8) == 1.0 and abs(pc.weight(8, 8) - 6.9) < 1e-5
    with pytest.raises(ValueError, match="guidance_decay"):
        reference_guidance(1.0, "cosine")


def test_decode_uses_the_given_tokenizer_and_bad_labels():
    model, _ = tiny_model("bert")

    class FakeTokenizer:
        def decode(self, tokens):
            return tokens.ids.float()[:, None]

    out = model.generate([0], seed=0, tokenizer=FakeTokenizer())
    assert out.media.shape == (1, 1, 16) and out.tokens.codebook_size == 64
    with pytest.raises(ValueError, match="0..9"):
        model.generate([10], seed=0, decode=False)


def test_reference_config_json_maps_and_unknown_keys_fail():
    from zoo.errors import ConfigError
    from zoo_plugins.maskgit.config import from_reference_config

    tree = {"model": {"vq_model": {"codebook_size": 4096, "num_latent_tokens": 128},
                      "generator": {"model_type": "UViT", "hidden_size": 1024, "num_hidden_layers": 20, "num_steps": 64,
                                    "guidance_decay": "power-cosine", "image_seq_len": "${model.vq_model.num_latent_tokens}"}}}
    cfg = from_reference_config(tree)
    assert cfg["arch"] == "uvit" and cfg["image_seq_len"] == 128 and "num_steps" not in cfg
    tree["model"]["generator"]["hiddn_size"] = 3
    with pytest.raises(ConfigError, match="hiddn_size"):
        from_reference_config(tree)


def test_load_from_release_files(tmp_path):
    """zoo.load(card, weights=dir) reads model.safetensors + config.json and loads strictly;
    One-D-Piece-style pytorch_model.bin (weights-only pickle) too."""
    import zoo
    import zoo_plugins.maskgit
    from safetensors.torch import save_file
    from zoo.testing.plugins import temporary_plugin

    model, case = tiny_model("bert")
    sd = {k: v.contiguous() for k, v in model.state_dict().items()}
    cfg = case["config"]
    tree = {"model": {"vq_model": {"codebook_size": cfg["codebook_size"], "num_latent_tokens": cfg["image_seq_len"]},
                      "generator": {"model_type": "ViT", "hidden_size": cfg["hidden_size"], "num_hidden_layers": cfg["num_hidden_layers"],
                                    "num_attention_heads": cfg["num_attention_heads"], "intermediate_size": cfg["intermediate_size"],
                                    "condition_num_classes": cfg["condition_num_classes"], "dropout": 0.1}}}
    save_file(sd, str(tmp_path / "model.safetensors"))
    (tmp_path / "config.json").write_text(json.dumps(tree))
    with temporary_plugin(zoo_plugins.maskgit, "maskgit-test"):
        loaded = zoo.load("maskgit.titok_l_32", weights=tmp_path)
        pickled = tmp_path / "bin"
        pickled.mkdir()
        torch.save({**sd, "model.embeddings.position_ids": torch.arange(cfg["image_seq_len"] + 1)[None]}, pickled / "pytorch_model.bin")
        small = {k: v for k, v in cfg.items()}
        odp = zoo.load("maskgit.one_d_piece_s_256", weights=pickled, **small)
    settings = dict(num_steps=4, guidance_scale=4.5, guidance_decay="linear", randomize_temperature=9.5, softmax_temperature_annealing=True)
    a = loaded.generate([1], seed=0, decode=False, **settings)
    b = model.generate([1], seed=0, decode=False, **settings)
    c = odp.generate([1], seed=0, decode=False, **settings)
    assert torch.equal(a.tokens.ids, b.tokens.ids) and torch.equal(c.tokens.ids, b.tokens.ids)
    assert loaded.config.tokenizer == "titok.l_32"
