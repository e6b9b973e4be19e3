"""The transformers codecs (EnCodec, DAC, Mimi, X-Codec, X-Codec 2) behind zoo's interface.

Every comparison is against a direct transformers call (the family's feature extractor, then
``model.encode`` / ``model.decode``) on the same weights and inputs, on tiny random configs.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

pytest.importorskip("transformers", reason="the transformers codecs need the zoo[transformers] extra")

import zoo  # noqa: E402
from zoo.errors import CheckpointError, InputError, TokenError  # noqa: E402
from zoo_plugins.hf_codecs.specs import transformers_module  # noqa: E402
from zoo_plugins.hf_codecs.testing import TINY_RATE, tiny_hf_config  # noqa: E402

tf = transformers_module()

# (case id, card, tiny-config options, feature extractor + model.encode kwargs of the direct call)
CASES = [
    ("encodec", "encodec.24khz", {}),
    ("encodec_stereo_chunked", "encodec.48khz", {"stereo_chunked": True}),
    ("dac", "dac.44khz", {}),
    ("mimi", "mimi.24khz", {}),
    ("xcodec", "xcodec.hubert_librispeech", {}),
    ("xcodec2", "xcodec2.16khz", {}),
]
MULTI_LEVEL = [c for c in CASES if c[0] != "xcodec2"]  # X-Codec 2 has one FSQ level


def _load(card: str, **opts) -> torch.nn.Module:
    torch.manual_seed(0)
    family = card.split(".")[0]
    model = zoo.load(card, pretrained=False, hf=tiny_hf_config(family, **opts))
    with torch.no_grad():  # random init leaves some codebooks at zero: spread them so every level matters
        for name, t in model.codec.named_buffers():
            if name.endswith("codebook.embed") or name.endswith("codebook.embed_sum"):
                t.normal_(0, 0.3)
            elif name.endswith("codebook.cluster_usage"):
                t.fill_(1.0)
        if family == "xcodec2":  # FSQ: random init projects every frame to the centre code; widen it
            model.codec.fc_encoder.weight.normal_(0, 1.0)
            model.codec.quantizer.project_in.weight.normal_(0, 3.0)
    return model


def _wave(channels: int, length: int, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(channels, length, generator=g) * 0.3).clamp(-1, 1)


def _direct(model, wav: torch.Tensor, q: int):
    """What a transformers user writes: feature extractor, then encode and decode."""
    codec, fam = model.codec, model.spec.family
    fe = model.feature_extractor()
    arr = (wav[0] if wav.shape[0] == 1 else wav).numpy()
    inputs = fe(arr, sampling_rate=model.sample_rate, return_tensors="pt")
    with torch.no_grad():
        if fam == "encodec":
            bw = min(b for b in codec.config.target_bandwidths if codec.quantizer.get_num_quantizers_for_bandwidth(b) >= q)
            enc = codec.encode(inputs["input_values"], inputs["padding_mask"], bandwidth=bw)
            audio = codec.decode(enc.audio_codes, enc.audio_scales, last_frame_pad_length=enc.last_frame_pad_length).audio_values
            codes = enc.audio_codes.permute(1, 2, 0, 3).flatten(2)
        elif fam == "dac":
            codes = codec.encode(inputs["input_values"], n_quantizers=q).audio_codes
            audio = codec.decode(audio_codes=codes).audio_values[:, None]
        elif fam == "mimi":
            codes = codec.encode(inputs["input_values"], num_quantizers=q).audio_codes
            audio = codec.decode(codes).audio_values
        elif fam == "xcodec2":  # transformers' extractor needs torchaudio: zoo's drop-in (its own test below)
            enc = codec.encode(**inputs)
            codes, audio = enc.audio_codes, codec.decode(audio_codes=enc.audio_codes).audio_values
        else:  # xcodec
            bw = min(b for b in codec.config.target_bandwidths if codec.quantizer.get_num_quantizers_for_bandwidth(b) >= q)
            codes = codec.encode(inputs["input_values"], bandwidth=bw).audio_codes
            audio = codec.decode(codes).audio_values
    return codes[:, :q], audio


@pytest.mark.parametrize("case,card,opts", CASES, ids=[c[0] for c in CASES])
def test_zoo_equals_direct_transformers_call(case, card, opts):
    model = _load(card, **opts)
    wav = _wave(model.channels, 1200)
    for q in sorted({model.num_codebooks, 1}):
        ref_codes, ref_audio = _direct(model, wav, q)
        tokens = model.encode(wav, model.sample_rate, codebooks=q)
        assert tokens.ids.shape[:2] == (1, q)
        assert torch.equal(tokens.ids, ref_codes.long()), case
        audio = model.decode(tokens)
        assert audio.shape == ref_audio.shape
        torch.testing.assert_close(audio, ref_audio.float(), atol=1e-6, rtol=0)


@pytest.mark.parametrize("case,card,opts", MULTI_LEVEL, ids=[c[0] for c in MULTI_LEVEL])
def test_fewer_codebooks_are_the_first_levels_and_decode(case, card, opts):
    model = _load(card, **opts)
    wav = _wave(model.channels, 800)
    full = model.encode(wav, model.sample_rate)
    assert full.num_codebooks == model.num_codebooks > 1
    two = model.encode(wav, model.sample_rate, codebooks=2)
    assert torch.equal(two.ids, full.ids[:, :2])
    a, b = model.decode(full.codebooks(2)), model.decode(two)
    torch.testing.assert_close(a, b, atol=0, rtol=0)
    assert not torch.allclose(a, model.decode(full))  # more levels change the audio


@pytest.mark.parametrize("case,card,opts", CASES, ids=[c[0] for c in CASES])
def test_ragged_batch_items_equal_single_runs(case, card, opts):
    model = _load(card, **opts)
    x, y = _wave(model.channels, 1000, 1), _wave(model.channels, 520, 2)
    batch = model.encode([x, y], model.sample_rate)
    one, two = model.encode(x, model.sample_rate), model.encode(y, model.sample_rate)
    assert batch.lengths.tolist() == [one.max_length, two.max_length]
    assert batch.meta["num_samples"] == [1000, 520]
    assert torch.equal(batch.ids[0, :, : one.max_length], one.ids[0])
    assert torch.equal(batch.ids[1, :, : two.max_length], two.ids[0])
    wavs = model.decode(batch)
    assert isinstance(wavs, list) and len(wavs) == 2
    torch.testing.assert_close(wavs[1], model.decode(two)[0], atol=1e-6, rtol=0)
    rec = model.reconstruct([x, y], model.sample_rate)
    assert [r.shape[-1] for r in rec] == [1000, 520]


def test_other_rates_and_channels_are_converted_by_zoo_media():
    from zoo.media.audio import resample

    model = _load("dac.44khz")
    stereo = torch.stack([_wave(1, 1600, 3)[0], _wave(1, 1600, 4)[0]])  # [2, L] at 16 kHz
    tokens = model.encode(stereo, 16000)
    mono = resample(stereo.mean(0, keepdim=True), 16000, TINY_RATE)
    assert torch.equal(tokens.ids, model.encode(mono, TINY_RATE).ids)
    assert tokens.meta["sample_rate"] == TINY_RATE and tokens.meta["num_samples"] == [mono.shape[-1]]


def test_stereo_codec_duplicates_mono_input():
    model = _load("encodec.48khz", stereo_chunked=True)
    mono = _wave(1, 900)
    assert torch.equal(model.encode(mono, TINY_RATE).ids, model.encode(mono.expand(2, -1).clone(), TINY_RATE).ids)


def test_dac_windows_equal_one_pass():
    """DAC is convolutional only: windows with receptive-field margins give one pass's result."""
    model = _load("dac.44khz")
    wav = _wave(1, 40 * model.hop + 5)
    whole = model.encode(wav, TINY_RATE, chunk_seconds=0)
    windowed = model.encode(wav, TINY_RATE, chunk_seconds=6 * model.hop / TINY_RATE)  # 6-frame windows
    assert torch.equal(whole.ids, windowed.ids)
    one = model.decode(whole, chunk_seconds=0)
    win = model.decode(whole, chunk_seconds=6 * model.hop / TINY_RATE)
    torch.testing.assert_close(win, one, atol=1e-5, rtol=0)


