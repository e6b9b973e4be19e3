"""SpeechTokenizer through zoo: chunked long audio equals one pass, ragged batches, release
formats (plain state dict, trainer package, AnyGPT's ckpt.dev + config.json), CLI, bad input."""

from __future__ import annotations

import json

import pytest
import torch

from zoo.errors import ConfigError, InputError, TokenError

from .conftest import build_parity_model, config_of, release_state_dict


@pytest.fixture(scope="module")
def model():
    return build_parity_model("elu")


def _signal(n, seed=3, batch=1):
    from zoo_plugins.speechtokenizer.testing import test_signal

    return test_signal(n, seed=seed, batch=batch)


def test_chunked_equals_one_pass(model):
    wav = _signal(16000 * 3 + 123)
    one = model.encode_codes(wav, chunk_seconds=0)
    chunked = model.encode_codes(wav, chunk_seconds=0.25)
    assert torch.equal(one, chunked)
    full = model.decode_codes(one, chunk_seconds=0)
    parts = model.decode_codes(one, chunk_seconds=0.25)
    torch.testing.assert_close(parts, full, atol=1e-5, rtol=0)


@pytest.mark.parametrize("chunk_seconds", [0.25, 0.3, 1.0])
def test_chunked_bidirectional_lstm_equals_one_pass(model, chunk_seconds):
    """The encoder's bidirectional LSTM over chunks (forward in order, backward in reverse, state
    carried) and the last conv + quantizer per chunk: latents within 1e-6 of one pass, ids equal."""
    assert model.encoder.model[model.encoder.n_front].bidirectional
    wav = _signal(16000 * 2 + 77, batch=2)
    one = model.latents(wav, chunk_seconds=0)
    chunked = model.latents(wav, chunk_seconds=chunk_seconds)
    assert chunked.shape == one.shape
    torch.testing.assert_close(chunked, one, atol=1e-6, rtol=0)
    torch.testing.assert_close(model.lstm_output(wav, chunk_seconds=chunk_seconds), model.lstm_output(wav, chunk_seconds=0),
                               atol=1e-6, rtol=0)
    assert torch.equal(model.encode_codes(wav, chunk_seconds=chunk_seconds), model.encode_codes(wav, chunk_seconds=0))


def test_reconstruct_is_decode_of_encode_trimmed(model):
    """From zoo.audio_codec.AudioCodecMixin: ``codebooks=q`` encodes the first q levels (``n_q``)."""
    a, b = _signal(5000, seed=1)[0], _signal(2100, seed=2)[0]
    rec = model.reconstruct([a, b], 16000, codebooks=2)
    assert [r.shape[-1] for r in rec] == [5000, 2100]
    full = model.decode(model.encode(b, 16000).codebooks(2))
    torch.testing.assert_close(rec[1], full[0][..., :2100], atol=1e-6, rtol=0)
    assert model.reconstruct(a, 16000).shape == (1, 1, 5000)


def test_ragged_batch_items_match_single_runs(model):
    a, b = _signal(5000, seed=1)[0], _signal(2100, seed=2)[0]
    tokens = model.encode([a, b], 16000)
    assert tokens.ids.shape[:2] == (2, 4) and tokens.lengths.tolist() == [16, 7]
    alone = model.encode(b, 16000)
    assert torch.equal(tokens.ids[1, :, :7], alone.ids[0])
    wavs = model.decode(tokens)
    assert [w.shape[-1] for w in wavs] == [16 * 320, 7 * 320]
    assert model.encode(a, 16000, n_q=2).ids.shape == (1, 2, 16)


