"""zoo.sampling: logits processors, guidance, the static KV cache and the three drivers.

Each driver is checked against a plain, step-by-step transcription of the semantics it must
reproduce (full recomputation without a cache; MaskGIT over full logits; ml-flextok's Euler +
APG loop written out per image).
"""

from __future__ import annotations

import math

import pytest
import torch

from zoo.sampling import (
    APG,
    Guidance,
    SamplerSettings,
    StaticKVCache,
    apg_combine,
    cfg_combine,
    flow_timesteps,
    generate_ar,
    generate_maskgit,
    gumbel_noise,
    mask_ratio,
    min_p,
    repetition_penalty,
    sample,
    sample_flow,
    top_k,
    top_p,
    weight_from_cond_scale,
)
from zoo.nn.attention import attention


from zoo.nn.masks import CausalMask, KeyPaddingMask


# ----------------------------------------------------------------------------- processors


@pytest.mark.parametrize("k, kept", [(1, [1]), (2, [1, 2]), (3, [0, 1, 2]), (0, [0, 1, 2, 3]), (9, [0, 1, 2, 3])])
def test_top_k(k, kept):
    out = top_k(torch.tensor([[1.0, 4.0, 3.0, -2.0]]), k)
    assert (~out.isinf()).nonzero()[:, 1].tolist() == kept


@pytest.mark.parametrize("p, kept", [(0.1, [0]), (0.5, [0]), (0.51, [0, 1]), (0.8, [0, 1]), (0.81, [0, 1, 2]), (1.0, [0, 1, 2, 3])])
def test_top_p(p, kept):
    probs = torch.tensor([[0.5, 0.3, 0.15, 0.05]])
    out = top_p(probs.log()[:, [2, 0, 3, 1]], p)[:, [1, 3, 0, 2]]  # permuted input: order must not matter
    assert (~out.isinf()).nonzero()[:, 1].tolist() == kept


@pytest.mark.parametrize("p, kept", [(0.0, [0, 1, 2]), (0.2, [0, 1, 2]), (0.31, [0, 1]), (0.6, [0])])
def test_min_p(p, kept):
    out = min_p(torch.tensor([[0.5, 0.3, 0.15]]).log(), p)
    assert (~out.isinf()).nonzero()[:, 1].tolist() == kept


def _penalty_loop(logits, history, penalty, window):
    out = logits.clone()
    for b in range(logits.shape[0]):
        seen = set(history[b, -window:].tolist() if window else history[b].tolist())
        for t in seen:
            out[b, t] = out[b, t] / penalty if out[b, t] > 0 else out[b, t] * penalty
    return out


@pytest.mark.parametrize("window", [None, 1, 3, 50])
def test_repetition_penalty_matches_loop(window):
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 11, generator=g)
    history = torch.randint(0, 11, (3, 9), generator=g)
    got = repetition_penalty(logits, history, 1.3, window)
    assert torch.equal(got, _penalty_loop(logits, history, 1.3, window))


def test_repetition_penalty_ignores_masked_history():
    logits = torch.tensor([[2.0, 2.0, 2.0]])
    got = repetition_penalty(logits, torch.tensor([[0, 1]]), 2.0, history_mask=torch.tensor([[False, True]]))
    assert got.tolist() == [[2.0, 1.0, 2.0]]


def test_random_draws_use_the_generator_only():
    state = torch.get_rng_state()
    a = gumbel_noise((4, 5), torch.Generator().manual_seed(3))
    b = gumbel_noise((4, 5), torch.Generator().manual_seed(3))
    s1 = sample(torch.randn(2, 7, generator=torch.Generator().manual_seed(1)), torch.Generator().manual_seed(9), top_k=3, top_p=0.9)
    s2 = sample(torch.randn(2, 7, generator=torch.Generator().manual_seed(1)), torch.Generator().manual_seed(9), top_k=3, top_p=0.9)
    assert torch.equal(a, b) and torch.equal(s1, s2)
    assert torch.equal(torch.get_rng_state(), state), "a sampler touched the global RNG"


def test_gumbel_noise_is_gumbel():
    x = gumbel_noise((200_000,), torch.Generator().manual_seed(0))
    assert abs(float(x.mean()) - 0.5772) < 0.01 and abs(float(x.var()) - math.pi**2 / 6) < 0.03