@pytest.mark.parametrize("case,card,opts", [c for c in CASES if c[0] in ("encodec", "mimi", "xcodec2")],
                         ids=["encodec", "mimi", "xcodec2"])
def test_non_local_codecs_window_long_audio(case, card, opts):
    """Not local (LSTM / transformer): windows keep the frame count and stay bounded, results may differ at edges."""
    model = _load(card, **opts)
    wav = _wave(1, 60 * model.hop)
    whole = model.encode(wav, TINY_RATE, chunk_seconds=0)
    windowed = model.encode(wav, TINY_RATE, chunk_seconds=10 * model.hop / TINY_RATE)
    assert windowed.ids.shape == whole.ids.shape
    out = model.decode(windowed, chunk_seconds=10 * model.hop / TINY_RATE)
    assert out.shape == model.decode(windowed, chunk_seconds=0).shape


def test_weights_load_from_transformers_files(tmp_path):
    """save_pretrained files (config.json as data + model.safetensors) load strictly; outputs match from_pretrained."""
    torch.manual_seed(0)
    cfg = tf.DacConfig.from_dict(tiny_hf_config("dac"))
    ref = tf.DacModel(cfg).eval()
    ref.save_pretrained(tmp_path)
    tf.DacFeatureExtractor(sampling_rate=TINY_RATE, hop_length=8).save_pretrained(tmp_path)
    model = zoo.load("dac.44khz", weights=tmp_path)
    assert model.sample_rate == TINY_RATE and model.num_codebooks == 4
    wav = _wave(1, 640)
    with torch.no_grad():
        codes = ref.encode(wav[None], n_quantizers=4).audio_codes
    assert torch.equal(model.encode(wav, TINY_RATE).ids, codes)


