"""OuteTTS-0.1-350M: manifest at the published config, LM + sampler parity with transformers'
LlamaForCausalLM + ``generate``, the v0.1 prompt format, and the end-to-end generate path.

Fixtures (tests/fixtures/outetts) were recorded by scripts/parity/record_generators.py.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path

import pytest
import torch

from zoo.sampling import SamplerSettings, generate_ar
from zoo.testing.weights import assert_manifest_equal, load_seeded, state_manifest

FIX = Path(__file__).resolve().parents[2] / "fixtures" / "outetts"


@lru_cache(maxsize=None)
def fixtures() -> dict:
    return json.loads((FIX / "cases.json").read_text())


@lru_cache(maxsize=None)
def tiny():
    from zoo_plugins.outetts.config import OuteTTSConfig
    from zoo_plugins.outetts.model import OuteTTS

    d = fixtures()
    model = OuteTTS(OuteTTSConfig(**d["config"])).eval()
    load_seeded(model, d["manifest"])
    return model


def test_card_config_builds_the_published_layout():
    from zoo.catalogue import load_catalogue
    from zoo.config import merge_config
    from zoo_plugins.outetts.config import OuteTTSConfig
    from zoo_plugins.outetts.model import OuteTTS

    card = next(c for c in load_catalogue() if c.name == "outetts.v0_1_350m")
    cfg = merge_config(OuteTTSConfig, [("card", card.config)])
    assert {k: getattr(cfg, k) for k in fixtures()["published_config"]} == fixtures()["published_config"]
    from zoo.weights import no_init

    with no_init(), torch.device("meta"):
        model = OuteTTS(cfg)
    published = {k: (tuple(s), t) for k, (s, t) in fixtures()["manifest_published"].items()}
    assert_manifest_equal(state_manifest(model), published, what="OuteTTS-0.1-350M")
    assert sum(s.numel() for s in model.state_dict().values()) == pytest.approx(362e6, rel=0.01)


def test_logits_equal_reference():
    d = fixtures()
    with torch.no_grad():
        logits = tiny()(torch.tensor(d["prompt"]))
    assert torch.allclose(logits[0, -1, :16], torch.tensor(d["logits_last"]), atol=1e-5)
    assert abs(float(logits.double().sum()) - d["logits_sum"]) < 1e-2


@pytest.mark.parametrize("run", fixtures()["runs"], ids=[f"s{r['setting']}-seed{r['seed']}" for r in fixtures()["runs"]])
def test_sampled_ids_equal_hf_generate(run):
    """HF generate(do_sample, temperature, repetition_penalty over the whole context, top_k),
    same seed -> the same ids from zoo's static-cache AR driver."""
    d = fixtures()
    s = d["settings"][run["setting"]]
    model = tiny()
    prompt = torch.tensor(d["prompt"])
    out = generate_ar(model.step, prompt, 24, model.new_cache(1, prompt.shape[1] + 24), generator=torch.Generator().manual_seed(run["seed"]),
                      sampler=SamplerSettings(temperature=s["temperature"], top_k=s["top_k"], repetition_penalty=s["repetition_penalty"]),
                      eos_id=d["config"]["eos_token_id"])
    assert out.ids[0].tolist() == run["ids"]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Hello, am I working?", ["hello", "am", "i", "working"]),
        ("It's 21 degrees", ["its", "twentyone", "degrees"]),
        ("  Line\nbreaks\tand   spaces ", ["line", "breaks", "and", "spaces"]),
        ("3.5 cats", ["three", "point", "five", "cats"]),
    ],
)
def test_text_normalisation(text, expected):
    from zoo_plugins.outetts.prompt import words

    assert words(text) == expected


def test_prompt_with_speaker():
    from zoo_plugins.outetts.prompt import completion_prompt

    speaker = {"text": "Hi", "words": [{"word": "hi", "duration": 0.2, "codes": [5, 17]}]}
    assert completion_prompt("you", speaker) == (
        "<|im_start|>\n<|text_start|>hi<|text_sep|>you<|text_end|>\n<|audio_start|>\n"
        "hi<|t_0.20|><|code_start|><|5|><|17|><|code_end|>"
    )


class ToyBackend:
    """A character-level stand-in for tokenizer.json: special tokens whole, audio codes <|i|>."""

    SPECIALS = ["<|im_start|>", "<|text_start|>", "<|text_end|>", "<|audio_start|>", "<|text_sep|>", "<|code_start|>", "<|code_end|>"]

    def encode(self, text: str) -> list[int]:
        ids = []
        for piece in re.split(r"(<\|[^|]+\|>)", text):
            if piece in self.SPECIALS:
                ids.append(3 + self.SPECIALS.index(piece))
            elif re.fullmatch(r"<\|\d+\|>", piece):
                ids.append(100 + int(piece[2:-2]))
            else:
                ids.extend(20 + (ord(ch) % 60) for ch in piece)
        return ids


