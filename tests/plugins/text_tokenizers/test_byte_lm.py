"""Exact byte-level probabilities (zoo.text.byte_lm) on tiny random LMs with small BPE,
superword BPE and SentencePiece tokenizers trained here: brute force over every token sequence,
exact next-byte sums under an LM that puts no mass on invalid encodings, the chain rule,
prompt-boundary repair, ensembles and generation."""

from __future__ import annotations

import math

import pytest
import torch

from zoo.errors import InputError
from zoo.text.byte_lm import END, ByteEnsemble, ByteLM, fixed_tokenizer
from zoo.text.tokenizer import TextTokenizer
from zoo_plugins.text_tokenizers.testing import kl3m_like, sentencepiece_model, superbpe_like

pytest.importorskip("tokenizers")


def tiny_llama(vocab: int, seed: int, bos: int, eos: int):
    from zoo.compat.torchvision import ensure_torchvision

    ensure_torchvision()
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(vocab_size=vocab, hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                      num_key_value_heads=1, head_dim=8, bos_token_id=bos, eos_token_id=eos, max_position_embeddings=64)
    torch.manual_seed(seed)
    lm = LlamaForCausalLM(cfg).eval()
    with torch.no_grad():
        lm.lm_head.weight.normal_(0, 0.3)  # spread-out but input-dependent next-token distributions
    return lm


class ValidOnly(torch.nn.Module):
    """Wraps an LM so that it gives no mass to next tokens that make the encoding invalid (the
    paper's assumption made exact): invalid tokens and non-EOS specials get -inf."""

    def __init__(self, lm, byte_lm_for_validity: ByteLM):
        super().__init__()
        self.lm, self.v = lm, byte_lm_for_validity

    def forward(self, input_ids, attention_mask):
        logits = self.lm(input_ids=input_ids, attention_mask=attention_mask).logits.clone()
        for b in range(input_ids.shape[0]):
            n = int(attention_mask[b].sum())
            seq = input_ids[b, 1:n].tolist()
            for j in range(n):
                mask = self.v._valid_next(tuple(seq[:j]), logits.shape[-1])
                mask[self.v.eos_id] = True
                logits[b, j, ~mask] = -math.inf
        return logits


@pytest.fixture(scope="module")
def setups(tmp_path_factory):
    out = {}
    for name, tok in [("bpe", kl3m_like(290)), ("superbpe", superbpe_like(300))]:
        text = TextTokenizer(tok)
        bos, eos = tok.token_to_id("<|start|>"), tok.token_to_id("<|end|>")
        out[name] = (text, tiny_llama(text.vocab_size, 0, bos, eos), bos, eos)
    sp = TextTokenizer.from_file(sentencepiece_model(tmp_path_factory.mktemp("sp") / "tokenizer.model", vocab_size=330))
    out["sentencepiece"] = (sp, tiny_llama(sp.vocab_size, 1, sp.bos_id, sp.eos_id), sp.bos_id, sp.eos_id)
    return out


def _logp_direct(lm, bos: int, ids: tuple[int, ...]) -> float:
    """log P(ids) by one plain forward (independent of ByteLM's batching and caching)."""
    with torch.no_grad():
        logits = lm(input_ids=torch.tensor([(bos, *ids)]), attention_mask=torch.ones(1, len(ids) + 1, dtype=torch.long)).logits
    logp = torch.log_softmax(logits[0].double(), -1)
    return float(sum(logp[j, t] for j, t in enumerate(ids)))


def _brute_force(blm: ByteLM, lm, bos: int, text: str) -> float:
    """log of the sum of P(t) over EVERY valid token sequence t whose last token alone reaches
    the end of the text (no use of the prefix-closure argument the fast algorithm relies on)."""
    target = blm.prefix + text.encode("utf-8")
    found = []

    def walk(ids: tuple[int, ...], spelled: bytes) -> None:
        for t, piece in enumerate(blm.table):
            if not piece:
                continue
            full = spelled + piece
            if len(full) < len(target):
                if target.startswith(full):
                    walk((*ids, t), full)
            elif full.startswith(target) and blm.is_valid((*ids, t)):
                found.append((*ids, t))

    walk((), b"")
    assert found, f"no valid encoding reaches {text!r}"
    return float(torch.logsumexp(torch.tensor([_logp_direct(lm, bos, ids) for ids in found], dtype=torch.float64), 0))


