"""LLMLingua-2: parity with the llmlingua package on tiny random classifiers, loading, bad input."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest
import torch

import zoo
from zoo.errors import CheckpointError, ConfigError, InputError, InputTypeError, ZooError

from .cases import CASES, case_text
from .tiny import count_tokens, write_model

pytest.importorskip("transformers")
REFERENCE = json.loads((Path(__file__).parents[2] / "fixtures" / "llmlingua2" / "reference.json").read_text())
NAMES = {"xlm-roberta": "llmlingua2", "bert": "llmlingua2.bert_base_multilingual_cased_meetingbank"}
RENAMED = {"target_token": "target_tokens", "context_level_target_token": "context_level_target_tokens"}  # reference -> zoo names


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("llmlingua2")
    return {kind: write_model(root / kind, kind) for kind in NAMES}


@pytest.fixture(scope="module")
def models(folders):
    return {kind: zoo.load(NAMES[kind], weights=folder) for kind, folder in folders.items()}


@pytest.mark.parametrize("name", sorted(CASES))
def test_parity_with_llmlingua(models, name):
    """Same compressed text, words, labels and token counts; keep probabilities to float32 rounding."""
    case, ref = CASES[name], REFERENCE[name]
    kwargs = {RENAMED.get(k, k): v for k, v in case["kwargs"].items()}
    out = models[case.get("kind", "xlm-roberta")].compress(case_text(name), token_counter=count_tokens, **kwargs)
    assert out.text == ref["compressed_prompt"]
    assert out.texts == ref["compressed_prompt_list"]
    assert out.words == ref["words"]
    assert [int(k) for k in out.kept] == ref["labels"]
    assert (out.origin_tokens, out.compressed_tokens) == (ref["origin_tokens"], ref["compressed_tokens"])
    expected = [p for chunk in ref["word_probs"] for p in chunk]
    if expected:
        torch.testing.assert_close(torch.tensor(out.probabilities), torch.tensor(expected), rtol=0, atol=1e-5)
        assert 0 < sum(out.kept) < len(out.words)
    else:  # no token-level model run (rate 1, or the context filter alone)
        assert out.probabilities is None


def test_result_value(models):
    out = models["xlm-roberta"].compress(case_text("rate_033"), rate=0.33, force_tokens=["?"], token_counter=count_tokens)
    assert out.ratio == out.origin_tokens / out.compressed_tokens > 1.5
    assert out.kept_words == [w for w, k in zip(out.words, out.kept) if k]
    assert all(w in out.kept_words for w in out.words if w == "?")
    assert re.fullmatch(r"CompressedPrompt\(\d+\.\dx: \d+ -> \d+ tokens, \d+/\d+ words kept\)", repr(out))
    counted = models["xlm-roberta"].compress(case_text("rate_033"), rate=0.33, token_counter="classifier")
    assert counted.origin_tokens == len(models["xlm-roberta"].tokenizer(case_text("rate_033")).input_ids)


def test_force_token_slots_do_not_depend_on_the_callers_rng(folders):
    """The 100 [NEWi] embedding rows come from transformers' mean resizing seeded with 42 (as the
    reference's seed_everything(42)), whatever the caller's global RNG state."""
    torch.manual_seed(1)
    a = zoo.load("llmlingua2", weights=folders["xlm-roberta"]).classifier.get_input_embeddings().weight
    torch.manual_seed(2)
    b = zoo.load("llmlingua2", weights=folders["xlm-roberta"]).classifier.get_input_embeddings().weight
    assert a.shape[0] == len(json.loads((folders["xlm-roberta"] / "tokenizer.json").read_text())["model"]["vocab"]) + 100
    assert torch.equal(a, b)


@pytest.mark.parametrize(("kwargs", "error", "message"), [
    (dict(text=""), InputError, "empty"),
    (dict(text=3), InputTypeError, "string or a list"),
    (dict(text="a b", rate=1.5), ConfigError, "fraction of tokens to keep"),
    (dict(text="a b", rate=0), ConfigError, "fraction of tokens to keep"),
    (dict(text="a b", target_tokens=-2), ConfigError, "positive int"),
    (dict(text="a b", force_tokens=[str(i) for i in range(101)]), ConfigError, "at most 100"),
    (dict(text="a b", token_to_word="max"), ConfigError, "'mean' or 'first'"),
    (dict(text="a b", token_counter="gpt-4"), ConfigError, "token_counter"),
])
def test_bad_input(models, kwargs, error, message):
    with pytest.raises(error, match=re.escape(message)):
        models["bert"].compress(**{"token_counter": count_tokens, **kwargs})


def test_default_counter_needs_tiktoken(models, monkeypatch):
    monkeypatch.setitem(sys.modules, "tiktoken", None)
    with pytest.raises(ZooError, match="token_counter='classifier'"):
        models["bert"].compress("a b c", rate=0.5)


def test_files_that_do_not_fit(folders, tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    for f in folders["bert"].iterdir():
        (bad / f.name).write_bytes(f.read_bytes())
    cfg = json.loads((bad / "config.json").read_text())
    (bad / "config.json").write_text(json.dumps({**cfg, "model_type": "gpt2"}))
    with pytest.raises(CheckpointError, match="model_type 'gpt2'"):
        zoo.load(NAMES["bert"], weights=bad)
    (bad / "config.json").write_text(json.dumps({**cfg, "hidden_size": 48}))
    with pytest.raises(CheckpointError):
        zoo.load(NAMES["bert"], weights=bad)


def test_random_model_has_no_tokenizer():
    model = zoo.load(NAMES["bert"], pretrained=False, hf={**zoo.get_card(NAMES["bert"]).config["hf"], "vocab_size": 50,
                                                          "hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2,
                                                          "intermediate_size": 16})
    with pytest.raises(ZooError, match="no tokenizer"):
        model.compress("a b c")


def test_reduce_keeps_the_most_wanted_ids_in_order(models):
    """``reduce`` on classifier ids keeps the top-``rate`` tokens by the same keep probabilities
    ``token_probabilities`` gives, in order; padding is never kept; ``apply`` says where to go."""
    model = models["xlm-roberta"]
    text = case_text("rate_033")
    ids = torch.tensor([model.tokenizer(text).input_ids[:40]])
    batch = torch.cat([ids, torch.cat([ids[:, :30], torch.full((1, 10), 1)], dim=1)])
    mask = torch.ones_like(batch)
    mask[1, 30:] = 0
    out = model.reduce(batch, rate=0.5, attention_mask=mask)
    logits = model.classifier(input_ids=ids, attention_mask=torch.ones_like(ids)).logits
    probs = torch.softmax(logits.float(), dim=-1)[0, :, 1]
    top = probs.topk(20).indices.sort().values
    assert torch.equal(out.indices[0], top) and torch.equal(out.tokens[0], ids[0, top])
    torch.testing.assert_close(out.sizes[0], probs[top])
    assert (out.indices[1, :15] < 30).all() and (out.indices[1, 15:] == -1).all()
    with pytest.raises(zoo.errors.InputError, match="compress\\(text"):
        model.reduce(torch.randn(1, 4))
    with pytest.raises(zoo.errors.ReducerError, match="before the model"):
        model.apply(torch.nn.Linear(2, 2))