def test_sample_respects_filters():
    g = torch.Generator().manual_seed(0)
    logits = torch.tensor([[0.0, 0.1, 0.2, 5.0, 5.1]]).expand(500, -1)
    ids = sample(logits, g, top_k=2)
    assert set(ids.flatten().tolist()) == {3, 4}
    assert sample(logits[:1], g, temperature=0).item() == 4


# ----------------------------------------------------------------------------- guidance


@pytest.mark.parametrize(
    "guidance, weights",
    [
        (Guidance(3.0), [3.0, 3.0, 3.0, 3.0]),
        (Guidance(3.0, "linear"), [1.0, 1.5, 2.0, 2.5]),
        (Guidance(3.0, "interval", interval=(0.25, 0.75)), [1.0, 3.0, 3.0, 1.0]),
        (Guidance(3.0, "power_cosine", power=1.0), [1.0, 1 + (1 - math.cos(math.pi / 4)), 2.0, 1 + (1 - math.cos(3 * math.pi / 4))]),
        (Guidance(fn=lambda r: 1 + r), [1.0, 1.25, 1.5, 1.75]),
    ],
)
def test_guidance_schedules(guidance, weights):
    assert [guidance.weight(i, 4) for i in range(4)] == pytest.approx(weights, rel=1e-6)


def test_cond_scale_mapping_is_exact():
    g = torch.Generator().manual_seed(0)
    cond, uncond = torch.randn(2, 5, generator=g), torch.randn(2, 5, generator=g)
    for s in (0.0, 1.5, 4.5):
        ref = cond + s * (cond - uncond)
        assert torch.allclose(cfg_combine(torch.cat([cond, uncond]), weight_from_cond_scale(s)), ref, atol=1e-6)


def test_bad_guidance_is_rejected():
    with pytest.raises(ValueError, match="schedule"):
        Guidance(2.0, "cosine-ish")
    with pytest.raises(ValueError, match="even batch"):
        cfg_combine(torch.zeros(3, 2), 2.0)


# ----------------------------------------------------------------------------- AR + KV cache


class TinyLM(torch.nn.Module):
    """A 2-layer causal transformer with a static KV cache (positions from ARStep)."""

    def __init__(self, vocab=13, dim=16, heads=2, layers=2):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.emb = torch.nn.Parameter(torch.randn(vocab, dim, generator=g))
        self.pos = torch.nn.Parameter(torch.randn(64, dim, generator=g) * 0.5)
        self.qkv = torch.nn.ParameterList([torch.nn.Parameter(torch.randn(dim, 3 * dim, generator=g) / dim**0.5) for _ in range(layers)])
        self.out = torch.nn.Parameter(torch.randn(dim, vocab, generator=g))
        self.heads = heads

    def full(self, ids, positions):
        x = self.emb[ids] + self.pos[positions]
        for w in self.qkv:
            q, k, v = (x @ w).view(*x.shape[:2], 3, self.heads, -1).permute(2, 0, 3, 1, 4)
            x = x + attention(q, k, v, mask=CausalMask()).transpose(1, 2).reshape(x.shape)
        return x @ self.out

    def step(self, step, cache):
        x = self.emb[step.ids] + self.pos[step.positions]
        for i, w in enumerate(self.qkv):
            q, k, v = (x @ w).view(*x.shape[:2], 3, self.heads, -1).permute(2, 0, 3, 1, 4)
            k, v = cache.update(i, k, v)
            if step.key_valid is not None:
                mask = KeyPaddingMask(step.key_valid, causal=True)
            else:
                mask = CausalMask() if x.shape[1] > 1 else None
            x = x + attention(q, k, v, mask=mask).transpose(1, 2).reshape(x.shape)
        cache.advance(step.ids.shape[1])
        return (x @ self.out)[:, -1]


