"""The whole OuteTTS path from release-shaped files, offline: a stand-in ``tokenizer.json``
(OuteTTS-0.1's special tokens and ``<|code|>`` format, built with ``tokenizers``), a tiny random
Llama LM and a tiny random WavTokenizer, served by zoo.testing's hub stand-in under the cards'
repo names -> ``zoo generate --model outetts "..." --out x.wav``.

What this verifies: text -> prompt -> token ids (through a real ``tokenizers`` file), the LM
loaded by the builder from safetensors + config.json, codes picked out of the LM tokens, the
WavTokenizer dependency downloaded and decoding, and the wav written at 24 kHz. What it does not:
the real vocabulary's ids and the real weights (the hub is unreachable).
"""

from __future__ import annotations

import re

import pytest
import torch

pytest.importorskip("tokenizers")

LM_REPO = "OuteAI/OuteTTS-0.1-350M"
CODEC_REPO = "novateur/WavTokenizer-large-speech-75token"
CODEC_FILE = "wavtokenizer_large_speech_320_v2.ckpt"
TINY_CODEC = dict(n_filters=4, dimension=16, codebook_size=4096, backbone_dim=32, intermediate_dim=48, num_layers=1)


@pytest.fixture
def release_hub(hub_stand_in):
    """The hub stand-in serving a stand-in OuteTTS release and a tiny WavTokenizer (zoo layout)."""
    import zoo_plugins.outetts
    from zoo.catalogue import load_catalogue
    from zoo.testing.plugins import temporary_plugin
    from zoo_plugins.outetts.testing import write_standin_release
    from zoo_plugins.wavtokenizer.config import WavTokenizerConfig
    from zoo_plugins.wavtokenizer.model import WavTokenizer

    write_standin_release(hub_stand_in.root / LM_REPO)
    card = next(c for c in load_catalogue() if c.name == "outetts.v0_1_350m")
    if card.revision:
        hub_stand_in.extra_revisions[LM_REPO] = {card.revision}
    torch.manual_seed(0)
    codec = WavTokenizer(WavTokenizerConfig(**TINY_CODEC)).eval()
    (hub_stand_in.root / CODEC_REPO).mkdir(parents=True)
    torch.save({"state_dict": codec.state_dict()}, hub_stand_in.root / CODEC_REPO / CODEC_FILE)
    with temporary_plugin(zoo_plugins.outetts, "outetts-test"):
        yield hub_stand_in


def test_loaded_tokenizer_round_trips_the_prompt(release_hub):
    import zoo
    from zoo_plugins.outetts.prompt import SPECIAL, completion_prompt

    model = zoo.load("outetts")
    tok = model.text_tokenizer
    assert tok is not None, "the builder attaches tokenizer.json"
    ids = tok.encode_prompt("Hello, world 2!")
    assert ids[0] == model.cfg.bos_token_id == 1
    assert tok.backend.decode(ids, skip_special_tokens=False) == completion_prompt("Hello, world 2!")
    for s in SPECIAL.values():  # every special token and audio code is one id
        assert len(tok._encode(s)) == 1, s
    assert len(set(tok.code_to_token)) == 4100 and max(tok.code_to_token) < model.cfg.vocab_size


def test_zoo_generate_writes_a_wav_from_the_release_files(release_hub, tmp_path):
    pytest.importorskip("soundfile")
    import zoo
    from click.testing import CliRunner
    from zoo.cli import cli
    from zoo.generation_commands import add_commands
    from zoo.media.audio import load_audio

    add_commands(cli)
    out = tmp_path / "hello.wav"
    result = CliRunner().invoke(cli, ["generate", "--model", "outetts", "Hello world", "--out", str(out), "--max-new-tokens", "24"])
    assert result.exit_code == 0, result.output
    n_codes = int(re.search(r"\((\d+) tokens\)", result.output).group(1))
    wav, sr = load_audio(out)
    assert sr == 24000 and wav.shape[-1] == 320 * n_codes
    # the same run through the API: codes are exactly the LM's audio-code tokens, in order
    model = zoo.load("outetts")
    gen = model.generate("Hello world", seed=0, max_new_tokens=24, decode=False)
    lm = gen.meta["lm_tokens"][0, : int(gen.meta["lm_lengths"][0])].tolist()
    text = model.text_tokenizer.backend.decode(lm, skip_special_tokens=False)
    assert gen.tokens.ids[0].tolist() == [int(c) for c in re.findall(r"<\|(\d+)\|>", text) if int(c) < 4096]
    assert int(gen.tokens.lengths[0]) == n_codes
