"""zoo.sampling pieces for SD3 / 3.5 (issue 25): skip-layer guidance in the flow driver and the
scheduler-config time grid with dynamic shifting (diffusers parity: tests/plugins/diffusion/test_sd3.py)."""

from __future__ import annotations

import pytest
import torch

from zoo.errors import ConfigError, InputError
from zoo.sampling import SkipLayerGuidance, as_skip_layer_guidance, dynamic_shift_mu, flow_match_sigmas, sample_flow, scheduler_sigmas


@pytest.mark.parametrize("start,stop,steps,active", [
    (0.01, 0.2, 28, [1, 2, 3, 4, 5]),  # SD3.5 Medium's window: 0.28 < i < 5.6
    (0.01, 0.2, 4, []),  # too few steps: nothing inside (0.04 < i < 0.8)
    (0.0, 1.0, 3, [1, 2]),  # strict bounds: step 0 never, unless start < 0
    (-0.1, 0.5, 4, [0, 1]),
])
def test_window_is_the_pipelines_strict_step_window(start, stop, steps, active):
    slg = SkipLayerGuidance((0,), start=start, stop=stop)
    assert [i for i in range(steps) if slg.active(i, steps)] == active
    assert active == [i for i in range(steps) if i > steps * start and i < steps * stop]


def _drive(slg, guidance=1.5, **kw):
    calls = []

    def velocity(x, t, guided):
        half = x.shape[0] // 2
        return torch.cat([x[:half] * 2.0, x[half:]]) if guided else x * 2.0  # [cond; uncond] rows

    def skipped(x, t, layers):
        calls.append((round(t, 6), layers))
        return x * 0.5

    out = sample_flow(velocity, torch.ones(1, 2), times=[1.0, 0.75, 0.5, 0.25, 0.0], guidance=guidance,
                      skip_guidance=slg, skip_fn=skipped if slg is not None else None, **kw)
    return out, calls


def test_skip_term_is_added_on_guided_steps_in_the_window():
    slg = SkipLayerGuidance((3, 4), scale=3.0, start=0.0, stop=0.6)  # steps 1 and 2 of 4
    out, calls = _drive(slg)
    assert calls == [(0.75, (3, 4)), (0.5, (3, 4))]
    x = torch.ones(1, 2)
    for i in range(4):
        v = x + 1.5 * (2 * x - x)
        if i in (1, 2):
            v = v + (2 * x - 0.5 * x) * 3.0
        x = x - 0.25 * v
    assert torch.allclose(out, x)
    plain, none = _drive(None)
    assert none == [] and not torch.allclose(plain, out)
    off, calls = _drive(slg, guidance=None)  # without CFG: no skip pass, as the pipeline
    assert calls == [] and torch.allclose(off, _drive(None, guidance=None)[0])
    _, calls = _drive(slg, guidance_interval=(0.6, 1.0))  # only guided steps get the term
    assert calls == [(0.75, (3, 4))]


@pytest.mark.parametrize("value,words", [
    ({"layers": []}, "non-empty"), ({"layers": [-1]}, "non-empty"), ({"layers": [1], "scale": float("nan")}, "finite"),
    ({"layers": [1], "start": 0.3, "stop": 0.2}, "start <= stop"), ({"layers": [1], "end": 0.2}, "layers, scale, start, stop"),
    (3, "SkipLayerGuidance"),
])
def test_bad_skip_layer_guidance(value, words):
    with pytest.raises(InputError, match=words):
        as_skip_layer_guidance(value)


def test_skip_guidance_needs_its_function():
    with pytest.raises(InputError, match="skip_fn"):
        sample_flow(lambda x, t, g: x, torch.ones(1, 2), steps=2, guidance=2.0, skip_guidance=SkipLayerGuidance((0,)))
    with pytest.raises(InputError, match="do not exist"):
        SkipLayerGuidance((7, 8, 9)).check_layers(8)


@pytest.mark.parametrize("sched,seq,mu,want", [
    ({"shift": 3.0}, 4096, 2.0, flow_match_sigmas(5, shift=3.0)),  # static: mu ignored
    ({"use_dynamic_shifting": True}, 4096, None, flow_match_sigmas(5, mu=1.15)),
    ({"use_dynamic_shifting": True}, 1024, None, flow_match_sigmas(5, mu=dynamic_shift_mu(1024))),
    ({"use_dynamic_shifting": True, "max_shift": None}, 1024, None, flow_match_sigmas(5, mu=dynamic_shift_mu(1024))),  # null -> default
    ({"use_dynamic_shifting": True, "base_shift": 0.2, "max_shift": 2.0, "base_image_seq_len": 16, "max_image_seq_len": 64}, 64, None,
     flow_match_sigmas(5, mu=2.0)),
    ({"use_dynamic_shifting": True}, None, 0.7, flow_match_sigmas(5, mu=0.7)),
    ({"use_dynamic_shifting": True, "time_shift_type": "linear"}, None, 0.7, flow_match_sigmas(5, mu=0.7, time_shift="linear")),
])
def test_scheduler_config_grid(sched, seq, mu, want):
    assert scheduler_sigmas(5, sched, image_seq_len=seq, mu=mu) == want


def test_scheduler_config_problems_are_named():
    with pytest.raises(InputError, match="image_seq_len"):
        scheduler_sigmas(4, {"use_dynamic_shifting": True})
    with pytest.raises(ConfigError, match="stochastic_sampling"):
        scheduler_sigmas(4, {"stochastic_sampling": True})
    with pytest.raises(InputError, match="time_shift"):
        flow_match_sigmas(4, mu=1.0, time_shift="cosine")
    assert dynamic_shift_mu(256) == 0.5 and abs(dynamic_shift_mu(4096) - 1.15) < 1e-12