def test_ar_cache_equals_full_recompute_greedy():
    lm = TinyLM()
    prompt = torch.tensor([[1, 2, 3], [4, 5, 6]])
    out = generate_ar(lm.step, prompt, 6, StaticKVCache(2, 2, 2, 16, 8), generator=None, sampler=SamplerSettings(temperature=0))
    seq = prompt
    for _ in range(6):
        nxt = lm.full(seq, torch.arange(seq.shape[1]).expand_as(seq))[:, -1].argmax(-1, keepdim=True)
        seq = torch.cat([seq, nxt], 1)
    assert torch.equal(out.ids, seq[:, 3:])


def test_ar_sampling_matches_step_by_step_multinomial():
    lm = TinyLM()
    prompt = torch.tensor([[1, 2]])
    settings = SamplerSettings(temperature=0.8, top_k=5, repetition_penalty=1.2, repetition_window=3)
    out = generate_ar(lm.step, prompt, 5, StaticKVCache(2, 1, 2, 16, 8), generator=torch.Generator().manual_seed(4), sampler=settings)
    g = torch.Generator().manual_seed(4)
    seq = prompt
    for _ in range(5):
        logits = lm.full(seq, torch.arange(seq.shape[1])[None])[:, -1]
        logits = settings.apply(logits, seq)
        seq = torch.cat([seq, torch.multinomial(torch.softmax(logits, -1), 1, generator=g)], 1)
    assert torch.equal(out.ids, seq[:, 2:])


def test_ar_cfg_is_one_batch_of_two_runs():
    lm = TinyLM()
    prompt, null = torch.tensor([[1, 2]]), torch.tensor([[0, 0]])
    w = Guidance(2.5, "linear")
    out = generate_ar(lm.step, prompt, 4, StaticKVCache(2, 2, 2, 16, 8), generator=None, sampler=SamplerSettings(temperature=0),
                      guidance=w, uncond_prompt=null)
    seq_c, seq_u = prompt, null
    for i in range(4):
        pos = torch.arange(seq_c.shape[1])[None]
        c, u = lm.full(seq_c, pos)[:, -1], lm.full(seq_u, pos)[:, -1]
        nxt = (u + w.weight(i, 4) * (c - u)).argmax(-1, keepdim=True)
        seq_c, seq_u = torch.cat([seq_c, nxt], 1), torch.cat([seq_u, nxt], 1)
    assert torch.equal(out.ids, seq_c[:, 2:])


def test_ar_left_padding_and_eos():
    lm = TinyLM()
    single = generate_ar(lm.step, torch.tensor([[3, 4]]), 5, StaticKVCache(2, 1, 2, 16, 8), generator=None,
                         sampler=SamplerSettings(temperature=0))
    padded = generate_ar(lm.step, torch.tensor([[0, 3, 4], [5, 6, 7]]), 5, StaticKVCache(2, 2, 2, 16, 8), generator=None,
                         sampler=SamplerSettings(temperature=0), prompt_valid=torch.tensor([[False, True, True], [True, True, True]]))
    assert torch.equal(padded.ids[0], single.ids[0])
    eos = int(single.ids[0, 1])
    stopped = generate_ar(lm.step, torch.tensor([[3, 4]]), 5, StaticKVCache(2, 1, 2, 16, 8), generator=None,
                          sampler=SamplerSettings(temperature=0), eos_id=eos, pad_id=-1)
    first = (single.ids[0] == eos).nonzero()[0].item()
    assert stopped.lengths.tolist() == [first + 1] and stopped.ids.shape[1] == first + 1


def test_kv_cache_overflow_and_batch_errors():
    cache = StaticKVCache(1, 1, 1, 2, 4)
    with pytest.raises(ValueError, match="overflows"):
        cache.update(0, torch.zeros(1, 1, 3, 4), torch.zeros(1, 1, 3, 4))
    with pytest.raises(ValueError, match="2B rows"):
        generate_ar(TinyLM().step, torch.tensor([[1]]), 2, StaticKVCache(2, 1, 2, 8, 8), generator=None, guidance=2.0,
                    uncond_prompt=torch.tensor([[0]]))


# ----------------------------------------------------------------------------- MaskGIT


