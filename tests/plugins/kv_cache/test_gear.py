"""GEAR / GEAR-KCVT / KIVI: function parity with the reference, cache layers inside transformers' generate."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pytest
import torch

import zoo
from zoo.errors import ConfigError, ZooError

from .function_cases import CASES, case_inputs, case_seed, zoo_arguments

transformers = pytest.importorskip("transformers")
pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")  # transformers 5 renames past_key_values to cache

from zoo_plugins.kv_cache.cache import MIN_TRANSFORMERS, CompressionSpec, check_transformers  # noqa: E402
from zoo_plugins.kv_cache.compress import compress, quantize_groups  # noqa: E402

FIXTURE = Path(__file__).parents[2] / "fixtures" / "kv_cache" / "gear_functions.safetensors"
ROOT = Path(__file__).parents[3]


@pytest.fixture(scope="module")
def reference() -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(FIXTURE)


@pytest.mark.parametrize("name", sorted(CASES))
def test_function_parity_with_reference(name, reference):
    """zoo's compress -> dequantize equals the reference's compress_insert_function (same bases)."""
    k, v = case_inputs(name)
    k_args, v_args = zoo_arguments(name)
    g = torch.Generator().manual_seed(case_seed(name))  # the reference drew its bases after torch.manual_seed(seed)
    zk = compress(k, generator=g, **k_args).dequantize()
    zv = compress(v, generator=g, **v_args).dequantize()
    rk, rv = reference[f"{name}.keys"], reference[f"{name}.values"]
    assert zk.dtype == rk.dtype and zv.dtype == rv.dtype
    # KIVI (float32, no float16 rounding anywhere): equal; GEAR: float16 statistics/factors move ~1 float16 step
    atol = 0.0 if CASES[name]["method"] == "KIVI_V2" else 1 / 64
    torch.testing.assert_close(zk, rk, rtol=0, atol=atol)
    torch.testing.assert_close(zv, rv, rtol=0, atol=atol)
    assert not torch.equal(zk, k) and not torch.equal(zv, v)  # something was compressed


@pytest.mark.parametrize("bits", [1, 2, 3, 4, 8])
def test_codes_pack_and_unpack(bits):
    rows = torch.arange(2 ** bits, dtype=torch.float32).repeat(3, 1).view(3, 1, -1)
    q = quantize_groups(rows, bits, torch.float32)
    assert torch.equal(q.values(), rows)
    per_row = -(-rows.shape[-1] * bits // 8) if 8 % bits == 0 else rows.shape[-1]  # packed bytes per group
    assert q.codes.numel() == 3 * per_row


def test_low_rank_reduces_the_error_and_follows_the_generator():
    x = torch.randn(1, 2, 64, 32, generator=torch.Generator().manual_seed(0))
    plain = compress(x, -1, bits=2, group_size=32)
    a = compress(x, -1, bits=2, group_size=32, rank=4, generator=torch.Generator().manual_seed(1))
    b = compress(x, -1, bits=2, group_size=32, rank=4, generator=torch.Generator().manual_seed(1))
    assert (a.dequantize() - x).norm() < (plain.dequantize() - x).norm()
    assert torch.equal(a.dequantize(), b.dequantize())


def test_outliers_are_kept_exactly():
    x = torch.randn(1, 2, 16, 8, generator=torch.Generator().manual_seed(0))
    x[0, 1, 5, 3] = 50.0
    y = compress(x, -1, bits=2, group_size=16, outlier_ratio=0.25).dequantize()  # 2 per token and end
    assert y[0, 1, 5, 3] == 50.0
    assert (y - x).abs().max() < 2.0  # without the outlier the group's scale would be ~17


# ---------------------------------------------------------------- inside transformers models

def _tiny(arch: str):
    from zoo.compat.torchvision import ensure_torchvision

    ensure_torchvision()
    common = dict(vocab_size=96, hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=2, max_position_embeddings=256)
    if arch == "llama":
        cfg = transformers.LlamaConfig(**common)
        cls = transformers.LlamaForCausalLM
    elif arch == "mistral":
        cfg = transformers.MistralConfig(sliding_window=None, **common)
        cls = transformers.MistralForCausalLM
    else:
        cfg = transformers.Qwen2Config(use_sliding_window=False, **common)
        cls = transformers.Qwen2ForCausalLM
    torch.manual_seed(0)
    return cls(cfg).eval()


@pytest.fixture(scope="module")
def models():
    return {arch: _tiny(arch) for arch in ("llama", "mistral", "qwen2")}


def _generate(model, ids, cache=None, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # transformers 5 renames past_key_values to cache
        return model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=12, do_sample=False,
                              pad_token_id=0, past_key_values=cache, **kw)


@pytest.mark.parametrize("arch", ["llama", "mistral", "qwen2"])
def test_lossless_settings_equal_dynamic_cache(models, arch):
    model = models[arch]
    ids = torch.randint(1, 96, (2, 21), generator=torch.Generator().manual_seed(3))
    plain = _generate(model, ids, transformers.DynamicCache())
    lossless = dict(bits=16, streaming_gap=8)
    for name, kw in (("gear", dict(group_size=8, rank=0, rank_v=0, prefill_rank=0, prefill_rank_v=0, outlier_ratio=0.0)),
                     ("gear.kcvt", dict(rank=0, rank_v=0, prefill_rank=0, prefill_rank_v=0, outlier_ratio=0.0)),
                     ("kivi", dict(group_size=8))):
        cache = zoo.load(name).cache(model, **lossless, **kw)
        assert isinstance(cache.layers[0], transformers.cache_utils.QuantizedLayer)
        assert torch.equal(_generate(model, ids, cache), plain), name
        assert cache.get_seq_length() == plain.shape[1] - 1


def test_compressed_cache_generates_and_holds_fewer_bytes(models):
    model = models["llama"]
    ids = torch.randint(1, 96, (1, 70), generator=torch.Generator().manual_seed(4))
    plain_cache = transformers.DynamicCache()
    plain = _generate(model, ids, plain_cache)
    plain_bytes = sum(layer.keys.nbytes + layer.values.nbytes for layer in plain_cache.layers)
    for name, kw in (("gear", dict(group_size=16, streaming_gap=16)), ("gear.kcvt", dict(streaming_gap=16)), ("kivi", dict(group_size=16, streaming_gap=16))):
        cache = zoo.load(name).cache(model, **kw)
        out = _generate(model, ids, cache)
        assert out.shape == plain.shape and torch.equal(out[:, :70], ids)
        assert cache.nbytes() < plain_bytes, name
        assert len(cache.layers[0].blocks) == 2  # 64 of the 70 prompt tokens in one block, then one streamed block of 16


def test_same_seed_same_tokens_and_beam_search(models):
    model = models["qwen2"]
    ids = torch.randint(1, 96, (1, 33), generator=torch.Generator().manual_seed(5))
    gear = zoo.load("gear")
    a = _generate(model, ids, gear.cache(model, group_size=8, streaming_gap=8, seed=1))
    b = _generate(model, ids, gear.cache(model, group_size=8, streaming_gap=8, seed=1))
    assert torch.equal(a, b)
    beams = _generate(model, ids, gear.cache(model, group_size=8, streaming_gap=8), num_beams=2)
    assert beams.shape == a.shape


@pytest.mark.parametrize(("call", "message"), [
    (lambda m: zoo.load("gear").cache(m, bits=5.5 if False else 12), "bits must be 1..8"),
    (lambda m: zoo.load("gear").cache(m, group_size=48), "must divide streaming_gap"),
    (lambda m: zoo.load("kivi").cache(m, group_size=64, streaming_gap=64), "must divide the 2 KV heads x 16 channels = 32"),
    (lambda m: zoo.load("gear").cache(m, outlier_ratio=1.5), "outlier_ratio"),
    (lambda m: zoo.load("kivi").cache(m, rank=2), "is GEAR's"),
    (lambda m: zoo.load("gear.kcvt").cache(m, group_size=32), "is GEAR's"),
    (lambda m: zoo.load("gear").cache(m, ranks=3), "unknown gear option"),
    (lambda m: zoo.load("gear").cache(object()), "not a transformers causal LM"),
])
def test_bad_settings_raise(models, call, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        call(models["llama"])


def test_sliding_window_layers_are_refused():
    from zoo.compat.torchvision import ensure_torchvision

    ensure_torchvision()
    cfg = transformers.MistralConfig(num_hidden_layers=2, sliding_window=16, layer_types=["sliding_attention", "full_attention"])
    with pytest.raises(ConfigError, match="sliding_attention"):
        zoo.load("gear").cache(cfg)


def test_minimum_transformers_version_is_pinned_and_checked():
    check_transformers()  # the installed one passes
    with pytest.raises(ZooError, match=re.escape(f"transformers>={MIN_TRANSFORMERS}")):
        check_transformers("4.55.4")
    extras = (ROOT / "pyproject.toml").read_text()
    assert f'llm = ["transformers>={MIN_TRANSFORMERS}"' in extras
    assert CompressionSpec().bits == 4


def test_apply_gives_generate_a_compressed_cache_and_remove_restores(models):
    """``apply`` is ``cache`` for every later generate call without one; lossless settings change
    nothing, lossy ones give exactly what passing the cache by hand gives, ``remove`` restores."""
    model = models["llama"]
    ids = torch.randint(1, 96, (1, 40), generator=torch.Generator().manual_seed(5))
    plain = _generate(model, ids)
    kivi = zoo.load("kivi")
    with kivi.apply(model, bits=16, group_size=8, streaming_gap=8):
        assert torch.equal(_generate(model, ids), plain)
    lossy = dict(bits=2, group_size=8, streaming_gap=8)
    by_hand = _generate(model, ids, kivi.cache(model, **lossy))
    handle = kivi.apply(model, **lossy)
    try:
        assert torch.equal(_generate(model, ids), by_hand)
        assert torch.equal(_generate(model, ids), by_hand)  # a fresh cache per call
    finally:
        handle.remove()
    assert "generate" not in vars(model) and torch.equal(_generate(model, ids), plain)
    with pytest.raises(zoo.errors.ConfigError, match="rank=2 is GEAR's"):
        kivi.apply(model, rank=2)


@pytest.mark.parametrize("name, kw", [("kivi", dict(bits=2, group_size=8)), ("gear", dict(bits=4, group_size=8, rank=2, outlier_ratio=0.05))])
def test_reduce_reads_back_what_the_cache_keeps(name, kw):
    reducer = zoo.load(name)
    x = torch.randn(2, 2, 16, 8, generator=torch.Generator().manual_seed(1))
    out = reducer.reduce(x, kind="values", generator=torch.Generator().manual_seed(2), **kw)
    block = reducer.compress(x, kind="values", generator=torch.Generator().manual_seed(2), **kw)
    assert torch.equal(out.tokens, block.dequantize())
    assert out.indices.shape == (2, 2, 16) and torch.equal(out.indices[1, 1], torch.arange(16)) and bool((out.sizes == 1).all())
    assert 0 < (out.tokens - x).abs().max() < x.abs().max()
    with pytest.raises(zoo.errors.ReducerError, match=r"\[B, H, T, D\]"):
        reducer.reduce(x[0])
