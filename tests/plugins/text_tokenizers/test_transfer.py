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
from zoo.text import transfer as X
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


def tied_rows(src_tok, tgt_tok, sv, tv, k: int = 10) -> set[int]:
    """Target rows whose k-th and (k+1)-th most similar source tokens tie (tokens whose text gives
    the same vector): which of them counts is an arbitrary choice, made differently by the wechsel
    package (``np.argpartition``) on different CPUs."""
    sims, _ = X._wechsel_similarities(src_tok, tgt_tok, sv, tv, T.DICTIONARY)
    ranked = -np.sort(-sims, axis=1)
    return set(np.flatnonzero(np.abs(ranked[:, k - 1] - ranked[:, k]) < 1e-9).tolist())


def test_wechsel_equals_the_wechsel_package(inputs):
    """Recorded by scripts/record_wechsel_parity.py from wechsel 0.0.4 (Procrustes on the
    dictionary, 10 neighbours, temperature 0.1, random fallback, special tokens copied); rows with a
    tie at the 10th neighbour are compared in test_ties_at_the_kth_neighbour_go_to_the_lower_id."""
    src_tok, tgt_tok, (sv, tv), matrix = inputs
    ours = wechsel_embeddings(src_tok, tgt_tok, matrix, sv, tv, dictionary=T.DICTIONARY, neighbors=10, temperature=0.1)
    ref = np.load(FIXTURES / "wechsel_target_matrix.npy", allow_pickle=False)
    assert ours.shape == ref.shape == (350, 16)
    tied = tied_rows(src_tok, tgt_tok, sv, tv)
    assert 0 < len(tied) < 50  # the inputs do have ties (34 here), and most rows have none
    rows = [i for i in range(ref.shape[0]) if i not in tied]
    np.testing.assert_allclose(ours[rows], ref[rows], atol=1e-5, rtol=0)


def test_ties_at_the_kth_neighbour_go_to_the_lower_id():
    """Two source tokens with the same vector tie for the last neighbour place: the lower id wins,
    whatever the CPU (np.argpartition's own choice differs between SIMD kernels)."""
    assert X.top_k(np.array([0.1, 0.9, 0.5, 0.9, 0.5]), 3).tolist() == [1, 3, 2]
    assert X.top_k(np.array([0.5, 0.5, 0.5]), 5).tolist() == [0, 1, 2]
    scores = np.random.RandomState(3).rand(1000).round(2)  # many exact ties
    for k in (1, 7, 50, 999):
        got = X.top_k(scores, k)
        want = np.lexsort((np.arange(1000), -scores))[:k]  # by score, then by id
        assert got.tolist() == want.tolist()


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


def test_tokenadapt_equals_the_reference_heuristics(inputs):
    """Recorded by scripts/record_tokenadapt_parity.py from Tinycompany-AI/tokenadapt's
    heuristics (untied.py's mixing, global weight 0.3, k 3, temperature 0.3, threshold 0) with an
    exact inner-product search for FAISS. Rows whose k-th neighbour ties exactly with the next one
    (old tokens that decode to the same text) may pick either and are left out."""
    from zoo.text.transfer import tokenadapt_embeddings

    old, new = T.bpe_on(T.CORPUS, 330), T.bpe_on(T.TARGET_CORPUS, 350)
    aux = T.HashVectors([], dim=8, seed=3)

    def embed(texts):
        return np.stack([aux.get_word_vector(t) for t in texts])

    matrix = np.random.RandomState(0).normal(0, 1, (old.get_vocab_size(), 16)).astype(np.float32)
    ours = tokenadapt_embeddings(old, new, matrix, embed, generator=torch.Generator().manual_seed(0))
    fix = np.load(FIXTURES / "tokenadapt_parity.npz", allow_pickle=False)
    ids = sorted(old.get_vocab(with_added_tokens=True).values())
    index = embed([old.decode([i], skip_special_tokens=False) for i in ids]).astype(np.float64)
    index /= np.linalg.norm(index, axis=1, keepdims=True)
    checked, shared = 0, set(old.get_vocab(with_added_tokens=True)) & set(new.get_vocab(with_added_tokens=True))
    for nid in np.where(fix["covered"])[0]:
        q = embed([new.decode([int(nid)], skip_special_tokens=False)])[0]
        sims = np.sort(index @ (q / np.linalg.norm(q)))[::-1]
        if new.id_to_token(int(nid)) not in shared and np.isclose(sims[2], sims[3], atol=1e-9):
            continue
        np.testing.assert_allclose(ours[nid], fix["target"][nid], atol=1e-5, rtol=0, err_msg=new.id_to_token(int(nid)))
        checked += 1
    assert checked >= 300, checked
    again = tokenadapt_embeddings(old, new, matrix, embed, generator=torch.Generator().manual_seed(0))
    assert np.array_equal(ours, again)  # random rows come from the caller's generator


def test_transfer_tokenizer_with_tokenadapt(inputs):
    src_tok, tgt_tok, _, _ = inputs
    aux = T.HashVectors([], dim=8, seed=3)
    lm = T.seeded_llama({"vocab_size": src_tok.get_vocab_size(), "hidden_size": 16, "intermediate_size": 32,
                         "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 1, "head_dim": 8,
                         "tie_word_embeddings": True})
    zoo.transfer_tokenizer(lm, tgt_tok, old_tokenizer=src_tok, method="tokenadapt",
                           embed=lambda ts: np.stack([aux.get_word_vector(t) for t in ts]), generator=torch.Generator().manual_seed(1))
    assert lm.get_input_embeddings().weight.shape[0] == tgt_tok.get_vocab_size()
    assert lm.get_output_embeddings().weight is lm.get_input_embeddings().weight  # still tied
    with pytest.raises(InputError, match="needs embed="):
        zoo.transfer_tokenizer(lm, tgt_tok, old_tokenizer=src_tok, method="tokenadapt")
