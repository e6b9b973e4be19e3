"""The continuous-token sampler pieces: block plans and the block loop, CFG pieces, DDPM/IDDPM
ancestral sampling, Euler-Maruyama SDE and flow sampling on explicit grids."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from zoo.errors import InputError
from zoo.sampling import Guidance, StaticKVCache
from zoo.sampling.blocks import (
    cell_blocks,
    generate_blocks,
    masked_set_blocks,
    masked_set_counts,
    random_orders,
    range_blocks,
    scale_blocks,
)
from zoo.sampling.cfg import cfg_channels, in_interval, ramp_progress
from zoo.sampling.ddpm import DiffusionSchedule, ddpm_sample, named_betas, space_timesteps
from zoo.sampling.flow import sample_flow, shift_time, time_grid
from zoo.sampling.noise import ReplayNoise, as_noise_source
from zoo.sampling.sde import linear_path_sde, sample_sde, sde_time_grid


# ------------------------------------------------------------------ block plans
def _mar_counts_reference(length: int, steps: int) -> list[int]:
    # LTH14/mar sample_tokens, written out with numpy/torch as the reference computes it
    left, out = length, []
    for step in range(steps):
        ratio = np.cos(math.pi / 2.0 * (step + 1) / steps)
        m = torch.Tensor([np.floor(length * ratio)])
        m = torch.maximum(torch.Tensor([1]), torch.minimum(torch.tensor([float(left)]) - 1, m))
        out.append(int(m.item()))
        left = out[-1]
    return out


@pytest.mark.parametrize("length,steps", [(256, 64), (256, 256), (256, 1), (16, 4), (16, 16), (5, 2), (4, 3)])
def test_masked_set_counts_match_mar(length, steps):
    assert masked_set_counts(length, steps) == _mar_counts_reference(length, steps)


@pytest.mark.parametrize("length,steps", [(16, 4), (16, 16), (9, 3), (4, 1)])
def test_masked_set_blocks_partition_every_position_once(length, steps):
    orders = random_orders(3, length, torch.Generator().manual_seed(1))
    blocks = masked_set_blocks(orders, steps)
    cat = torch.cat([b.positions for b in blocks], dim=1).sort(dim=1).values
    assert torch.equal(cat, torch.arange(length).expand(3, length))
    # the end of each order is generated first
    first = blocks[0].positions
    for r in range(3):
        assert set(first[r].tolist()) == set(orders[r, length - first.shape[1]:].tolist()) or steps == 1
    assert [b.index for b in blocks] == list(range(steps))


@pytest.mark.parametrize("bad", [0, 17, 2.0, True])
def test_masked_set_counts_refuse_bad_steps(bad):
    with pytest.raises(InputError):
        masked_set_counts(16, bad)


@pytest.mark.parametrize("orders", [torch.tensor([[0, 0, 1]]), torch.tensor([0, 1, 2]), torch.tensor([[0.0, 1.0]])])
def test_masked_set_blocks_refuse_non_permutations(orders):
    with pytest.raises(InputError):
        masked_set_blocks(orders, 1)


def test_random_orders_follow_the_generator_only():
    a = random_orders(2, 10, torch.Generator().manual_seed(3))
    torch.manual_seed(0)
    b = random_orders(2, 10, torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and not torch.equal(a[0], a[1])
    with pytest.raises(InputError):
        random_orders(1, 4, None)


@pytest.mark.parametrize("plan,expected", [
    (lambda: range_blocks([1, 3]), [[0], [1, 2, 3]]),
    (lambda: scale_blocks([1, 2]), [[0], [1, 2, 3, 4]]),
    (lambda: cell_blocks(2, 2, 1), [[0], [1], [2], [3]]),
    (lambda: cell_blocks(4, 4, 2), [[0, 1, 4, 5], [2, 3, 6, 7], [8, 9, 12, 13], [10, 11, 14, 15]]),
])
def test_fixed_plans(plan, expected):
    assert [b.positions[0].tolist() for b in plan()] == expected


def test_cell_blocks_refuse_uneven_grid():
    with pytest.raises(InputError):
        cell_blocks(3, 4, 2)


@pytest.mark.parametrize("ramp,weights", [
    ("block", [1.0, 2.0, 3.0, 4.0]),           # w = 1 + (5 - 1) * i / 4
    ("block_end", [1.0, 1 + 4 / 3, 1 + 8 / 3, 5.0]),
    ("fraction", [2.0, 3.0, 4.0, 5.0]),        # range_blocks' fraction: (i + 1) / 4
])
def test_generate_blocks_ramps_guidance(ramp, weights):
    seen = []

    def predict(blk, tok, known, w):
        seen.append(w)
        assert int(known.sum()) == blk.index  # one position known per earlier block
        return torch.full((1, 1, 2), float(blk.index))

    out = generate_blocks(predict, torch.zeros(1, 4, 2), range_blocks([1, 1, 1, 1]), guidance=Guidance(5.0, "linear"), ramp=ramp)
    assert seen == pytest.approx(weights)
    assert out[0, :, 0].tolist() == [0.0, 1.0, 2.0, 3.0]


def test_generate_blocks_checks_shapes_and_cache():
    with pytest.raises(InputError, match="predict returned"):
        generate_blocks(lambda b, t, k, w: torch.zeros(1, 5, 2), torch.zeros(1, 4, 2), range_blocks([4]))
    cache = StaticKVCache(1, 1, 1, 8, 2)
    cache.advance(3)

    def grow(blk, tok, known, w):
        cache.advance(blk.size)
        return torch.zeros(1, blk.size, 2)

    generate_blocks(grow, torch.zeros(1, 4, 2), range_blocks([1, 3]), cache=cache)
    assert cache.length == 4  # reset first, then one block at a time

    def shrink(blk, tok, known, w):
        cache.reset()
        return torch.zeros(1, blk.size, 2)

    cache.advance(2)
    generate_blocks(shrink, torch.zeros(1, 4, 2), range_blocks([4]), cache=cache)  # 0 -> 0 is fine
    with pytest.raises(InputError, match="shrank"):
        def grow_then_shrink(blk, tok, known, w):
            cache.length = 0 if blk.index else 2
            return torch.zeros(1, blk.size, 2)
        generate_blocks(grow_then_shrink, torch.zeros(1, 4, 2), range_blocks([1, 3]), cache=cache)


# ------------------------------------------------------------------ CFG pieces
def test_cfg_channels_subset_and_all():
    cond, uncond = torch.randn(2, 5, 3), torch.randn(2, 5, 3)
    out = torch.cat([cond, uncond])
    full = cfg_channels(out, 2.5)
    assert torch.allclose(full, uncond + 2.5 * (cond - uncond))
    part = cfg_channels(out, 2.5, 3)
    assert torch.allclose(part[:, :3], full[:, :3]) and torch.equal(part[:, 3:], cond[:, 3:])
    last = cfg_channels(out, 2.5, slice(4, 5), dim=1)
    assert torch.equal(last[:, :4], cond[:, :4])
    with pytest.raises(InputError):
        cfg_channels(torch.zeros(3, 2), 2.0)
    with pytest.raises(InputError):
        cfg_channels(out, 2.0, 0)


@pytest.mark.parametrize("t,interval,expected", [(0.1, (0.11, 1.0), False), (0.11, (0.11, 1.0), True), (1.0, (0.11, 1.0), True),
                                                 (0.5, None, True), (0.7, (0.0, 0.5), False)])
def test_in_interval(t, interval, expected):
    assert in_interval(t, interval) is expected


def test_ramp_progress_refuses_unknown():
    with pytest.raises(InputError):
        ramp_progress("steps", 0, 1, 0.0)


# ------------------------------------------------------------------ DDPM
@pytest.mark.parametrize("counts,expected", [("4", [0, 333, 666, 999]), ("ddim4", [0, 250, 500, 750]), ([2, 1], [0, 499, 500]),
                                             (1000, list(range(1000)))])
def test_space_timesteps(counts, expected):
    assert space_timesteps(1000, counts) == expected


@pytest.mark.parametrize("bad", ["x", "ddim999", [0], "2000"])
def test_space_timesteps_refuses(bad):
    with pytest.raises(InputError):
        space_timesteps(1000, bad)


def test_respaced_betas_keep_the_kept_alphas_cumprod():
    full = np.cumprod(1 - named_betas("cosine", 1000))
    sched = DiffusionSchedule.create("cosine", respacing="50")
    kept = np.cumprod(1 - sched.betas)
    assert np.allclose(kept, full[sched.timestep_map], rtol=1e-12)


def _linear_eps_model(c: int, gain: float = 0.3):
    w = torch.randn(c, 2 * c, generator=torch.Generator().manual_seed(11)) * gain

    def model(x, t, guided):
        out = x @ w + t / 1000.0
        if guided:  # the unconditional half differs
            out = out + torch.cat([torch.zeros(len(x) // 2, 1), torch.ones(len(x) // 2, 1)])
        return torch.cat([out[:, :c], torch.tanh(out[:, c:])], 1)

    return model


def _ddpm_by_hand(model, noise, sched, draws, temperature, w=None):
    tab = sched.tables()
    x, c = noise.clone(), noise.shape[1]
    for j, i in enumerate(reversed(range(sched.num_steps))):
        t = sched.timestep_map[i]
        if w is None:
            out = model(x, t, False)
        else:
            o = model(torch.cat([x, x]), t, True)
            out = o[: len(x)].clone()
            out[:, :c] = o[len(x):, :c] + w * (o[: len(x), :c] - o[len(x):, :c])
        eps, v = out[:, :c], out[:, c:]
        f = lambda k, i=i: float(np.float32(tab[k][i]))  # noqa: E731
        frac = (v + 1) / 2
        log_var = frac * f("log_betas") + (1 - frac) * f("posterior_log_variance_clipped")
        x0 = f("sqrt_recip_alphas_cumprod") * x - f("sqrt_recipm1_alphas_cumprod") * eps
        mean = f("posterior_mean_coef1") * x0 + f("posterior_mean_coef2") * x
        x = mean + (torch.exp(0.5 * log_var) * draws[j][: len(x)] * temperature if i else 0)
    return x


@pytest.mark.parametrize("guidance", [None, 3.0])
def test_ddpm_sample_matches_the_iddpm_update(guidance):
    sched = DiffusionSchedule.create("cosine", respacing="8")
    model = _linear_eps_model(4)
    noise = torch.randn(3, 4, generator=torch.Generator().manual_seed(0))
    rows = 6 if guidance else 3
    draws = [torch.randn(rows, 4, generator=torch.Generator().manual_seed(100 + j)) for j in range(8)]
    got = ddpm_sample(model, noise, sched, generator=ReplayNoise(draws), temperature=0.8, guidance=guidance)
    want = _ddpm_by_hand(model, noise, sched, draws, 0.8, guidance)
    assert torch.allclose(got, want, atol=1e-5)


def test_ddpm_draws_from_the_generator_only_and_replay_checks_shapes():
    sched = DiffusionSchedule.create("cosine", respacing="5")
    model = _linear_eps_model(2)
    noise = torch.ones(2, 2)
    a = ddpm_sample(model, noise, sched, generator=torch.Generator().manual_seed(4))
    torch.manual_seed(123)
    b = ddpm_sample(model, noise, sched, generator=torch.Generator().manual_seed(4))
    assert torch.equal(a, b)
    with pytest.raises(InputError, match="ran out"):
        ddpm_sample(model, noise, sched, generator=ReplayNoise([torch.zeros(2, 2)] * 4))
    with pytest.raises(InputError, match="shape"):
        ddpm_sample(model, noise, sched, generator=ReplayNoise([torch.zeros(2, 2)] * 5), guidance=2.0)  # guided draws [2N, C]


@pytest.mark.parametrize("variance", ["fixed_small", "fixed_large"])
def test_ddpm_fixed_variances_and_temperature_zero_is_deterministic(variance):
    sched = DiffusionSchedule.create("linear", respacing="6")
    model = lambda x, t, g: torch.zeros_like(x)  # noqa: E731
    a = ddpm_sample(model, torch.ones(1, 3), sched, generator=torch.Generator().manual_seed(0), variance=variance, temperature=0.0)
    b = ddpm_sample(model, torch.ones(1, 3), sched, generator=torch.Generator().manual_seed(9), variance=variance, temperature=0.0)
    assert torch.equal(a, b)
    # eps = 0: x0 = x / sqrt(abar) at every step, so x0 of the last step is the input scaled back
    assert torch.all(a > 1.0)


@pytest.mark.parametrize("kw", [dict(variance="learned"), dict(temperature=-1.0), dict(temperature=float("nan"))])
def test_ddpm_refuses(kw):
    with pytest.raises(InputError):
        ddpm_sample(lambda x, t, g: torch.zeros(1, 6), torch.ones(1, 3), DiffusionSchedule.create(respacing="2"),
                    generator=torch.Generator(), **kw)


# ------------------------------------------------------------------ SDE
def test_sde_euler_maruyama_with_mean_last_step_by_hand():
    ts = sde_time_grid(5, last_step_size=0.1)
    draws = [torch.randn(2, 3, generator=torch.Generator().manual_seed(j)) for j in range(4)]
    drift = lambda x, t, g: -x * (1 + t)  # noqa: E731
    diffusion = lambda x, t: 0.5 * (1 - t)  # noqa: E731
    got = sample_sde(drift, diffusion, torch.ones(2, 3), times=ts, generator=ReplayNoise(draws), last_step_size=0.1)
    x = torch.ones(2, 3)
    dt = torch.tensor(ts[1]) - torch.tensor(ts[0])
    for k in range(4):
        x = x + drift(x, ts[k], False) * dt + torch.sqrt(torch.tensor(2 * diffusion(x, ts[k]))) * draws[k] * torch.sqrt(dt)
    x = x + drift(x, ts[-1], False) * 0.1
    assert torch.allclose(got, x, atol=1e-6)
    none = sample_sde(drift, diffusion, torch.ones(2, 3), times=ts, generator=ReplayNoise(draws), last_step=None)
    assert not torch.allclose(none, got)


def test_sde_guidance_combines_rows_and_refuses_bad_grids():
    seen = []

    def drift(x, t, guided):
        seen.append(x.shape[0])
        return torch.cat([torch.ones(len(x) // 2, 1), torch.zeros(len(x) // 2, 1)]) if guided else torch.ones(len(x), 1)

    out = sample_sde(drift, lambda x, t: 0.0, torch.zeros(2, 1), times=[0.0, 0.5, 1.0], generator=torch.Generator(),
                     guidance=3.0, last_step=None)
    assert seen == [4, 4] and torch.allclose(out, torch.full((2, 1), 3.0))  # w * 1 per unit time
    for bad in ([0.0], [0.0, 0.0], [1.0, 0.5]):
        with pytest.raises(InputError):
            sample_sde(drift, lambda x, t: 0.0, torch.zeros(2, 1), times=bad, generator=torch.Generator())
    with pytest.raises(InputError):
        sample_sde(drift, lambda x, t: 0.0, torch.zeros(2, 1), times=[0.0, 1.0], generator=torch.Generator(), last_step="tweedie")


def test_linear_path_sde_terms():
    drift, diffusion = linear_path_sde(lambda x, t, g: 2 * x)
    x, t = torch.tensor([[0.5]]), 0.25
    score = (t * 2 * x - x) / (1 - t)
    assert diffusion(x, t) == pytest.approx((1 - t) / t)
    assert torch.allclose(drift(x, t, False), 2 * x + (1 - t) / t * score)
    with pytest.raises(InputError):
        linear_path_sde(lambda x, t, g: x, form="cubic")


# ------------------------------------------------------------------ flow on explicit grids
def test_time_grid_shift_matches_reverse_direction():
    down = time_grid(7, shift=2.5)
    up = time_grid(7, shift=2.5, start=0.0, end=1.0)
    assert [round(1 - u, 12) for u in up] == [round(d, 12) for d in down]
    assert down[1] == pytest.approx(shift_time(6 / 7, 2.5))
    # LightningDiT's shift s in its time (0 = noise) is zoo's shift 1/s
    s = 0.3
    ref = [s * t / (1 + (s - 1) * t) for t in np.linspace(0, 1, 8)]
    assert time_grid(7, shift=1 / s, start=0.0, end=1.0) == pytest.approx(ref)


def test_sample_flow_explicit_grid_is_forward_euler():
    grid = [0.0, 0.2, 0.7, 1.0]
    calls = []

    def v(x, t, guided):
        calls.append(t)
        return torch.full_like(x, t)

    out = sample_flow(v, torch.zeros(1, 1), times=grid)
    assert calls == grid[:-1]
    assert out.item() == pytest.approx(0.2 * 0.0 + 0.5 * 0.2 + 0.3 * 0.7)
    # the default decreasing grid is the same formula
    out2 = sample_flow(lambda x, t, g: torch.ones_like(x), torch.zeros(1, 1), times=[1.0, 0.4, 0.0])
    assert out2.item() == pytest.approx(-1.0)


def test_sample_flow_interval_and_channel_subset():
    rows = []

    def v(x, t, guided):
        rows.append((t, x.shape[0]))
        if guided:
            return torch.cat([torch.ones(len(x) // 2, 2), torch.zeros(len(x) // 2, 2)])
        return torch.ones(len(x), 2)

    out = sample_flow(v, torch.zeros(1, 2), times=[0.0, 0.1, 0.5, 1.0], guidance=4.0, guidance_interval=(0.11, 1.0),
                      guidance_channels=1)
    assert rows == [(0.0, 1), (0.1, 1), (0.5, 2)]  # the unconditional pass is skipped outside the interval
    # channel 0: 0.1 + 0.4 + 4 * 0.5; channel 1 (conditional only): 1.0
    assert out[0].tolist() == pytest.approx([2.5, 1.0])


@pytest.mark.parametrize("kw", [dict(), dict(steps=3, times=[0.0, 1.0]), dict(times=[0.0]), dict(times=[0.0, 0.5, 0.2]),
                                dict(steps=2, norm_guidance=True, guidance=2.0, guidance_interval=(0.0, 0.5)),
                                dict(steps=2, guidance=2.0, guidance_interval=(0.5, 0.1))])
def test_sample_flow_refuses(kw):
    with pytest.raises(InputError):
        sample_flow(lambda x, t, g: x, torch.zeros(1, 1), **kw)


def test_noise_source_from_none_is_fresh_and_refuses_other_types():
    a, b = as_noise_source(None).randn((4,)), as_noise_source(None).randn((4,))
    assert not torch.equal(a, b)
    with pytest.raises(InputError):
        as_noise_source(3)


def test_noise_draw_dtype_picks_the_generator_stream_and_shares_its_position():
    ref = torch.Generator().manual_seed(3)
    expect = [torch.randn(5, generator=ref), torch.randn(5, generator=ref, dtype=torch.float64), torch.randn(5, generator=ref)]
    src = as_noise_source(torch.Generator().manual_seed(3))
    wide = src.with_draw_dtype(torch.float64)
    got = [src.randn((5,)), wide.randn((5,), dtype=torch.float64), src.randn((5,))]  # one generator, interleaved draws
    for e, g in zip(expect, got):
        assert g.dtype == e.dtype and torch.equal(g, e)
    assert not torch.allclose(expect[1].float(), as_noise_source(torch.Generator().manual_seed(3)).randn((5,)))
    g = torch.Generator().manual_seed(4)
    narrowed = as_noise_source(torch.Generator().manual_seed(4), draw_dtype=torch.float64).randn((3,))  # drawn wide, cast
    assert narrowed.dtype == torch.float32 and torch.equal(narrowed, torch.randn(3, generator=g, dtype=torch.float64).float())
    replay = ReplayNoise([torch.ones(2)])
    assert replay.with_draw_dtype(torch.float64) is replay  # recorded draws are handed out as recorded
    for bad in (torch.int64, torch.complex64, "float64"):
        with pytest.raises(InputError, match="draw_dtype"):
            as_noise_source(None, draw_dtype=bad)