CASES = [("bpe", "the "), ("bpe", "of th"), ("bpe", "café"), ("bpe", "Co"), ("bpe", "jà v"), ("bpe", "d\u00e9j\u00e0"),
         ("superbpe", "of the "), ("superbpe", "the la"),
         ("sentencepiece", "the q"), ("sentencepiece", "of th"), ("sentencepiece", "é")]


@pytest.mark.parametrize("setup,text", CASES)
def test_byte_logprob_equals_the_brute_force_sum_over_valid_encodings(setups, setup, text):
    tok, lm, bos, eos = setups[setup]
    blm = ByteLM(lm, tok, bos_id=bos, eos_id=eos)
    assert len(blm.covers(text)) >= 1
    assert blm.byte_logprob(text) == pytest.approx(_brute_force(blm, lm, bos, text), abs=1e-6)


@pytest.mark.parametrize("setup", ["bpe", "superbpe", "sentencepiece"])
def test_next_byte_probabilities_are_exact_when_the_lm_gives_no_mass_to_invalid_encodings(setups, setup):
    tok, lm, bos, eos = setups[setup]
    probe = ByteLM(lm, tok, bos_id=bos, eos_id=eos)
    blm = ByteLM(ValidOnly(lm, probe), tok, bos_id=bos, eos_id=eos)
    for prefix in ["", "the", "of t", "déjà", "déj".encode() + b"\xc3"]:  # the last ends inside a character
        logp, (mass, _) = blm.next_byte_logprobs(prefix, return_mass=True)
        assert logp.shape == (257,) and float(logp.exp().sum()) == pytest.approx(1.0, abs=1e-12)
        assert mass == pytest.approx(1.0, abs=1e-6)  # unnormalised: P(prefix + any byte or END) == P(prefix)
    text = "of the"  # chain rule: P(x) = prod_i P(x_i | x_<i), byte by byte
    chain = sum(float(blm.next_byte_logprobs(text[:i])[ord(text[i])]) for i in range(len(text)))
    assert chain == pytest.approx(blm.byte_logprob(text), abs=1e-6)
    # P(x, then EOS) is the END entry after x
    assert float(blm.next_byte_logprobs(text)[END]) == pytest.approx(blm.byte_logprob(text, end=True) - blm.byte_logprob(text), abs=1e-6)


def test_byte_level_decoding_repairs_a_prompt_boundary():
    """An LM that only ever continues 'http' with the token '://' : token-level, the prompt
    'http:' is [http, :] and the model has never seen ':' follow 'http'; byte-level, the cover
    [http, ://] makes '/' the next byte with certainty."""
    tok = fixed_tokenizer(["h", "t", "p", ":", "/", "ht", "tp", "http", "//", "://"], bos="<s>")
    ids = {t: tok.token_to_id(t) for t in ["http", "://", ":", "<s>"]}
    vocab = tok.get_vocab_size()

    class Table(torch.nn.Module):
        def forward(self, input_ids, attention_mask):
            logits = torch.zeros(*input_ids.shape, vocab)
            logits[input_ids == ids["<s>"], ids["http"]] = 30.0
            logits[input_ids == ids["http"], ids["://"]] = 30.0
            return logits

    blm = ByteLM(Table(), tok, bos_id=ids["<s>"])
    naive = torch.softmax(Table()(torch.tensor([[ids["<s>"], ids["http"], ids[":"]]]), None)[0, -1], -1)
    assert float(naive.max()) < 0.2  # token level: no idea what follows ':'
    assert float(blm.next_byte_logprobs("http:").exp()[ord("/")]) > 0.999
    assert blm.generate("http:", max_new_bytes=2) == b"//"


