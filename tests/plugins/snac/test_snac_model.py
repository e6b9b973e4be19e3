"""SNAC through zoo's interface: chunked long audio equals one pass, fewer levels decode, ragged
batches, generator discipline, release files (both weight-norm spellings), bad input."""

from __future__ import annotations

import pytest
import torch

from zoo.errors import CheckpointError, ConfigError, InputError, TokenError

from .conftest import build_parity_model, config_of


@pytest.fixture(scope="module")
def attn_model():
    return build_parity_model("attn")


@pytest.fixture(scope="module")
def plain_model():
    return build_parity_model("plain")


def _signal(model, seconds: float, seed: int = 3):
    from zoo_plugins.snac.testing import test_signal

    return test_signal(int(seconds * model.sample_rate), seed=seed, sample_rate=model.sample_rate)


@pytest.mark.parametrize("name", ["attn", "plain"])
def test_chunked_encode_and_decode_equal_one_pass(name, attn_model, plain_model):
    """Chunks of 0.1 s (several chunks, with context of whole attention windows) give the ids of
    one pass and, for the same generator, its audio up to float rounding."""
    model = attn_model if name == "attn" else plain_model
    wav = _signal(model, 1.3)
    one = model.encode_codes(wav, chunk_seconds=0)
    chunked = model.encode_codes(wav, chunk_seconds=0.1)
    assert model._chunk_frames(0.1) * 3 < one[-1].shape[-1]  # really several chunks
    for a, b in zip(one, chunked):
        assert torch.equal(a, b)
    full = model.decode_codes(one, generator=torch.Generator().manual_seed(5), chunk_seconds=0)
    parts = model.decode_codes(one, generator=torch.Generator().manual_seed(5), chunk_seconds=0.1)
    torch.testing.assert_close(parts, full, atol=1e-5, rtol=0)