def test_config_of_another_model_is_refused(tmp_path):
    torch.manual_seed(0)
    tf.DacModel(tf.DacConfig.from_dict(tiny_hf_config("dac"))).save_pretrained(tmp_path)
    tf.DacFeatureExtractor(sampling_rate=TINY_RATE, hop_length=8).save_pretrained(tmp_path)
    with pytest.raises(CheckpointError, match="model_type 'dac', not 'mimi'"):
        zoo.load("mimi.24khz", weights=tmp_path)


def test_mismatched_weights_are_refused(tmp_path):
    torch.manual_seed(0)
    tf.DacModel(tf.DacConfig.from_dict(tiny_hf_config("dac"))).save_pretrained(tmp_path)
    tf.DacFeatureExtractor(sampling_rate=TINY_RATE, hop_length=8).save_pretrained(tmp_path)
    cfg = (tmp_path / "config.json").read_text().replace('"n_codebooks": 4', '"n_codebooks": 5')
    (tmp_path / "config.json").write_text(cfg)
    with pytest.raises(CheckpointError, match="do not fit DacModel"):
        zoo.load("dac.44khz", weights=tmp_path)


@pytest.mark.parametrize("bad,err,match", [
    (lambda m: m.encode(_wave(1, 100)), InputError, "needs sample_rate"),
    (lambda m: m.encode(torch.full((1, 100), float("nan")), TINY_RATE), InputError, "NaN"),
    (lambda m: m.encode(torch.zeros(1, 0), TINY_RATE), InputError, "empty"),
    (lambda m: m.encode(torch.zeros(1, 100, dtype=torch.int16), TINY_RATE), TypeError, "float"),
    (lambda m: m.encode(_wave(1, 100), TINY_RATE, codebooks=9), InputError, "codebooks must be an int"),
    (lambda m: m.decode(torch.full((1, 2, 5), 64)), TokenError, "codebook has 64"),
    (lambda m: m.decode(torch.zeros(1, 5, 5, dtype=torch.long)), TokenError, "4 codebook levels"),
], ids=["no_rate", "nan", "empty", "int_dtype", "too_many_codebooks", "id_out_of_range", "too_many_levels"])
def test_bad_input_names_the_problem(bad, err, match):
    model = _load("dac.44khz")
    with pytest.raises(err, match=match):
        bad(model)


def test_tokens_of_another_codec_are_refused():
    dac, mimi = _load("dac.44khz"), _load("mimi.24khz")
    tokens = mimi.encode(_wave(1, 400), TINY_RATE)
    with pytest.raises(TokenError, match="made by 'mimi.24khz'"):
        dac.decode(tokens)


