"""`zoo reconstruct --model snac... [--codebooks 1,2,3]` on release files: one wav, or one per
number of levels (each decoding only the first q levels)."""

from __future__ import annotations

import json

import torch

from .conftest import FIXTURES, config_of


def _release(tmp_path):
    from zoo_plugins.snac.testing import parity_state_dict

    from zoo.testing.weights import load_manifest

    folder = tmp_path / "release"
    folder.mkdir()
    torch.save(parity_state_dict(load_manifest(FIXTURES / "manifest_plain.json")), folder / "pytorch_model.bin")
    (folder / "config.json").write_text(json.dumps(config_of("plain")))
    return folder


def test_cli_reconstruct_writes_wav_and_one_file_per_level_count(tmp_path):
    from click.testing import CliRunner

    import zoo_plugins.snac
    from zoo.cli import cli
    from zoo.hookspecs import hookimpl
    from zoo.media.audio import load_audio, save_audio
    from zoo.testing.plugins import isolated_registry
    from zoo_plugins.snac.testing import test_signal

    class Cards:
        @hookimpl
        def register_cards(self, register):
            register({"name": "snac_test.plain", "kind": "tokenizer", "plugin": "snac", "modality": "audio",
                      "files": ["pytorch_model.bin", "config.json"], "hub_repo": "example/snac_test",
                      "license": {"code": "MIT"}, "config": config_of("plain")})

    weights = _release(tmp_path)
    wav = tmp_path / "in.wav"
    save_audio(wav, test_signal(7000, seed=4, sample_rate=16000)[0], 16000)
    out = tmp_path / "out.wav"
    with isolated_registry(zoo_plugins.snac, Cards()):
        base = ["reconstruct", str(wav), "--model", "snac_test.plain", "--weights", str(weights), "--out", str(out)]
        full = CliRunner().invoke(cli, base)
        levels = CliRunner().invoke(cli, base + ["--codebooks", "1,3"])
        too_many = CliRunner().invoke(cli, base + ["--codebooks", "4"])
        not_a_number = CliRunner().invoke(cli, base + ["--codebooks", "x"])
    assert full.exit_code == 0, full.output
    assert levels.exit_code == 0, levels.output
    assert "1 of 3 codebook levels" in levels.output
    audio, sr = load_audio(out)
    q1, _ = load_audio(tmp_path / "out_q1.wav")
    q3, _ = load_audio(tmp_path / "out_q3.wav")
    assert sr == 16000 and audio.shape[-1] == q1.shape[-1] == 7000
    assert torch.allclose(q3, audio, atol=1e-4) and not torch.allclose(q1, audio, atol=1e-3)
    assert too_many.exit_code != 0 and "use 1..3" in too_many.output
    assert not_a_number.exit_code != 0 and "level counts" in not_a_number.output