@pytest.mark.parametrize("layout", ["plain", "package", "anygpt"])
def test_release_formats_load(layout, tmp_path):
    import zoo
    import zoo_plugins.speechtokenizer
    from zoo.hookspecs import hookimpl
    from zoo.testing.plugins import isolated_registry

    sd = release_state_dict("elu")
    folder = tmp_path / "release"
    folder.mkdir()
    if layout == "package":
        pkg = {"generator": sd, "discriminators": {"mpd": {"w": torch.zeros(1)}}, "optim_g": {"state": {}, "param_groups": []}}
        torch.save(pkg, folder / "Model_best_dev.pt")
        files = ["Model_best_dev.pt"]
    elif layout == "anygpt":
        torch.save(sd, folder / "ckpt.dev")
        (folder / "config.json").write_text(json.dumps({**config_of("elu"), "batch_size": 6, "learning_rate": 1e-4}))
        files = ["ckpt.dev", "config.json"]
    else:
        torch.save(sd, folder / "SpeechTokenizer.pt")
        files = ["SpeechTokenizer.pt"]

    class Cards:
        @hookimpl
        def register_cards(self, register):
            register({"name": "st_test.tiny", "kind": "tokenizer", "plugin": "speechtokenizer", "modality": "audio",
                      "files": files, "hub_repo": "example/st", "license": {"code": "Apache-2.0"},
                      "config": config_of("elu")})

    with isolated_registry(zoo_plugins.speechtokenizer, Cards()):
        loaded = zoo.load("st_test.tiny", weights=str(folder))
    ref = build_parity_model("elu")
    wav = _signal(3000)
    assert torch.equal(loaded.encode(wav, 16000).ids, ref.encode(wav, 16000).ids)


def test_config_json_unknown_key_is_refused():
    from zoo_plugins.speechtokenizer.config import config_from_json_mapping

    with pytest.raises(ConfigError, match="n_filter"):
        config_from_json_mapping({"n_filter": 3})


@pytest.mark.parametrize("bad, error", [
    (lambda m: m.encode(torch.zeros(1, 1, 100)), InputError),
    (lambda m: m.encode(torch.zeros(1, 0), 16000), InputError),
    (lambda m: m.encode(torch.full((1, 100), float("inf")), 16000), InputError),
    (lambda m: m.encode(torch.zeros(1, 100), 16000, n_q=9), InputError),
    (lambda m: m.decode(torch.zeros(1, 5, dtype=torch.long)), InputError),            # no level axis
    (lambda m: m.decode(torch.zeros(1, 5, 3, dtype=torch.long)), InputError),         # more levels than n_q
    (lambda m: m.decode(torch.full((1, 2, 3), 64)), TokenError),                      # id out of range
    (lambda m: m.decode(torch.zeros(1, 2, 3)), TypeError),                            # float ids
])
def test_bad_input(bad, error, model):
    with pytest.raises(error):
        bad(model)


def test_cli_codebooks(tmp_path):
    from click.testing import CliRunner

    import zoo_plugins.speechtokenizer
    from zoo.cli import cli
    from zoo.hookspecs import hookimpl
    from zoo.media.audio import save_audio
    from zoo.testing.plugins import isolated_registry

    folder = tmp_path / "release"
    folder.mkdir()
    torch.save(release_state_dict("elu"), folder / "SpeechTokenizer.pt")

    class Cards:
        @hookimpl
        def register_cards(self, register):
            register({"name": "st_test.cli", "kind": "tokenizer", "plugin": "speechtokenizer", "modality": "audio",
                      "files": ["SpeechTokenizer.pt"], "hub_repo": "example/st", "license": {"code": "Apache-2.0"},
                      "config": config_of("elu")})

    wav = tmp_path / "in.wav"
    save_audio(wav, _signal(24000, seed=9)[0], 24000)  # resampled to 16 kHz by zoo
    out = tmp_path / "rec.flac"
    with isolated_registry(zoo_plugins.speechtokenizer, Cards()):
        res = CliRunner().invoke(cli, ["reconstruct", str(wav), "--model", "st_test.cli", "--weights", str(folder / "SpeechTokenizer.pt"),
                                       "--out", str(out), "--codebooks", "1,2,4"])
    assert res.exit_code == 0, res.output
    assert all((tmp_path / f"rec_q{q}.flac").exists() for q in (1, 2, 4))