def test_xcodec2_decode_equals_transformers():
    model = _load("xcodec2.16khz")
    assert model.num_codebooks == 1 and model.codebook_size == 64
    codes = torch.randint(0, 64, (1, 1, 12), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ref = model.codec.decode(audio_codes=codes).audio_values
    torch.testing.assert_close(model.decode(codes), ref, atol=1e-6, rtol=0)


def _xcodec2_fixture():
    """transformers' Xcodec2FeatureExtractor outputs recorded with torchaudio (scripts/parity/record_kaldi_fbank.py)."""
    import json
    from pathlib import Path

    from safetensors import safe_open

    sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "scripts" / "parity"))
    from record_kaldi_fbank import signal

    path = Path(__file__).resolve().parents[2] / "fixtures" / "hf_codecs" / "xcodec2_features.safetensors"
    with safe_open(str(path), "pt") as f:
        meta = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    cases = {}
    for key, lengths in json.loads(meta["cases"]).items():
        clips = [signal(n, 10 + i) for i, n in enumerate(lengths)]
        assert [float(c.double().sum()) for c in clips] == pytest.approx(json.loads(meta["sums"])[key], abs=1e-6)
        cases[key] = (clips, {k.split(".", 1)[1]: v for k, v in tensors.items() if k.startswith(key + ".")})
    return cases


XCODEC2_FEATURES_ATOL = 5e-4  # normalised log-mel (unit variance); observed 1.3e-4 (float32 mel banks there, float64 here)


@pytest.mark.parametrize("key", ["single_3000", "single_6400", "single_7001", "batch"])
def test_xcodec2_features_equal_transformers_extractor(key):
    from zoo_plugins.hf_codecs.xcodec2_features import Xcodec2Features

    clips, ref = _xcodec2_fixture()[key]
    out = Xcodec2Features()(clips, sampling_rate=16000)
    assert list(out["input_values"].shape) == ref["input_values_shape"].tolist()
    assert torch.equal(out["padding_mask"].to(torch.int8), ref["padding_mask"])
    assert torch.equal(out["input_features_mask"].to(torch.int8), ref["input_features_mask"])
    torch.testing.assert_close(out["input_features"], ref["input_features"], atol=XCODEC2_FEATURES_ATOL, rtol=0)
    for i, c in enumerate(clips):  # the acoustic input is the clip, zero-padded
        assert torch.equal(out["input_values"][i, 0, : c.shape[0]], c) and not out["input_values"][i, 0, c.shape[0]:].any()


def test_xcodec2_encode_equals_transformers_on_recorded_features():
    """End to end: zoo's encode == Xcodec2Model.encode fed transformers' own (recorded) extractor output."""
    torch.manual_seed(0)
    model = zoo.load("xcodec2.16khz", pretrained=False, hf={**tiny_hf_config("xcodec2"), "sampling_rate": 16000})
    with torch.no_grad():
        model.codec.fc_encoder.weight.normal_(0, 1.0)
        model.codec.quantizer.project_in.weight.normal_(0, 3.0)
    for key, (clips, ref) in _xcodec2_fixture().items():
        values = torch.zeros(len(clips), 1, int(ref["input_values_shape"][-1]))
        for i, c in enumerate(clips):
            values[i, 0, : c.shape[0]] = c
        with torch.no_grad():
            codes = model.codec.encode(values, ref["input_features"], input_features_mask=ref["input_features_mask"].long()).audio_codes
        tokens = model.encode(clips, 16000)
        for i, n in enumerate(tokens.lengths.tolist()):
            assert len(set(tokens.ids[i, 0, :n].tolist())) > 3  # tokens depend on the input
            if key != "batch" or i == 0:  # transformers' padded batch leaks into the shorter item's frames
                assert torch.equal(tokens.ids[i, :, :n], codes[i, :, :n]), (key, i)


def test_xcodec2_transformers_extractor_when_torchaudio_loads():
    """Where torchaudio loads (not with torch 2.13), compare with transformers' extractor live."""
    try:
        fe = tf.Xcodec2FeatureExtractor()
    except ImportError as exc:
        pytest.skip(f"transformers' Xcodec2FeatureExtractor cannot run here ({str(exc).strip().splitlines()[0][:80]})")
    from zoo_plugins.hf_codecs.xcodec2_features import Xcodec2Features

    clips = [_wave(1, 5000, 3)[0], _wave(1, 2222, 4)[0]]
    ref = fe([c.numpy() for c in clips], sampling_rate=16000, return_tensors="pt")
    out = Xcodec2Features()(clips, sampling_rate=16000)
    torch.testing.assert_close(out["input_features"], ref["input_features"], atol=XCODEC2_FEATURES_ATOL, rtol=0)
    assert torch.equal(out["input_features_mask"], ref["input_features_mask"].long())


