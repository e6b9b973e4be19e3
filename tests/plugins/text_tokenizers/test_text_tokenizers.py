"""Text tokenizer cards: hub-layout releases of each format, trained here, load through zoo.load
and give the library's own ids; ragged batches, byte offsets, round trips and bad input."""

from __future__ import annotations

import pytest
import torch

import zoo
from zoo.errors import CheckpointError, InputError, InputTypeError, TokenError
from zoo.interfaces import Tokens
from zoo.text.tokenizer import PROBE_TEXTS, TextTokenizer
from zoo_plugins.text_tokenizers.testing import CORPUS, kl3m_like, sentencepiece_model, superbpe_like, write_release

pytest.importorskip("tokenizers")

TEXTS = ["The Court held", "  Section 2(a)\tof the Act.\n", "café über 🙂", "x"]

# card, tokenizer factory, lossless (decode(encode(x)) == x for every probe)
CASES = [
    ("kl3m.004_128k_cased", lambda: kl3m_like(300), True),
    ("kl3m.004_128k_uncased", lambda: kl3m_like(300, cased=False), False),
    ("kl3m.004_char_8k_cased", lambda: kl3m_like(280), True),
    ("superbpe.olmo2_8b_t180k", lambda: superbpe_like(320), True),
    ("superbpe.olmo2_8b_bpe", lambda: kl3m_like(320), True),
]


@pytest.fixture(scope="module")
def trained():
    return {name: make() for name, make, _ in CASES}


@pytest.mark.parametrize("name,lossless", [(n, lossless) for n, _, lossless in CASES])
def test_card_loads_from_the_hub_layout_and_matches_the_library(name, lossless, trained, hub_stand_in):
    card = zoo.get_card(name)
    lib = trained[name]
    write_release(hub_stand_in.root / card.hub_repo, lib)
    tok = zoo.load(name)
    assert isinstance(tok, TextTokenizer) and tok.card.name == name and tok.num_parameters() == 0
    tokens = tok.encode(TEXTS)
    assert isinstance(tokens, Tokens) and tokens.tokenizer == name and tokens.codebook_size == lib.get_vocab_size()
    for b, text in enumerate(TEXTS):  # ids are the library's, item by item; padding beyond lengths
        assert tokens.ids[b, : tokens.lengths[b]].tolist() == lib.encode(text, add_special_tokens=False).ids
    assert tokens.lengths.tolist() == [len(lib.encode(t).ids) for t in TEXTS]
    assert tok.lossless is lossless
    assert (tok.decode(tokens) == TEXTS) is lossless
    assert tok.round_trip(list(PROBE_TEXTS)) == [lib.decode(lib.encode(t).ids) == t for t in PROBE_TEXTS]
    assert (tok.bos_id, tok.eos_id) == (lib.token_to_id("<|start|>"), lib.token_to_id("<|end|>"))  # from tokenizer_config.json
    assert name.split(".")[0] in repr(tok) and "tokenizer.json" in repr(tok)


def test_superbpe_style_tokens_span_words_and_kl3m_style_do_not(trained):
    def spanning(lib):
        table = TextTokenizer(lib).token_bytes
        return [t for t in table if t and b" " in t.strip(b" ")]

    assert spanning(trained["superbpe.olmo2_8b_t180k"])  # superword tokens: a space inside
    assert not spanning(trained["kl3m.004_128k_cased"])  # pre-split on whitespace: never


@pytest.mark.parametrize("maker", [lambda: kl3m_like(300), lambda: superbpe_like(300)])
def test_byte_offsets_cover_each_text_exactly(maker):
    tok = TextTokenizer(maker())
    tokens = tok.encode(TEXTS, return_offsets=True)
    for b, text in enumerate(TEXTS):
        spans = tokens.meta["offsets"][b]
        data = text.encode("utf-8")
        assert spans.shape == (int(tokens.lengths[b]), 2)
        assert spans[0, 0] == 0 and spans[-1, 1] == len(data) and (spans[1:, 0] == spans[:-1, 1]).all()
        pieces = [tok.token_bytes[i] for i in tokens.ids[b, : tokens.lengths[b]].tolist()]
        assert [data[s:e] for s, e in spans.tolist()] == pieces
    assert [o.shape[0] for o in tokens[1:3].meta["offsets"]] == tokens.lengths[1:3].tolist()  # per item, sliced with the batch


