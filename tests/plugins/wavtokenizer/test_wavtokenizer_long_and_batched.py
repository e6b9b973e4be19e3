"""Chunked long-audio processing has no seams, and batches give per-item results.

Chunking is exact by construction (see zoo_plugins.wavtokenizer.model): chunked and one-pass
results agree to float rounding, far below anything audible (bounds below).
"""

from __future__ import annotations

import pytest
import torch

from zoo_plugins.wavtokenizer.testing import test_signal


@pytest.fixture(scope="module")
def small_model():
    from zoo_plugins.wavtokenizer.config import WavTokenizerConfig
    from zoo_plugins.wavtokenizer.model import WavTokenizer
    from zoo_plugins.wavtokenizer.testing import calibrated_codebook

    torch.manual_seed(0)
    cfg = WavTokenizerConfig(n_filters=8, dimension=32, codebook_size=256, backbone_dim=64, intermediate_dim=96, num_layers=3)
    model = WavTokenizer(cfg).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.2) if p.dim() > 1 else p.normal_(1.0 if p.shape[0] == 64 else 0.0, 0.05)
        model.quantizer.embed.copy_(calibrated_codebook(lambda w: model.latents(w), 256))
    return model


@pytest.mark.parametrize("chunk_seconds", [0.04, 0.13])
def test_chunked_encode_equals_one_pass(small_model, chunk_seconds):
    wav = test_signal(12000 + 123, seed=5)
    full = small_model.latents(wav, chunk_seconds=0)
    chunked = small_model.latents(wav, chunk_seconds=chunk_seconds)
    assert chunked.shape == full.shape
    assert (chunked - full).abs().max() <= 1e-5 * max(1.0, float(full.abs().max()))
    assert torch.equal(small_model.quantizer.encode(chunked), small_model.quantizer.encode(full))


@pytest.mark.parametrize("chunk_seconds", [0.04, 0.13])
def test_chunked_decode_equals_one_pass_no_seams(small_model, chunk_seconds):
    ids = small_model.encode_ids(test_signal(12000 + 123, seed=6))
    full = small_model.decode_ids(ids, chunk_seconds=0)
    chunked = small_model.decode_ids(ids, chunk_seconds=chunk_seconds)
    assert chunked.shape == full.shape
    # a seam would show as an error burst at chunk boundaries; the bound holds everywhere
    assert (chunked - full).abs().max() <= 1e-5 * float(full.abs().max())


def test_progress_bar_runs(small_model, capsys):
    wav = test_signal(6000, seed=7)
    small_model.latents(wav, chunk_seconds=0.1, progress=True)
    small_model.decode_ids(small_model.encode_ids(wav), chunk_seconds=0.1, progress=True)


def test_batch_of_different_lengths_equals_single_runs(small_model):
    items = [test_signal(n, seed=n) for n in (2000, 4321, 2000, 700)]
    batch = small_model.encode(items, 24000)
    assert batch.lengths.tolist() == [7, 14, 7, 3]
    assert batch.meta["num_samples"] == [2000, 4321, 2000, 700]
    alone = [small_model.encode(item, 24000) for item in items]
    for b, tok in enumerate(alone):
        assert torch.equal(batch.ids[b, : batch.lengths[b]], tok.ids[0])
    wavs = small_model.decode(batch)  # ragged -> list
    assert isinstance(wavs, list) and [w.shape[-1] for w in wavs] == [n * 320 for n in (7, 14, 7, 3)]
    for wav, tok in zip(wavs, alone):  # equal up to float rounding of batched GEMMs
        single = small_model.decode(tok)[0]
        assert (wav - single).abs().max() <= 1e-5 * single.abs().max()
    rec = small_model.reconstruct(items, 24000)
    assert [r.shape[-1] for r in rec] == [2000, 4321, 2000, 700]


def test_equal_length_rows_share_a_pass_and_match(small_model):
    x = torch.stack([test_signal(6000, seed=s) for s in (1, 2, 3)])  # [B=3, C=1, L]
    tokens = small_model.encode(x, 24000)
    assert tokens.ids.shape == (3, 19)
    for i in range(3):
        assert torch.equal(tokens.ids[i], small_model.encode(x[i], 24000).ids[0])


def test_encode_from_file_resamples_and_mixes(small_model, tmp_path):
    from zoo.media.audio import prepare_audio, save_audio

    stereo = test_signal(4410, seed=8, sample_rate=44100, channels=2)
    save_audio(tmp_path / "x.flac", stereo, 44100, subtype="PCM_24")
    from_file = small_model.encode(tmp_path / "x.flac")
    from_tensor = small_model.encode(prepare_audio(stereo, 44100, 24000), 24000)
    assert from_file.meta["num_samples"] == [2400] and from_file.lengths.tolist() == [8]
    agree = (from_file.ids == from_tensor.ids).float().mean()
    assert agree >= 0.75  # the file is 24-bit PCM: a few near-tie ids may move, most must not


@pytest.mark.parametrize("call, error, message", [
    (lambda m: m.encode(torch.zeros(1, 100)), ValueError, "sample_rate"),
    (lambda m: m.encode(torch.zeros(1, 1, 1, 100), 24000), ValueError, r"\[B, C, L\]"),
    (lambda m: m.encode(torch.zeros(1, 100, dtype=torch.int16), 24000), ValueError, "float"),
    (lambda m: m.decode(torch.tensor([[0, 1, 999]])), ValueError, "codebook has 256"),
    (lambda m: m.encode(12), TypeError, "path, a tensor"),
])
def test_interface_errors_name_the_problem(small_model, call, error, message):
    with pytest.raises(error, match=message):
        call(small_model)


def test_decode_accepts_ids_tensors_and_ragged_lists(small_model):
    a, b = torch.randint(0, 256, (5,)), torch.randint(0, 256, (1, 9))
    assert small_model.decode(a).shape == (1, 5 * 320)
    out = small_model.decode([a, b])
    assert [o.shape[-1] for o in out] == [5 * 320, 9 * 320]
    assert small_model.sample_rate == 24000 and small_model.frame_rate == 75.0


@pytest.mark.parametrize("chunk_seconds", [0, 0.13])
def test_bfloat16_decode_is_opt_in_and_close(small_model, chunk_seconds):
    """``model.to(torch.bfloat16)`` (``zoo.load(..., dtype="bf16")``) decodes; the ISTFT stays
    float32, so the output is float32 and close to the float32 model's (bf16 matmuls: ~1e-2)."""
    import copy

    ids = small_model.encode_ids(test_signal(12000 + 123, seed=6))
    want = small_model.decode_ids(ids, chunk_seconds=chunk_seconds)
    m16 = copy.deepcopy(small_model).to(torch.bfloat16)
    got = m16.decode_ids(ids, chunk_seconds=chunk_seconds)
    assert got.dtype == torch.float32 and got.shape == want.shape
    assert (got - want).abs().max() <= 0.05 * float(want.abs().max())
    assert small_model.head.window.dtype == torch.float32  # the float32 model is untouched