class FakeWavTokenizer:
    def decode(self, ids):
        return ids.float().repeat_interleave(320, dim=-1)


def test_generate_end_to_end_and_batch():
    from zoo_plugins.outetts.prompt import TextTokenizer

    tok = TextTokenizer(backend=ToyBackend(), num_codes=16)
    model = tiny()
    one = model.generate("hello there", seed=0, text_tokenizer=tok, tokenizer=FakeWavTokenizer(), temperature=1.0,
                         repetition_penalty=1.0, max_new_tokens=40)
    lm = one.meta["lm_tokens"][0, : int(one.meta["lm_lengths"][0])].tolist()
    assert one.tokens.ids[0, : int(one.tokens.lengths[0])].tolist() == [t - 100 for t in lm if 100 <= t < 116]
    assert one.media.shape == (1, 1, 320 * int(one.tokens.lengths[0])) and one.meta["sample_rate"] == 24000
    both = model.generate(["hello there", "a much longer sentence here"], seed=0, text_tokenizer=tok, decode=False,
                          temperature=1.0, repetition_penalty=1.0, max_new_tokens=40)
    # left padding: the shorter prompt's row is the single run, token for token
    first = both.meta["lm_tokens"][0, : int(both.meta["lm_lengths"][0])].tolist()
    assert len(first) >= 1 and both.tokens.ids.shape[0] == 2
    with pytest.raises(ValueError, match="non-empty"):
        model.generate("", text_tokenizer=tok)
    with pytest.raises(ValueError, match="tokenizer"):
        model.generate("hi")


def test_left_padded_batch_rows_match_single_runs_greedy():
    from zoo_plugins.outetts.prompt import TextTokenizer

    tok = TextTokenizer(backend=ToyBackend(), num_codes=16)
    model = tiny()
    kw = dict(text_tokenizer=tok, decode=False, temperature=0.0, repetition_penalty=1.2, max_new_tokens=12)
    batch = model.generate(["hi", "a longer prompt"], seed=0, **kw)
    for i, text in enumerate(["hi", "a longer prompt"]):
        single = model.generate(text, seed=0, **kw)
        n = int(single.meta["lm_lengths"][0])
        assert batch.meta["lm_tokens"][i, :n].tolist() == single.meta["lm_tokens"][0, :n].tolist()


def test_config_json_mapping():
    from zoo.errors import ConfigError
    from zoo_plugins.outetts.config import from_hf_config

    tree = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 896, "head_dim": 56, "rope_scaling": None,
            "hidden_act": "silu", "attention_bias": False, "vocab_size": 67584}
    assert from_hf_config(tree) == {"hidden_size": 896, "head_dim": 56, "vocab_size": 67584}
    with pytest.raises(ConfigError, match="rope_scaling"):
        from_hf_config({**tree, "rope_scaling": {"type": "linear"}})
    with pytest.raises(ConfigError, match="sliding_window"):
        from_hf_config({**tree, "sliding_window": 4})


def test_zoo_generate_command(tmp_path, monkeypatch):
    """`zoo generate --model outetts "Hello" --out hello.wav` writes a wav."""
    pytest.importorskip("soundfile")
    import zoo
    from click.testing import CliRunner
    from zoo.catalogue import load_catalogue
    from zoo.cli import cli
    from zoo.generation_commands import add_commands
    from zoo_plugins.outetts.prompt import TextTokenizer

    model = tiny()
    card = next(c for c in load_catalogue() if c.name == "outetts.v0_1_350m")
    tok = TextTokenizer(backend=ToyBackend(), num_codes=16)

    def fake_load(name, **kw):
        assert name == "outetts"
        model.card = card
        model.text_tokenizer = tok
        return model

    monkeypatch.setattr(zoo, "load", fake_load)
    monkeypatch.setattr(type(model), "decode", lambda self, tokens, tokenizer=None: FakeWavTokenizer().decode(tokens.ids)[:, None] / 5000)
    add_commands(cli)
    out = tmp_path / "hello.wav"
    result = CliRunner().invoke(cli, ["generate", "--model", "outetts", "Hello", "--out", str(out), "--max-new-tokens", "30"])
    model.text_tokenizer = None
    assert result.exit_code == 0, result.output
    assert out.is_file() and out.stat().st_size > 44