def test_xcodec2_features_refuse_another_hop_or_rate():
    from zoo.errors import ConfigError
    from zoo_plugins.hf_codecs.xcodec2_features import Xcodec2Features

    with pytest.raises(ConfigError, match="hop must be 320"):
        Xcodec2Features(hop_length=256)
    with pytest.raises(InputError, match="16000 Hz"):
        Xcodec2Features()(torch.zeros(1000), sampling_rate=24000)


def test_xcodec_wavlm_cards_build_a_wavlm_semantic_model():
    model = zoo.load("xcodec.wavlm_mls", pretrained=False, device="meta")
    assert model.codec.config.semantic_model_config.model_type == "wavlm"


def test_plugin_import_is_light():
    code = ("import sys, zoo_plugins.hf_codecs, zoo_plugins.hf_codecs.specs, zoo_plugins.hf_codecs.builder;"
            "print('torch' in sys.modules, 'transformers' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False"]


def test_feature_extractor_batches_match_single_items():
    """The direct call with a padded batch differs from single runs in the last frames; zoo's does not."""
    model = _load("dac.44khz")
    x, y = _wave(1, 1000, 1), _wave(1, 600, 2)
    fe = model.feature_extractor()
    inputs = fe([x[0].numpy(), y[0].numpy()], sampling_rate=TINY_RATE, return_tensors="pt")
    with torch.no_grad():
        padded = model.codec.encode(inputs["input_values"]).audio_codes
    single = model.encode(y, TINY_RATE).ids[0]
    assert padded.shape[-1] > single.shape[-1]  # transformers pads item 1 to item 0's length
    assert np.array_equal(model.encode([x, y], TINY_RATE).ids[1, :, : single.shape[-1]].numpy(), single.numpy())


def _save_tiny(card: str, folder, **opts) -> None:
    """A transformers-format repo of the tiny config: config.json, model.safetensors, preprocessor_config.json."""
    model = _load(card, **opts)
    model.codec.save_pretrained(folder)
    model.feature_extractor().save_pretrained(folder)


CLI_CASES = [("encodec.24khz", {}), ("encodec.48khz", {"stereo_chunked": True}), ("dac.16khz", {}), ("mimi.24khz", {}),
             ("xcodec.hubert_general", {}), ("xcodec2.16khz", {})]


@pytest.mark.parametrize("card,opts", CLI_CASES, ids=[c[0] for c in CLI_CASES])
def test_zoo_reconstruct_writes_the_decoded_wav(card, opts, tmp_path):
    from click.testing import CliRunner

    from zoo.cli import cli
    from zoo.media.audio import load_audio, save_audio

    _save_tiny(card, tmp_path / "repo", **opts)
    save_audio(tmp_path / "in.wav", _wave(1, 3000), 16000)
    out = tmp_path / "out.wav"
    res = CliRunner().invoke(cli, ["reconstruct", str(tmp_path / "in.wav"), "--model", card, "--weights", str(tmp_path / "repo"),
                                   "--out", str(out)])
    assert res.exit_code == 0, res.output
    wav, sr = load_audio(out)
    model = zoo.load(card, weights=tmp_path / "repo")
    assert sr == model.sample_rate == TINY_RATE and wav.shape == (model.channels, 1500)
    assert wav.abs().max() > 0


def test_chunked_encodec_items_keep_their_scales_when_indexed():
    """EnCodec 48 kHz Tokens carry each item's chunk scales in meta; tokens[i] keeps item i's."""
    model = _load("encodec.48khz", stereo_chunked=True)
    x, y = _wave(2, 900, 1), _wave(2, 500, 2)
    batch = model.encode([x, y], TINY_RATE)
    assert batch.lengths.tolist() == [200, 150] and len(batch.meta["encodec_chunks"]) == 2
    alone = model.decode(model.encode(y, TINY_RATE))[0]
    assert torch.equal(model.decode(batch[1])[0], alone)
    assert torch.equal(model.decode(batch)[1], alone)
    with pytest.raises(TokenError, match="whole 1 s chunks"):
        model.decode(batch[1].truncate(120))