def test_ensemble_of_two_tokenizers_and_sampled_generation(setups):
    (t1, lm1, b1, e1), (t2, lm2, b2, e2) = setups["bpe"], setups["sentencepiece"]
    a, b = ByteLM(lm1, t1, bos_id=b1, eos_id=e1), ByteLM(lm2, t2, bos_id=b2, eos_id=e2)
    for mode in ("mixture", "product"):
        ens = ByteEnsemble([a, b], weights=[0.3, 0.7], mode=mode)
        lp = ens.next_byte_logprobs("the")
        assert float(lp.exp().sum()) == pytest.approx(1.0, abs=1e-9)
    mix = ByteEnsemble([a, b], weights=[0.3, 0.7]).next_byte_logprobs("the").exp()
    assert torch.allclose(mix, 0.3 * a.next_byte_logprobs("the").exp() + 0.7 * b.next_byte_logprobs("the").exp())
    ens = ByteEnsemble([a, b])
    one = ens.generate("the", 4, temperature=1.0, generator=torch.Generator().manual_seed(3))
    assert one == ens.generate("the", 4, temperature=1.0, generator=torch.Generator().manual_seed(3))  # its own RNG
    assert ens.generate("the", 3) == ens.generate("the", 3)  # greedy


def test_bad_input(setups):
    tok, lm, bos, eos = setups["bpe"]
    blm = ByteLM(lm, tok, bos_id=bos, eos_id=eos)
    ab = ByteLM(lm, fixed_tokenizer(["a", "b"]), bos_id=bos)
    with pytest.raises(InputError, match="probability 0"):
        ab.next_byte_logprobs("abc")  # a character the vocabulary cannot spell
    assert ab.byte_logprob("abc") == -math.inf
    with pytest.raises(InputError, match="empty"):
        blm.bits_per_byte("")
    with pytest.raises(InputError, match="weights"):
        ByteEnsemble([blm], weights=[-1.0])
    with pytest.raises(InputError, match="bos_id"):
        ByteLM(lambda **kw: None, fixed_tokenizer(["a"], bos="<x>"))


def test_next_byte_probabilities_agree_with_the_official_code_on_a_sentencepiece_lm():
    """Recorded from facebookresearch/Exact-Byte-Level-Probabilities-from-Tokenized-LMs (run from
    /tmp as an oracle, scripts/record_byte_lm_parity.py) on a seeded tiny Llama and a SentencePiece
    model trained by zoo_plugins.text_tokenizers.testing. The reference spells a space as U+2581
    (first byte 0xE2) and gives control tokens mass; compared over bytes, renormalised."""
    import json
    from pathlib import Path

    from zoo_plugins.text_tokenizers.testing import seeded_llama

    folder = Path(__file__).parents[2] / "fixtures" / "text_tokenizers"
    fix = json.loads((folder / "byte_lm_parity.json").read_text())
    blm = ByteLM(seeded_llama(fix["lm_config"]), TextTokenizer.from_file(folder / fix["tokenizer"]))
    for case in fix["cases"]:
        ref = torch.tensor(case["probs"], dtype=torch.float64)[:256]
        ours = blm.next_byte_logprobs(case["prompt"]).exp()[:256].clone()
        ours[0xE2] += ours[0x20]
        ours[0x20] = 0
        assert torch.allclose(ours / ours.sum(), ref / ref.sum(), atol=1e-6, rtol=0), case["prompt"]


