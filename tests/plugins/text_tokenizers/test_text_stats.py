"""zoo text-stats: tokenizer statistics on files (values checked by hand), JSON and plot, and
with --lm token-level vs exact byte-level bits per byte."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from zoo.cli import cli
from zoo.errors import InputError
from zoo.text.stats import read_texts, tokenizer_stats
from zoo.text.tokenizer import TextTokenizer
from zoo_plugins.text_tokenizers.testing import CORPUS, kl3m_like, superbpe_like, write_release

pytest.importorskip("tokenizers")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("text")
    (root / "docs").mkdir()
    (root / "docs" / "a.txt").write_text("\n".join(CORPUS[:4]) + "\n", encoding="utf-8")
    (root / "docs" / "b.md").write_text("\n".join(CORPUS[4:]) + "\n", encoding="utf-8")
    write_release(root / "bpe", kl3m_like(300))
    write_release(root / "super", superbpe_like(400))
    return root


def test_stats_are_the_counts_they_claim(corpus):
    tok = TextTokenizer.from_file(corpus / "super" / "tokenizer.json")
    texts = read_texts([str(corpus / "docs")], lines=True)
    assert texts == CORPUS
    row = tokenizer_stats(tok, texts, batch_size=3)
    ids = [tok.canonical_ids(t) for t in texts]
    n = sum(map(len, ids))
    assert row["tokens"] == n and row["bytes"] == sum(len(t.encode()) for t in texts)
    assert row["bytes_per_token"] == pytest.approx(row["bytes"] / n)
    assert row["tokens_per_word"] == pytest.approx(n / sum(len(t.split()) for t in texts))
    assert row["vocab_used"] == len({i for x in ids for i in x}) and row["round_trip"] == 1.0
    with pytest.raises(InputError, match="no such file"):
        read_texts([str(corpus / "missing.txt")])


def test_cli_compares_tokenizers_and_an_lm(corpus, tmp_path):
    from zoo.compat.torchvision import ensure_torchvision

    ensure_torchvision()
    from transformers import LlamaConfig, LlamaForCausalLM

    lib = kl3m_like(300)
    lm_dir = write_release(tmp_path / "tiny-lm", lib)
    cfg = LlamaConfig(vocab_size=lib.get_vocab_size(), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                      num_attention_heads=2, num_key_value_heads=1, head_dim=8, max_position_embeddings=256,
                      bos_token_id=lib.token_to_id("<|start|>"), eos_token_id=lib.token_to_id("<|end|>"))
    LlamaForCausalLM(cfg).save_pretrained(lm_dir)
    out, plot = tmp_path / "stats.json", tmp_path / "stats.png"
    result = CliRunner().invoke(cli, ["text-stats", str(corpus / "docs"), "--model",
                                      f"{corpus / 'bpe' / 'tokenizer.json'},{corpus / 'super' / 'tokenizer.json'}",
                                      "--lm", str(lm_dir), "--chunk-bytes", "48", "--out", str(out), "--plot", str(plot)])
    assert result.exit_code == 0, result.output
    assert "bytes/token" in result.output and "bits/byte (exact)" in result.output and plot.stat().st_size > 1000
    bpe, sup, lm = json.loads(out.read_text())["rows"]
    assert sup["bytes_per_token"] > bpe["bytes_per_token"]  # superword tokens compress more
    assert lm["tokens"] == bpe["tokens"]  # the LM's tokenizer is the BPE one
    assert 0 < lm["bpb_byte"] <= lm["bpb_token"]  # the canonical encoding is one cover among several


def test_cli_refuses_bad_input(corpus):
    result = CliRunner().invoke(cli, ["text-stats", str(corpus / "nothing"), "--model", "kl3m"])
    assert result.exit_code != 0 and "no such file" in result.output
    result = CliRunner().invoke(cli, ["text-stats", str(corpus / "docs"), "--model", "titok.l_32"])
    assert result.exit_code != 0 and "not a text tokenizer" in result.output
