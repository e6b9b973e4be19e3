"""Tokenizer transfer (zoo.text.transfer): WECHSEL equals the wechsel package on the same inputs,
reproduces the source embeddings when nothing changes, and zoo.transfer_tokenizer re-heads a
transformers LM for a new tokenizer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import zoo
from zoo.errors import InputError
from zoo.text.transfer import wechsel_embeddings
from zoo_plugins.text_tokenizers import testing as T

pytest.importorskip("tokenizers")
FIXTURES = Path(__file__).parents[2] / "fixtures" / "text_tokenizers"


@pytest.fixture(scope="module")
def inputs():
    src_tok, tgt_tok = T.bpe_on(T.CORPUS, 330), T.bpe_on(T.TARGET_CORPUS, 350)
    words_en = sorted({w.strip(".,;()%$").lower() for t in T.CORPUS for w in t.split()} - {""})
    words_de = sorted({w.strip(".,;()%$").lower() for t in T.TARGET_CORPUS for w in t.split()} - {""})
    vectors = T.HashVectors(words_en, dim=8, seed=1), T.HashVectors(words_de, dim=8, seed=2)
    matrix = np.random.RandomState(0).normal(0, 1, (src_tok.get_vocab_size(), 16)).astype(np.float32)
    return src_tok, tgt_tok, vectors, matrix


def test_wechsel_equals_the_wechsel_package(inputs):
    """Recorded by scripts/record_wechsel_parity.py from wechsel 0.0.4 (Procrustes on the
    dictionary, 10 neighbours, temperature 0.1, random fallback, special tokens copied)."""
    src_tok, tgt_tok, (sv, tv), matrix = inputs
    ours = wechsel_embeddings(src_tok, tgt_tok, matrix, sv, tv, dictionary=T.DICTIONARY, neighbors=10, temperature=0.1)
    ref = np.load(FIXTURES / "wechsel_target_matrix.npy", allow_pickle=False)
    assert ours.shape == ref.shape == (350, 16)
    np.testing.assert_allclose(ours, ref, atol=1e-5, rtol=0)


def test_same_tokenizer_and_space_give_back_the_source_rows(inputs):
    src_tok, _, (sv, _), matrix = inputs
    out = wechsel_embeddings(src_tok, src_tok, matrix, sv, sv, neighbors=1)
    text = [src_tok.decode([i], skip_special_tokens=False).strip() for i in range(src_tok.get_vocab_size())]
    for i, t in enumerate(text):
        if t:  # its nearest source token is itself or one with the same text ('the' / ' the'): an exact tie
            assert any(np.allclose(out[i], matrix[j], atol=1e-6) for j, u in enumerate(text) if u == t), t


def test_transfer_tokenizer_reheads_a_transformers_lm(inputs):
    src_tok, tgt_tok, (sv, tv), _ = inputs
    lm = T.seeded_llama({"vocab_size": src_tok.get_vocab_size(), "hidden_size": 16, "intermediate_size": 32,
                         "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 1, "head_dim": 8,
                         "tie_word_embeddings": False})
    old_in = lm.get_input_embeddings().weight.detach().clone()
    old_out = lm.get_output_embeddings().weight.detach().clone()
    zoo.transfer_tokenizer(lm, tgt_tok, old_tokenizer=src_tok, method="wechsel", source_vectors=sv, target_vectors=tv,
                           dictionary=T.DICTIONARY)
    size = tgt_tok.get_vocab_size()
    assert lm.get_input_embeddings().weight.shape[0] == size and lm.config.vocab_size == size
    expect_in = wechsel_embeddings(src_tok, tgt_tok, old_in, sv, tv, dictionary=T.DICTIONARY)
    expect_out = wechsel_embeddings(src_tok, tgt_tok, old_out, sv, tv, dictionary=T.DICTIONARY)
    assert torch.allclose(lm.get_input_embeddings().weight, torch.as_tensor(expect_in, dtype=torch.float32), atol=1e-6)
    assert torch.allclose(lm.get_output_embeddings().weight, torch.as_tensor(expect_out, dtype=torch.float32), atol=1e-6)
    ids = torch.tensor([tgt_tok.encode("Das Gericht entschied").ids])
    assert lm(input_ids=ids).logits.shape == (1, ids.shape[1], size)


def test_bad_input(inputs):
    src_tok, tgt_tok, (sv, tv), matrix = inputs
    with pytest.raises(InputError, match="unknown tokenizer transfer method"):
        zoo.transfer_tokenizer(torch.nn.Linear(1, 1), tgt_tok, old_tokenizer=src_tok, method="zett")
    with pytest.raises(InputError, match="source_vectors"):
        zoo.transfer_tokenizer(torch.nn.Linear(1, 1), tgt_tok, old_tokenizer=src_tok)
    with pytest.raises(InputError, match="source_matrix must be"):
        wechsel_embeddings(src_tok, tgt_tok, matrix[:10], sv, tv)
    with pytest.raises(InputError, match="no pair"):
        wechsel_embeddings(src_tok, tgt_tok, matrix, sv, tv, dictionary=[("xx", "yy")])