@pytest.mark.parametrize("setup", ["bpe", "superbpe", "sentencepiece"])
def test_generation_with_the_kv_cache_equals_generation_without_it(setups, setup):
    """The KV cache (and the incremental cover update it comes with) changes the cost, not the
    bytes: greedy and sampled generations are byte-for-byte those of a ByteLM that runs every
    sequence from its start, and each step's distribution agrees to float rounding."""
    tok, lm, bos, eos = setups[setup]
    fast, plain = ByteLM(lm, tok, bos_id=bos, eos_id=eos), ByteLM(lm, tok, bos_id=bos, eos_id=eos, kv_cache=False)
    assert fast._kv is not None and plain._kv is None
    for prompt in ["the q", "of th", "d\u00e9j"]:
        out = fast.generate(prompt, 12, stop_at_end=False)
        assert out == plain.generate(prompt, 12, stop_at_end=False)
        data = prompt.encode() + out
        for i in range(len(prompt.encode()), len(data) + 1):  # every step's distribution, both ways
            # float32 logits of a shorter matmul: ~1e-8 apart; a wrong position or cache row would be far off
            assert torch.allclose(fast.next_byte_logprobs(data[:i]).exp(), plain.next_byte_logprobs(data[:i]).exp(), atol=1e-6, rtol=0)
    seeded = dict(temperature=1.0, stop_at_end=False)
    assert fast.generate("the", 12, generator=torch.Generator().manual_seed(5), **seeded) == \
        plain.generate("the", 12, generator=torch.Generator().manual_seed(5), **seeded)
    assert fast.lm_tokens < plain.lm_tokens  # the cache ran fewer token positions through the LM


@pytest.mark.parametrize("setup", ["bpe", "sentencepiece"])
def test_covers_updated_byte_by_byte_equal_the_search_from_scratch(setups, setup):
    """Stepping through a text one byte at a time (the incremental update) gives the covers, in the
    same order, and the next-byte distribution of a fresh ByteLM asked about each prefix alone (to
    float32 rounding), also where the text ends inside a character."""
    tok, lm, bos, eos = setups[setup]
    stepper = ByteLM(lm, tok, bos_id=bos, eos_id=eos, kv_cache=False)  # the cover update alone (the cache: above)
    text = "of th\u00e9 caf\u00e9 d\u00e9j\u00e0".encode()
    for i in range(len(text) + 1):
        fresh = ByteLM(lm, tok, bos_id=bos, eos_id=eos, kv_cache=False)
        got = stepper.next_byte_logprobs(text[:i])
        assert stepper._last_covers[1] == fresh.covers(text[:i])
        # the two run the float32 LM on differently batched covers, whose matmul kernels may round
        # differently (measured: 1.3e-7 relative, one float32 ulp, on some CPUs); a wrong or missing
        # cover would be off by far more
        assert torch.allclose(got.exp(), fresh.next_byte_logprobs(text[:i]).exp(), atol=1e-12, rtol=1e-6)


@pytest.mark.parametrize("setup", ["bpe", "superbpe", "sentencepiece"])
def test_batched_validity_mask_equals_the_per_token_definition(setups, setup):
    """_valid_next batches the tokenizer calls (and the completions of an unfinished character in
    rounds); each entry is still valid_as(bytes + token, ids + (token,)) asked alone."""
    tok, lm, bos, eos = setups[setup]
    for prefix in ["", "the", "of t", "d\u00e9j\u00e0 ", "déj".encode() + b"\xc3"]:
        batched = ByteLM(lm, tok, bos_id=bos, eos_id=eos)
        data = batched.prefix + (prefix if isinstance(prefix, bytes) else prefix.encode())
        for ids, rest in batched.covers(data[len(batched.prefix):]):
            if rest:
                continue
            size = len(batched.table)
            mask = batched._valid_next(ids, size)
            alone = ByteLM(lm, tok, bos_id=bos, eos_id=eos)  # fresh caches: one tokenizer call per question
            want = [bool(alone.table[t]) and alone.valid_as(data + alone.table[t], (*ids, t)) for t in range(size)]
            assert mask.tolist() == want, prefix


def test_a_cache_that_cannot_be_cropped_is_rebuilt(setups, monkeypatch):
    """Caches without crop (sliding-window layers, state-space models) are rebuilt from the start
    of the sequence: the same bytes, every position run again."""
    from transformers import DynamicCache

    tok, lm, bos, eos = setups["bpe"]
    want = ByteLM(lm, tok, bos_id=bos, eos_id=eos, kv_cache=False).generate("of th", 8, stop_at_end=False)

    refused = []

    def refuse(self, max_length):
        refused.append(max_length)
        raise ValueError("cannot crop")

    monkeypatch.setattr(DynamicCache, "crop", refuse)
    blm = ByteLM(lm, tok, bos_id=bos, eos_id=eos)
    assert blm.generate("of th", 8, stop_at_end=False) == want
    assert refused  # the encoding changed behind the last token at least once


