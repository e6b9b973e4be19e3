"""Every backend agrees with the math reference on every mask kind."""

from __future__ import annotations

import pytest
import torch

from zoo.nn import attention as attn_mod
from zoo.nn.attention import AttentionBackendError, attention, resolve_backend, set_model_backend, use_backend
from zoo.nn.masks import AdditiveBias, BlockDiagonalMask, CausalMask, DenseMask, KeyPaddingMask

B, H, L, D = 3, 4, 10, 16


def _qkv(b=B, lq=L, lk=L, h=H, hk=H, dtype=torch.float32, device="cpu", seed=0):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(b, h, lq, D, generator=g, dtype=torch.float32).to(device, dtype)
    k = torch.randn(b, hk, lk, D, generator=g, dtype=torch.float32).to(device, dtype)
    v = torch.randn(b, hk, lk, D, generator=g, dtype=torch.float32).to(device, dtype)
    return q, k, v


def _bias(b, lq, lk):
    g = torch.Generator().manual_seed(1)
    bias = torch.randn(b, 1, lq, lk, generator=g)
    bias[..., 0, 3] = float("-inf")
    return bias


MASK_CASES = {
    "none": lambda: (dict(), None),
    "causal": lambda: (dict(), CausalMask()),
    "causal-kv-cache": lambda: (dict(lq=3, lk=L), CausalMask()),
    "causal-offset": lambda: (dict(), CausalMask(offset=2)),
    "key-padding": lambda: (dict(), KeyPaddingMask(torch.tensor([10, 4, 1]))),
    "key-padding-bool": lambda: (dict(), KeyPaddingMask(torch.arange(L)[None, :].expand(B, -1) % 3 != 1)),
    "key-padding-causal": lambda: (dict(), KeyPaddingMask(torch.tensor([10, 7, 5]), causal=True)),
    "block-diagonal": lambda: (dict(b=1, lq=12, lk=12), BlockDiagonalMask([5, 4, 3])),
    "block-diagonal-causal": lambda: (dict(b=1, lq=12, lk=12), BlockDiagonalMask([5, 4, 3], causal=True)),
    "block-diagonal-cross": lambda: (dict(b=1, lq=6, lk=12), BlockDiagonalMask([2, 4], [5, 7])),
    "dense-prefix-lm": lambda: (dict(), DenseMask(torch.ones(L, L, dtype=torch.bool).tril() | (torch.arange(L)[None, :] < 6))),
    "additive": lambda: (dict(), AdditiveBias(_bias(B, L, L))),
}


@pytest.mark.parametrize("backend", ["sdpa", "math"])
@pytest.mark.parametrize("case", sorted(MASK_CASES))
def test_backends_agree_with_math(backend, case):
    sizes, mask = MASK_CASES[case]()
    q, k, v = _qkv(**sizes)
    got = attention(q, k, v, mask=mask, backend=backend)
    # ground truth straight from the dense mask, independent of each backend's lowering
    allowed = mask.to_dense(q.shape[0], q.shape[2], k.shape[2]) if mask is not None else torch.ones(1, 1, q.shape[2], k.shape[2], dtype=torch.bool)
    logits = (q @ k.transpose(-1, -2)) / D**0.5
    if isinstance(mask, AdditiveBias):
        logits = logits + mask.bias
    want = torch.softmax(logits.masked_fill(~allowed, float("-inf")), -1) @ v
    assert got.shape == want.shape
    torch.testing.assert_close(got, want, atol=2e-6, rtol=1e-5)


def test_grouped_query_attention_matches_repeated_heads():
    q, k, v = _qkv(h=8, hk=2)
    got = attention(q, k, v, mask=CausalMask())
    want = attention(q, k.repeat_interleave(4, 1), v.repeat_interleave(4, 1), mask=CausalMask(), backend="math")
    torch.testing.assert_close(got, want, atol=2e-6, rtol=1e-5)


def test_custom_scale():
    q, k, v = _qkv()
    got = attention(q, k, v, scale=0.5)
    want = torch.softmax((q @ k.transpose(-1, -2)) * 0.5, -1) @ v
    torch.testing.assert_close(got, want, atol=2e-6, rtol=1e-5)


