"""The eviction hook (kvpress pattern) with StreamingLLM and SnapKV: parity with NVIDIA/kvpress, generate, remove()."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pytest
import torch

import zoo
from zoo.errors import ConfigError, ReducerError

from .eviction_cases import CASES, greedy, prompt_ids, tiny_lm

transformers = pytest.importorskip("transformers")
pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")  # transformers 5 renames past_key_values to cache
FIXTURE = Path(__file__).parents[2] / "fixtures" / "kv_cache" / "eviction.safetensors"


@pytest.fixture(scope="module")
def reference():
    from safetensors.torch import load_file

    return load_file(FIXTURE)


@pytest.fixture(scope="module")
def lms():
    return {arch: tiny_lm(arch) for arch in ("llama", "qwen2")}


@pytest.mark.parametrize("name", sorted(CASES))
def test_parity_with_kvpress(lms, reference, name):
    arch, method, kwargs, _ = CASES[name]
    model, prompt = lms[arch], prompt_ids(name)
    cache = transformers.DynamicCache()
    with zoo.load(method).apply(model, **kwargs) as handle:
        with torch.no_grad():
            model.model(input_ids=prompt[:, :-1], past_key_values=cache)
    kept = int((prompt.shape[1] - 1) * (1 - kwargs["compression_ratio"]))
    assert handle.evicted == [(0, kept), (1, kept)]
    assert cache.get_seq_length() == prompt.shape[1] - 1  # positions still count every token
    torch.testing.assert_close(cache.layers[0].keys, reference[f"{name}.keys0"], rtol=0, atol=1e-6)
    torch.testing.assert_close(cache.layers[1].values, reference[f"{name}.values1"], rtol=0, atol=1e-6)
    with zoo.load(method).apply(model, **kwargs):
        ids = greedy(model, transformers.DynamicCache(), prompt)
    assert torch.equal(ids, reference[f"{name}.ids"])
    assert torch.equal(greedy(model, transformers.DynamicCache(), prompt), reference[f"{name}.plain_ids"])  # hook removed


def _generate(model, ids, n=8):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=n, do_sample=False, pad_token_id=0)[:, ids.shape[1]:]


@pytest.mark.parametrize("method", ["streamingllm", "snapkv"])
def test_generate_with_the_hook_equals_an_explicit_position_loop(lms, method):
    """transformers' generate keeps positions right after eviction (the layer counts every token seen)."""
    model, prompt = lms["llama"], prompt_ids("llama_snapkv_06")
    options = {"compression_ratio": 0.6, **({"window_size": 8} if method == "snapkv" else {})}
    with zoo.load(method).apply(model, **options) as handle:
        generated = _generate(model, prompt)
        cache = transformers.DynamicCache()
        with torch.no_grad():
            logits = model(prompt, past_key_values=cache).logits  # the whole prompt prefilled, as generate does
            ids = [logits[0, -1].argmax()]
            for i in range(7):
                pos = torch.tensor([[prompt.shape[1] + i]])
                ids.append(model(ids[-1].view(1, 1), past_key_values=cache, position_ids=pos).logits[0, -1].argmax())
    assert handle.evicted == [(0, int(48 * 0.4)), (1, int(48 * 0.4))]
    assert torch.equal(generated[0], torch.stack(ids))


def test_nothing_evicted_is_exact_and_remove_restores(lms):
    model, prompt = lms["qwen2"], prompt_ids("qwen2_snapkv_03")
    plain = _generate(model, prompt)
    with zoo.load("snapkv").apply(model, compression_ratio=0.0, window_size=8):
        assert torch.equal(_generate(model, prompt), plain)
    handle = zoo.load("streamingllm").apply(model, compression_ratio=0.75)
    evicted = _generate(model, prompt)
    handle.remove()
    assert not torch.equal(evicted, plain)
    assert torch.equal(_generate(model, prompt), plain)


@pytest.mark.parametrize(("call", "error", "message"), [
    (lambda m: zoo.load("streamingllm").apply(m, compression_ratio=1.0), ConfigError, "in [0, 1)"),
    (lambda m: zoo.load("snapkv").apply(m, n_sink=3), ConfigError, "unknown snapkv option"),
    (lambda m: zoo.load("snapkv").apply(torch.nn.Linear(2, 2)), ReducerError, "not a Llama-like"),
])
def test_bad_settings(lms, call, error, message):
    with pytest.raises(error, match=re.escape(message)):
        call(lms["llama"])


def test_short_prompt_and_foreign_cache_are_refused(lms):
    model = lms["llama"]
    with zoo.load("snapkv").apply(model, window_size=64):
        with pytest.raises(ReducerError, match="not more than window_size=64"):
            model(torch.ones(1, 10, dtype=torch.long), past_key_values=transformers.DynamicCache())
    cache = zoo.load("kivi").cache(model, group_size=8, streaming_gap=8)
    with zoo.load("streamingllm").apply(model):
        with pytest.raises(ReducerError, match="edits DynamicCache layers"):
            model(torch.ones(1, 10, dtype=torch.long), past_key_values=cache)


def test_reduce_keeps_sinks_and_recent_or_what_the_window_attends():
    keys = torch.randn(1, 2, 20, 8, generator=torch.Generator().manual_seed(0))
    out = zoo.load("streamingllm").reduce(keys, compression_ratio=0.5, n_sink=3)
    assert out.indices.sort().values[0, 0].tolist() == [0, 1, 2] + list(range(13, 20))
    assert torch.equal(out.tokens, keys.gather(2, out.indices.unsqueeze(-1).expand(-1, -1, -1, 8)))
    snap = zoo.load("snapkv")
    queries = torch.randn(1, 4, 4, 8, generator=torch.Generator().manual_seed(1))
    kept = snap.reduce(keys, queries=queries, compression_ratio=0.5, window_size=4, kernel_size=3)
    assert kept.tokens.shape == (1, 2, 10, 8)
    assert set(range(16, 20)) <= set(kept.indices[0, 0].tolist())  # the window itself always stays
    scores = snap.press(window_size=4, kernel_size=3).scores_from_queries(queries, keys)
    assert torch.equal(kept.indices, scores.topk(10, dim=-1).indices)
    with pytest.raises(zoo.errors.ReducerError, match="pass queries="):
        snap.reduce(keys, window_size=4)