@pytest.mark.parametrize("lossless", [True, False])
def test_sentencepiece_model_files(lossless, tmp_path):
    import sentencepiece as spm

    path = sentencepiece_model(tmp_path / "tokenizer.model", lossless=lossless)
    sp = spm.SentencePieceProcessor(model_file=str(path))
    tok = zoo.load("kl3m.004_char_4k_cased", weights=path)  # any text card takes a .model file
    tokens = tok.encode(TEXTS, return_offsets=True)
    assert [tokens.ids[b, : n].tolist() for b, n in enumerate(tokens.lengths.tolist())] == sp.encode(TEXTS)
    assert tok.lossless is lossless and (tok.decode(tokens) == TEXTS) is lossless
    assert tok.decode(tok.encode(CORPUS[0])) == [CORPUS[0]]
    with_specials = tok.encode("x", add_special_tokens=True).ids[0].tolist()
    assert with_specials[0] == sp.bos_id() and with_specials[-1] == sp.eos_id()
    spans = tokens.meta["offsets"][2]  # 'café über 🙂': byte offsets into the UTF-8 text
    assert int(spans[-1, 1]) == len(TEXTS[2].encode("utf-8"))


def test_bad_input_is_refused_with_a_clear_error(trained, tmp_path):
    tok = TextTokenizer(trained["kl3m.004_128k_cased"])
    for bad, err in [([], InputError), ([b"x"], InputTypeError), (b"x", InputTypeError), (3, InputTypeError), (["a", None], InputTypeError)]:
        with pytest.raises(err):
            tok.encode(bad)
    with pytest.raises(TokenError, match="outside this vocabulary"):
        tok.decode([[0, tok.vocab_size]])
    foreign = Tokens(ids=torch.zeros(1, 2, dtype=torch.long), codebook_size=tok.vocab_size, tokenizer="other.model")
    tok.card = zoo.get_card("kl3m.004_128k_cased")
    with pytest.raises(TokenError, match="made by 'other.model'"):
        tok.decode(foreign)
    with pytest.raises(InputError, match="no vocabulary"):
        zoo.load("kl3m.004_128k_cased", pretrained=False).encode("x")
    broken = tmp_path / "tokenizer.json"
    broken.write_text("{not json")
    with pytest.raises(CheckpointError, match="tokenizers library can read"):
        zoo.load("kl3m.003_64k", weights=broken)
    good = write_release(tmp_path / "good", trained["kl3m.004_128k_cased"])
    with pytest.raises(CheckpointError, match="card says 4096"):
        zoo.load("kl3m.003_64k", weights=good, vocab_size=4096)


def test_empty_texts_encode_to_empty_items(trained):
    tok = TextTokenizer(trained["kl3m.004_128k_cased"])
    tokens = tok.encode(["", "abc"])
    assert tokens.lengths.tolist()[0] == 0 and tok.decode(tokens) == ["", "abc"]


def test_the_family_pages_example_runs(trained, monkeypatch):
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("zoo_docs", Path(__file__).parents[3] / "scripts" / "docs" / "zoo_docs.py")
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    code = gen.family_example(zoo.info("kl3m.004_128k_cased"), load_name="kl3m")
    tok = TextTokenizer(trained["kl3m.004_128k_cased"])
    monkeypatch.setattr(zoo, "load", lambda name, **kw: tok)
    ns: dict = {}
    exec(compile(code.split("```python\n", 1)[1].rsplit("```", 1)[0], "kl3m example", "exec"), ns)
    assert ns["texts"] == ["The Court held", "ok"] and ns["tokens"].meta["offsets"][0][-1, 1] == len("The Court held")