@pytest.fixture(scope="module")
def sp_with_a_grave(setups, tmp_path_factory):
    """A SentencePiece model (byte fallback) with "À" as a piece: the lead byte 0xC3 as a token
    is valid only through a completion other than the first (0x80 makes "À", one piece)."""
    import io

    import sentencepiece as spm

    from zoo_plugins.text_tokenizers.testing import CORPUS

    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(CORPUS * 4), model_writer=buf, vocab_size=330, model_type="unigram",
                                   byte_fallback=True, character_coverage=1.0, minloglevel=2, hard_vocab_limit=False,
                                   normalization_rule_name="identity", remove_extra_whitespaces=False,
                                   user_defined_symbols=["À"])
    path = tmp_path_factory.mktemp("sp_a") / "tokenizer.model"
    path.write_bytes(buf.getvalue())
    sp = TextTokenizer.from_file(path)
    return sp, tiny_llama(sp.vocab_size, 2, sp.bos_id, sp.eos_id), sp.bos_id, sp.eos_id


FAST_PATH_PREFIXES = ["", " ", "the", "the ", "of the ", "of  the", "the quick brown", "\n", "a\tb ", "déjà", "déjà ",
                      "d\u00e9j\u00e0 vu", "\u20ac5", "日本", "the\u00a0", "1234 5", "of the la", "Section 2(",
                      "déj".encode() + b"\xc3", b"the \xe2", b"the \xe2\x82", b"\xf0\x9f", "x\U0001F600".encode()[:-1]]


@pytest.mark.parametrize("setup", ["bpe", "superbpe", "sentencepiece", "sentencepiece-À"])
@pytest.mark.parametrize("prefix", FAST_PATH_PREFIXES, ids=[repr(p)[:20] for p in FAST_PATH_PREFIXES])
def test_validity_mask_after_whole_characters_equals_the_full_check(setups, sp_with_a_grave, setup, prefix):
    """_valid_next's fast path (prefix of whole characters: one batched encoding of prefix +
    token text, compared to ids + token; completions per token) gives the mask valid_as gives
    token by token from a fresh ByteLM (the full check), for every cover encoding of the prefix
    and for a non-canonical spelling of it (one token per byte where the vocabulary has them):
    prefixes ending in whitespace, inside multi-byte characters, and superword (multi-word) tokens."""
    tok, lm, bos, eos = sp_with_a_grave if setup == "sentencepiece-À" else setups[setup]
    fast = ByteLM(lm, tok, bos_id=bos, eos_id=eos)
    data = fast.prefix + (prefix if isinstance(prefix, bytes) else prefix.encode())
    covers = fast.covers(data[len(fast.prefix):]) if data else [((), b"")]
    byte_ids = {b: t for t, b in enumerate(fast.table) if b and len(b) == 1}
    if data and all(data[k:k + 1] in byte_ids for k in range(len(data))):
        covers = [*covers, (tuple(byte_ids[data[k:k + 1]] for k in range(len(data))), b"")]
    checked = 0
    for ids, rest in covers:
        if rest:
            continue
        size = len(fast.table)
        mask = fast._valid_next(ids, size)
        alone = ByteLM(lm, tok, bos_id=bos, eos_id=eos)
        want = [bool(alone.table[t]) and alone.valid_as(data + alone.table[t], (*ids, t)) for t in range(size)]
        assert mask.tolist() == want
        checked += 1
        if setup == "superbpe" and prefix == "of the " and ids == fast.canonical(data):
            multi = [t for t in range(size) if want[t] and b" " in (fast.table[t] or b"").strip(b" ")]
            assert multi, "expected valid superword tokens after 'of the '"
        if setup == "sentencepiece-À" and ids == fast.canonical(data) and fast.prefix:
            assert want[fast.tok.canonical_ids("\u00c1")[-2]], "0xC3 is valid through the completion 0x81"
    if fast._text_of(data) is not None and any(not rest for _, rest in covers):
        assert checked