def test_decode_fewer_levels(attn_model):
    """codebooks(q) decodes the first q levels: the quantized latents are the partial residual sum."""
    tokens = attn_model.encode(_signal(attn_model, 0.2), attn_model.sample_rate)
    outs = []
    for q in range(1, tokens.num_codebooks + 1):
        kept = tokens.codebooks(q)
        z = attn_model.quantizer.decode(kept.levels)
        expect = sum(attn_model.quantizer.quantizers[i].decode(tokens.levels[i]) for i in range(q))
        torch.testing.assert_close(z, expect)
        out = attn_model.decode(kept, generator=torch.Generator().manual_seed(0))
        assert out.shape == (1, 1, tokens.max_length * 4 * attn_model.hop)
        outs.append(out)
    assert not torch.allclose(outs[0], outs[-1])
    as_list = attn_model.decode([x for x in tokens.levels[:2]], generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(as_list, outs[1])  # SNAC's own list format, fewer levels


def test_generator_discipline(plain_model):
    codes = plain_model.encode_codes(_signal(plain_model, 0.2))
    torch.manual_seed(123)
    before = torch.get_rng_state()
    a = plain_model.decode_codes(codes, generator=torch.Generator().manual_seed(1))
    b = plain_model.decode_codes(codes, generator=torch.Generator().manual_seed(1))
    c = plain_model.decode_codes(codes, generator=torch.Generator().manual_seed(2))
    assert torch.equal(torch.get_rng_state(), before)  # the global RNG is untouched
    assert torch.equal(a, b) and not torch.equal(a, c)
    torch.testing.assert_close(plain_model.decode_codes(codes), plain_model.decode_codes(codes, generator=torch.Generator().manual_seed(0)))


def test_ragged_batch_items_match_single_runs(plain_model):
    sr = plain_model.sample_rate
    long, short = _signal(plain_model, 0.5, seed=1)[0], _signal(plain_model, 0.2, seed=2)[0]
    tokens = plain_model.encode([long, short], sr)
    assert tokens.lengths.tolist()[0] > tokens.lengths.tolist()[1]
    assert tokens.meta["num_samples"] == [long.shape[-1], short.shape[-1]]
    alone = plain_model.encode(short, sr)
    for level, ids in enumerate(alone.levels):
        n = int(alone.level_lengths[level][0])
        assert torch.equal(tokens.levels[level][1, :n], ids[0])
    wavs = plain_model.decode(tokens, generator=torch.Generator().manual_seed(0))
    assert isinstance(wavs, list) and [w.shape[-1] for w in wavs] == [int(n) * 4 * plain_model.hop for n in tokens.lengths]


def test_reconstruct_is_decode_of_encode_trimmed(plain_model):
    """From zoo.audio_codec.AudioCodecMixin: items come back at their own lengths."""
    sr = plain_model.sample_rate
    long, short = _signal(plain_model, 0.5, seed=1)[0], _signal(plain_model, 0.2, seed=2)[0]
    assert [w.shape[-1] for w in plain_model.reconstruct([long, short], sr)] == [long.shape[-1], short.shape[-1]]
    one = plain_model.reconstruct(short, sr)
    assert one.shape == (1, 1, short.shape[-1])
    assert torch.equal(one, plain_model.decode(plain_model.encode(short, sr))[..., : short.shape[-1]])
    assert plain_model.frame_rate == sr / plain_model.hop == max(plain_model.frame_rates)


def test_release_files_load_strictly_both_spellings(tmp_path):
    """config.json + pytorch_model.bin in the reference's parametrizations layout, and the same
    weights in the old weight_g/weight_v spelling, load through zoo.load(weights=...)."""
    import json

    import zoo
    from zoo_plugins.snac.testing import parity_state_dict

    from zoo.testing.weights import load_manifest

    from .conftest import FIXTURES

    sd = parity_state_dict(load_manifest(FIXTURES / "manifest_24khz.json"))
    old = {k.replace("parametrizations.weight.original0", "weight_g").replace("parametrizations.weight.original1", "weight_v"): v
           for k, v in sd.items()}
    wav = _signal(build_parity_model("plain"), 0.1)
    results = []
    for tag, state in (("new", sd), ("old", old)):
        folder = tmp_path / tag
        folder.mkdir()
        torch.save(state, folder / "pytorch_model.bin")
        (folder / "config.json").write_text(json.dumps(config_of("24khz")))
        model = zoo.load("snac.24khz", weights=str(folder))
        results.append(model.encode(wav, 16000).levels)
    for a, b in zip(*results):
        assert torch.equal(a, b)


def test_truncated_weights_and_bad_config(tmp_path):
    import json

    from zoo_plugins.snac.builder import read_config

    from zoo.nn.weight_norm import fold_weight_norms

    with pytest.raises(CheckpointError, match="decoder.model.0"):
        fold_weight_norms({"decoder.model.0.parametrizations.weight.original1": torch.ones(2, 2, 1)})
    bad = tmp_path / "config.json"
    bad.write_text(json.dumps({**config_of("24khz"), "encoder_dims": 3}))
    with pytest.raises(ConfigError, match="encoder_dims"):
        read_config(bad)
    bad.write_text("{not json")
    with pytest.raises(ConfigError):
        read_config(bad)
    bad.write_text(json.dumps({**config_of("24khz"), "vq_strides": [4, 3, 1]}))
    with pytest.raises(ConfigError, match="vq_strides"):
        read_config(bad)


@pytest.mark.parametrize("bad, error", [
    (lambda m: m.encode(torch.zeros(1, 1, 100)), InputError),                        # no sample rate
    (lambda m: m.encode(torch.zeros(1, 1, 0), 16000), InputError),                   # empty audio
    (lambda m: m.encode(torch.full((1, 100), float("nan")), 16000), InputError),     # NaN
    (lambda m: m.encode(torch.zeros(1, 1, 1, 100), 16000), InputError),              # rank 4
    (lambda m: m.encode([], 16000), InputError),                                     # empty batch
    (lambda m: m.decode([torch.full((1, 2), 32), torch.zeros(1, 4, dtype=torch.long)]), TokenError),  # id out of range
    (lambda m: m.decode([torch.zeros(1, 2, dtype=torch.long), torch.zeros(1, 3, dtype=torch.long)]), TokenError),  # wrong rate
    (lambda m: m.decode([torch.zeros(1, 2, dtype=torch.long)] * 4), TokenError),    # too many levels
    (lambda m: m.decode([torch.zeros(1, 2)]), TypeError),                            # float ids
])
def test_bad_input_is_refused_by_name(bad, error, plain_model):
    with pytest.raises(error):
        bad(plain_model)


def test_tokens_of_another_model_are_refused(plain_model):
    from zoo import MultiRateTokens

    other = MultiRateTokens(levels=[torch.zeros(1, 2, dtype=torch.long), torch.zeros(1, 4, dtype=torch.long),
                                    torch.zeros(1, 8, dtype=torch.long)], strides=(4, 2, 1), codebook_size=32,
                            tokenizer="snac.44khz")
    plain_model.card = type("Card", (), {"name": "snac.24khz"})()
    try:
        with pytest.raises(TokenError, match="made by 'snac.44khz'"):
            plain_model.decode(other)
    finally:
        del plain_model.card
