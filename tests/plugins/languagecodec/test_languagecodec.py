"""Language-Codec: parity with jishengpeng/Languagecodec on recorded fixtures, strict loading of the
published layout, the interface (ragged batches, codebooks knob, long audio), bad input and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import zoo
from zoo.errors import CheckpointError, InputError, TokenError, ZooError
from zoo.testing.weights import load_manifest
from zoo.weights import load_state_dict_strict
from zoo_plugins.languagecodec.checkpoint import DROPPED, convert_state_dict
from zoo_plugins.languagecodec.config import LanguageCodecConfig
from zoo_plugins.languagecodec.model import LanguageCodec
from zoo_plugins.languagecodec.testing import PUBLISHED, SMALL, calibrate_codebooks, parity_state_dict
from zoo_plugins.languagecodec.testing import test_signal as make_signal

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "languagecodec"


def fixture() -> tuple[dict[str, torch.Tensor], dict]:
    from safetensors import safe_open

    with safe_open(str(FIXTURES / "small.safetensors"), framework="pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}, dict(f.metadata() or {})


def build_small(seed: int = 0) -> tuple[LanguageCodec, dict[str, torch.Tensor]]:
    """zoo model with the recorder's weights: seeded official-layout state, codebooks calibrated on zoo's encoder."""
    sd = parity_state_dict(load_manifest(FIXTURES / "manifest_small.json"), seed=seed)
    model = LanguageCodec(LanguageCodecConfig(**SMALL)).eval()
    load_state_dict_strict(model, convert_state_dict(sd), what="languagecodec small")
    sd = calibrate_codebooks(sd, lambda w: model.latents(w), seed=seed)
    load_state_dict_strict(model, convert_state_dict(sd), what="languagecodec small")
    return model, sd


@pytest.fixture(scope="module")
def small():
    return build_small()


def test_stages_match_the_reference(small):
    model, _ = small
    ref, meta = fixture()
    assert meta["reference"].startswith("jishengpeng/Languagecodec@")
    wav = ref["input"]
    latents = model.latents(wav)
    torch.testing.assert_close(latents[:, ::8], ref["latents"], atol=1e-4, rtol=0)
    codes = model.encode_codes(wav)  # [B, 8, T]
    assert ref["codes"].unique().numel() > 50, "fixture ids must depend on the input"
    assert torch.equal(codes, ref["codes"].permute(1, 0, 2))
    torch.testing.assert_close(model.features(codes), ref["features"], atol=1e-4, rtol=0)
    ref_codes = ref["codes"].permute(1, 0, 2)
    torch.testing.assert_close(model.decode_codes(ref_codes), ref["audio"], atol=1e-4, rtol=0)
    torch.testing.assert_close(model.decode_codes(ref_codes[:, :4]), ref["audio_q4"], atol=1e-4, rtol=0)


def test_media_interface_matches_the_tensor_path(small):
    model, _ = small
    ref, _ = fixture()
    tokens = model.encode(ref["input"][:, None], 24000)  # [B, C, L]
    assert tokens.ids.shape == (2, 8, ref["codes"].shape[-1]) and tokens.meta["num_samples"] == [ref["input"].shape[-1]] * 2
    assert torch.equal(tokens.ids, ref["codes"].permute(1, 0, 2))
    torch.testing.assert_close(model.decode(tokens), ref["audio"], atol=1e-4, rtol=0)
    rec = model.reconstruct(ref["input"][0], 24000)
    assert rec.shape == (1, ref["input"].shape[-1])


def test_published_manifest_loads_strictly():
    manifest = load_manifest(FIXTURES / "manifest_published.json")
    assert any(k.startswith(DROPPED[0]) for k in manifest) and DROPPED[1] in manifest
    sd = parity_state_dict(manifest)
    state = convert_state_dict(sd)
    model = LanguageCodec(LanguageCodecConfig(**PUBLISHED))
    load_state_dict_strict(model, state, what="languagecodec published")
    from zoo_plugins.languagecodec.builder import config_from_state_dict

    sniffed = config_from_state_dict(state)
    assert sniffed == {**sniffed, **PUBLISHED, "num_quantizers": 8, "codebook_size": 1024, "dimension": 128, "n_fft": 1280}


def test_release_file_loads_through_the_card(tmp_path, small):
    model, sd = small
    ckpt = tmp_path / "languagecodec_paper_8nq.ckpt"
    torch.save({"state_dict": {**sd, "discriminator.x": torch.zeros(1)}, "hyper_parameters": {"sample_rate": 24000}}, ckpt)
    loaded = zoo.load("languagecodec", weights=ckpt)
    assert loaded.config.backbone_dim == SMALL["backbone_dim"]
    wav = make_signal(4000, seed=5)
    assert torch.equal(loaded.encode(wav, 24000).ids, model.encode(wav, 24000).ids)


def test_uninitialised_codebook_and_foreign_files_are_refused(small):
    _, sd = small
    bad = dict(sd)
    bad["feature_extractor.encodec.quantizer.vq.layers.3._codebook.inited"] = torch.zeros(1)
    with pytest.raises(CheckpointError, match="never initialised"):
        convert_state_dict(bad)
    with pytest.raises(CheckpointError, match="no Language-Codec weights"):
        convert_state_dict({"model.weight": torch.zeros(1)})
    bad = dict(sd)
    bad["head.istft.window"] = torch.ones_like(sd["head.istft.window"])
    with pytest.raises(CheckpointError, match="not a Hann window"):
        convert_state_dict(bad)


def test_no_weights_says_where_to_download():
    with pytest.raises(ZooError, match="drive.google.com"):
        zoo.load("languagecodec")


def test_ragged_batch_items_equal_single_runs(small):
    model, _ = small
    x, y = make_signal(5000, seed=2), make_signal(2333, seed=3)
    batch = model.encode([x, y], 24000)
    one, two = model.encode(x, 24000), model.encode(y, 24000)
    assert batch.lengths.tolist() == [one.max_length, two.max_length] == [16, 8]
    assert torch.equal(batch.ids[0], one.ids[0]) and torch.equal(batch.ids[1, :, :8], two.ids[0])
    wavs = model.decode(batch)
    assert isinstance(wavs, list) and [w.shape[-1] for w in wavs] == [16 * 320, 8 * 320]


def test_codebooks_knob(small):
    model, _ = small
    wav = make_signal(6000, seed=4)
    full = model.encode(wav, 24000)
    for q in (1, 3, 4):
        part = model.encode(wav, 24000, codebooks=q)
        assert torch.equal(part.ids, full.ids[:, :q])
        torch.testing.assert_close(model.decode(part), model.decode(full.codebooks(q)), atol=0, rtol=0)
    assert not torch.allclose(model.decode(full.codebooks(4)), model.decode(full))


def test_long_audio_in_chunks_equals_one_pass(small):
    model, _ = small
    wav = make_signal(24000 * 3 + 77, seed=6)
    one = model.encode(wav, 24000, chunk_seconds=0)
    chunked = model.encode(wav, 24000, chunk_seconds=0.5)  # 2 s front tiles, 0.5 s LSTM chunks
    torch.testing.assert_close(model.latents(wav, chunk_seconds=0.5), model.latents(wav, chunk_seconds=0), atol=1e-5, rtol=0)
    assert torch.equal(one.ids, chunked.ids)
    torch.testing.assert_close(model.decode(one, chunk_seconds=0.4), model.decode(one, chunk_seconds=0), atol=1e-5, rtol=0)


@pytest.mark.parametrize("bad,err,match", [
    (lambda m: m.encode(make_signal(100)), InputError, "needs sample_rate"),
    (lambda m: m.encode(torch.full((1, 100), float("nan")), 24000), InputError, "NaN"),
    (lambda m: m.encode(torch.zeros(1, 0), 24000), InputError, "empty"),
    (lambda m: m.encode(torch.zeros(1, 100, dtype=torch.int16), 24000), TypeError, "float"),
    (lambda m: m.encode(make_signal(100), 24000, codebooks=9), InputError, "codebooks must be an int"),
    (lambda m: m.decode(torch.full((1, 2, 5), 1024)), TokenError, "codebook has 1024"),
    (lambda m: m.decode(torch.zeros(1, 9, 5, dtype=torch.long)), TokenError, "8 codebook levels"),
], ids=["no_rate", "nan", "empty", "int_dtype", "too_many_codebooks", "id_out_of_range", "too_many_levels"])
def test_bad_input_names_the_problem(small, bad, err, match):
    with pytest.raises(err, match=match):
        bad(small[0])


def test_zoo_reconstruct_writes_the_decoded_wav(tmp_path, small):
    from click.testing import CliRunner

    from zoo.cli import cli
    from zoo.media.audio import load_audio, save_audio

    _, sd = small
    ckpt = tmp_path / "lc.ckpt"
    torch.save({"state_dict": sd}, ckpt)
    save_audio(tmp_path / "in.wav", make_signal(16000, seed=8, sample_rate=16000), 16000)
    out = tmp_path / "out.wav"
    res = CliRunner().invoke(cli, ["reconstruct", str(tmp_path / "in.wav"), "--model", "languagecodec", "--weights", str(ckpt),
                                   "--out", str(out)])
    assert res.exit_code == 0, res.output
    wav, sr = load_audio(out)
    assert sr == 24000 and wav.shape == (1, 24000) and wav.abs().max() > 0


def test_fixture_metadata_names_the_config():
    _, meta = fixture()
    assert json.loads(meta["config"]) == SMALL