@pytest.mark.parametrize(
    "bad, message",
    [
        (lambda: attention(torch.randn(2, 3, 4), torch.randn(2, 3, 4), torch.randn(2, 3, 4)), "expects \\[B, H, L, D\\]"),
        (lambda: attention(*_qkv(h=6, hk=4)), "cannot share"),
        (lambda: attention(*_qkv(), mask=KeyPaddingMask(torch.tensor([1, 2]))), "batch has 3"),
        (lambda: attention(*_qkv(), mask=BlockDiagonalMask([5, 5])), "batch 1"),
        (lambda: attention(*_qkv(), backend="flash9"), "unknown attention backend 'flash9'"),
        (lambda: DenseMask(torch.ones(3, 3)), "boolean"),
    ],
)
def test_clear_errors(bad, message):
    with pytest.raises((AttentionBackendError, ValueError, TypeError), match=message):
        bad()


def test_selection_precedence(monkeypatch):
    calls = []
    for name in ("sdpa", "math"):
        backend = attn_mod.BACKENDS[name]
        monkeypatch.setitem(attn_mod.BACKENDS, name, attn_mod.Backend(name, lambda *a, _n=name, _f=backend.run: calls.append(_n) or _f(*a), backend.available, ""))
    q, k, v = _qkv()
    attention(q, k, v)
    monkeypatch.setenv("ZOO_ATTN_BACKEND", "math")
    attention(q, k, v)
    with use_backend("sdpa"):
        attention(q, k, v)  # context beats env
        attention(q, k, v, backend="math")  # explicit beats context
    assert calls == ["sdpa", "math", "sdpa", "math"]
    monkeypatch.setenv("ZOO_ATTN_BACKEND", "bogus")
    with pytest.raises(AttentionBackendError, match="ZOO_ATTN_BACKEND"):
        attention(q, k, v)


def test_xformers_on_cpu_falls_back_to_sdpa_and_says_so(monkeypatch):
    monkeypatch.setattr(attn_mod, "_warned", set())
    with pytest.warns(RuntimeWarning, match="'xformers' unavailable: .*CUDA.*Using 'sdpa'"):
        assert resolve_backend("xformers", "cpu") == "sdpa"
    q, k, v = _qkv()
    with _no_warning():
        out = attention(q, k, v, backend="xformers")  # warned once already
    torch.testing.assert_close(out, attention(q, k, v, backend="math"), atol=2e-6, rtol=1e-5)


class _no_warning:
    def __enter__(self):
        import warnings

        self._cm = warnings.catch_warnings()
        self._cm.__enter__()
        warnings.simplefilter("error")

    def __exit__(self, *exc):
        self._cm.__exit__(*exc)


def test_set_model_backend_reaches_every_attention_module():
    class Attn(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.attn_backend = None

    model = torch.nn.Sequential(Attn(), torch.nn.Linear(2, 2), torch.nn.Sequential(Attn()))
    assert set_model_backend(model, "math") == 2
    assert [m.attn_backend for m in model.modules() if hasattr(m, "attn_backend")] == ["math", "math"]
    with pytest.raises(AttentionBackendError):
        set_model_backend(model, "nope")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("backend", ["sdpa", "xformers"])
@pytest.mark.parametrize("case", sorted(MASK_CASES))
def test_gpu_backends_agree_with_math(backend, case):
    if backend == "xformers" and resolve_backend("xformers", "cuda") != "xformers":
        pytest.skip("xformers unavailable on this GPU")
    sizes, mask = MASK_CASES[case]()
    q, k, v = _qkv(device="cuda", dtype=torch.float16, **sizes)
    if mask is not None:
        for attr in ("bias", "mask", "lengths", "valid"):
            if isinstance(getattr(mask, attr, None), torch.Tensor):
                setattr(mask, attr, getattr(mask, attr).cuda())
    got = attention(q, k, v, mask=mask, backend=backend)
    want = attention(q, k, v, mask=mask, backend="math")
    torch.testing.assert_close(got.float(), want.float(), atol=3e-3, rtol=3e-3)