def _maskgit_plain(logits_full, b, n, v, mask_id, steps, g, guidance, t0, anneal, schedule):
    """MaskGIT/MUSE step semantics over full logits (the reference's arithmetic, written out)."""
    ids = torch.full((b, n), mask_id)
    for step in range(steps):
        ratio = (step + 1) / steps
        temp = t0 * (1 - ratio)
        is_mask = ids == mask_id
        w = guidance.weight(step, steps)
        cond, uncond = logits_full(ids)
        logits = cond if w == 1.0 else uncond + (cond - uncond) * w
        if anneal:
            logits = logits / (0.5 + 0.8 * (1 - ratio))
        gum = lambda u: -torch.log((-torch.log(u.clamp(min=1e-20))).clamp(min=1e-20))  # noqa: E731
        sampled = (logits + temp * gum(torch.rand(b, n, v, generator=g))).argmax(-1)
        s_logits = torch.gather(logits, -1, sampled[..., None])[..., 0]
        sampled = torch.where(is_mask, sampled, ids)
        s_logits = torch.where(is_mask, s_logits, torch.tensor(float("inf")))
        k = max(1, min(int(is_mask[0].sum()) - 1, math.floor(n * mask_ratio(schedule, ratio))))
        conf = s_logits + temp * gum(torch.rand(b, n, generator=g))
        cut = conf.sort(-1).values[:, k - 1 : k]
        ids = sampled if step == steps - 1 else torch.where(conf <= cut, mask_id, sampled)
    return ids


@pytest.mark.parametrize("schedule", ["arccos", "cosine", "linear"])
@pytest.mark.parametrize("guidance, t0, anneal", [(Guidance(1.0), 1.0, False), (Guidance(3.0, "linear"), 4.5, True), (Guidance(2.0), 0.3, False)])
def test_maskgit_matches_plain_loop(schedule, guidance, t0, anneal):
    b, n, v, mask_id = 2, 12, 9, 9
    w_tok = torch.randn(v + 1, v, generator=torch.Generator().manual_seed(1))
    w_pos = torch.randn(n, v, generator=torch.Generator().manual_seed(2))
    cond_shift = torch.randn(v, generator=torch.Generator().manual_seed(3))

    def full(ids):  # "model": each position's logits depend on all ids (mean) and its own
        base = w_tok[ids] + w_pos + w_tok[ids].mean(1, keepdim=True)
        return base + cond_shift, base

    def logits_fn(ids, positions, guided):
        c, u = full(ids)
        pick = lambda t: torch.gather(t, 1, positions[..., None].expand(-1, -1, v))  # noqa: E731
        return torch.cat([pick(c), pick(u)]) if guided else pick(c)

    got = generate_maskgit(logits_fn, batch=b, seq_len=n, mask_id=mask_id, steps=5, generator=torch.Generator().manual_seed(7),
                           guidance=guidance, randomize_temperature=t0, softmax_temperature_annealing=anneal, schedule=schedule)
    want = _maskgit_plain(full, b, n, v, mask_id, 5, torch.Generator().manual_seed(7), guidance, t0, anneal, schedule)
    assert torch.equal(got, want)
    assert not (got == mask_id).any()


def test_maskgit_progress_and_bad_schedule():
    seen = []
    fn = lambda ids, pos, guided: torch.zeros(pos.shape + (4,))  # noqa: E731
    generate_maskgit(fn, batch=1, seq_len=4, mask_id=4, steps=3, generator=torch.Generator(), progress=lambda s, t: seen.append((s, t)))
    assert seen == [(1, 3), (2, 3), (3, 3)]
    with pytest.raises(ValueError, match="schedule"):
        generate_maskgit(fn, batch=1, seq_len=4, mask_id=4, steps=3, generator=None, schedule="sqrt")


# ----------------------------------------------------------------------------- flow


def _flextok_loop(velocity, noise_list, steps, scale, apg):
    """ml-flextok's MinRFPipeline loop, per image: t = i/T, x <- x - v/T, CFG or APG."""
    dt = 1.0 / steps
    xs = [x.clone() for x in noise_list]
    running = [0 for _ in xs]
    for i in range(steps, 0, -1):
        t = i / steps
        outs = []
        for j, x in enumerate(xs):
            c, u = velocity(x, t, cond=True), velocity(x, t, cond=False)
            if not apg:
                outs.append(u + scale * (c - u))
                continue
            diff = c - u
            running[j] = diff + (-0.5) * running[j]
            diff = running[j]
            diff = diff * torch.minimum(torch.ones_like(diff), 2.5 / diff.norm(p=2, dim=[-1, -2, -3], keepdim=True))
            v1 = torch.nn.functional.normalize(c.double(), dim=[-1, -2, -3])
            par = (diff.double() * v1).sum(dim=[-1, -2, -3], keepdim=True) * v1
            outs.append(c + (scale - 1) * (diff.double() - par).float())
        xs = [x - dt * o for x, o in zip(xs, outs, strict=True)]
    return torch.cat(xs)


@pytest.mark.parametrize("apg", [False, True])
def test_flow_euler_apg_reproduces_flextok_loop(apg):
    def vel(x, t, cond):  # an elementwise field; cond and uncond differ
        return x * t + 3 * torch.sin(2 * x) if cond else 0.1 * x.flip(-1)

    noise = torch.randn(3, 2, 4, 4, generator=torch.Generator().manual_seed(0))

    def velocity_fn(x, t, guided):
        if not guided:
            return vel(x, t, True)
        b = x.shape[0] // 2
        return torch.cat([vel(x[:b], t, True), vel(x[b:], t, False)])

    got = sample_flow(velocity_fn, noise, steps=6, guidance=4.0, norm_guidance=apg)
    # the reference runs one [1, C, H, W] image at a time, each with its own momentum buffer
    want = _flextok_loop(vel, [noise[j : j + 1] for j in range(3)], 6, 4.0, apg)
    assert torch.allclose(got, want, atol=1e-5)


def test_flow_heun_is_exact_for_linear_velocity_and_shift():
    x1 = torch.tensor([[2.0, -1.0]])
    # v = const -> x0 = x1 - v exactly, for any solver / shift
    for solver in ("euler", "heun"):
        for shift in (1.0, 3.0):
            out = sample_flow(lambda x, t, guided: torch.full_like(x, 0.5), x1, steps=5, solver=solver, shift=shift)
            assert torch.allclose(out, x1 - 0.5, atol=1e-6)
    # v = x (dx/dt = x): Heun is second order, Euler first
    exact = x1 * math.exp(-1.0)
    e = (sample_flow(lambda x, t, g: x, x1, steps=8) - exact).abs().max()
    h = (sample_flow(lambda x, t, g: x, x1, steps=8, solver="heun") - exact).abs().max()
    assert h < e / 5
    assert flow_timesteps(2, shift=3.0) == [1.0, 0.75, 0.0]


def test_apg_reduces_to_cfg_without_momentum_clipping_projection():
    g = torch.Generator().manual_seed(0)
    c, u = torch.randn(2, 3, 4, 4, generator=g), torch.randn(2, 3, 4, 4, generator=g)
    out, _ = apg_combine(c, u, 3.0, None, APG(momentum=0.0, norm_threshold=0.0, eta=1.0))
    assert torch.allclose(out, u + 3.0 * (c - u), atol=1e-5)


def test_two_generations_interleave_without_shared_state():
    lm = TinyLM()
    a1 = generate_ar(lm.step, torch.tensor([[1]]), 4, StaticKVCache(2, 1, 2, 8, 8), generator=torch.Generator().manual_seed(0))
    a2 = generate_ar(lm.step, torch.tensor([[2]]), 4, StaticKVCache(2, 1, 2, 8, 8), generator=torch.Generator().manual_seed(1))
    b1 = generate_ar(lm.step, torch.tensor([[1]]), 4, StaticKVCache(2, 1, 2, 8, 8), generator=torch.Generator().manual_seed(0))
    assert torch.equal(a1.ids, b1.ids) and a2.ids.shape == (1, 4)


def test_drivers_without_generator_leave_the_global_rng_alone():
    state = torch.get_rng_state()
    generate_ar(TinyLM().step, torch.tensor([[1]]), 3, StaticKVCache(2, 1, 2, 8, 8), generator=None)
    generate_maskgit(lambda ids, pos, guided: torch.zeros(pos.shape + (4,)), batch=1, seq_len=4, mask_id=4, steps=2, generator=None)
    sample(torch.zeros(1, 3), None)
    assert torch.equal(torch.get_rng_state(), state)
