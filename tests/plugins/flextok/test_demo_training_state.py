"""The demo training script's pixel-stage state (``scripts/train_demo_flextok.py``,
``--pix-state-out`` / ``--pix-state-in``): a continuation restored from a saved state takes exactly
the steps the uninterrupted run would have taken (live weights, AdamW moments and EMA all come
back), a state of another model is refused, and a step budget does not depend on the clock."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "train_demo_flextok.py"


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("train_demo_flextok", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def setup(seed: int = 0, width: int = 6):
    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(4, width), torch.nn.GELU(), torch.nn.Linear(width, 3))
    params = list(net.parameters())
    opt = torch.optim.AdamW([{"params": params[:2], "peak": 1e-2}, {"params": params[2:], "peak": 5e-3}], lr=1e-2)
    return net, params, opt


def steps(net, params, opt, ema, n: int, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    for _ in range(n):
        x = torch.randn(8, 4, generator=g)
        loss = net(x).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        ema.update()


def test_a_restored_state_continues_exactly(script, tmp_path):
    net, params, opt = setup()
    ema = script.EMA(params, 0.9)
    steps(net, params, opt, ema, 5, seed=1)
    script.save_pixel_state(tmp_path / "state.pt", params, opt, ema, steps=5)
    steps(net, params, opt, ema, 3, seed=2)  # the uninterrupted run

    net2, params2, opt2 = setup(seed=9)  # another start: everything must come from the state
    for g in opt2.param_groups:
        g["peak"] *= 0.1  # this run's schedule, which the restore keeps
    ema2 = script.EMA(params2, 0.9)
    assert script.restore_pixel_state(script.load_pixel_state(tmp_path / "state.pt"), params2, opt2, ema2) == 5
    assert [g["peak"] for g in opt2.param_groups] == [1e-3, 5e-4]
    assert ema2.n == 5
    steps(net2, params2, opt2, ema2, 3, seed=2)
    for a, b in zip(params, params2):
        assert torch.equal(a, b)
    for a, b in zip(ema.shadow, ema2.shadow):
        assert torch.equal(a, b)
    assert not (tmp_path / "state.pt.tmp").exists()


def test_a_state_of_another_model_is_refused(script, tmp_path):
    _, params, opt = setup()
    script.save_pixel_state(tmp_path / "state.pt", params, opt, None, steps=0)
    _, other, other_opt = setup(width=7)
    with pytest.raises(SystemExit, match="does not match this model"):
        script.restore_pixel_state(script.load_pixel_state(tmp_path / "state.pt"), other, other_opt, None)


def test_a_step_budget_ignores_the_clock(script):
    """``--*-steps``: the schedule follows the step fraction alone, so a run repeats on any host."""
    budget = script.Budget(math.inf, max_steps=8)
    assert [budget.frac(s) for s in (0, 2, 8)] == [0.0, 0.25, 1.0]
    assert not budget.done(7) and budget.done(8)
    assert script.Budget(1e-9, max_steps=8).done(0)  # with minutes, whichever ends first


@pytest.mark.parametrize("warmup, first_decay", [(True, 2 / 11), (False, 0.9)])
def test_ema_warmup_only_for_weights_that_are_not_yet_an_average(script, warmup, first_decay):
    """A fresh run warms its EMA up (``(1 + n) / (10 + n)``); a continuation of a release, whose
    weights are already an average, averages at the full decay from its first step."""
    net, params, opt = setup()
    start = [p.detach().clone() for p in params]
    ema = script.EMA(params, 0.9, warmup=warmup)
    steps(net, params, opt, ema, 1, seed=1)
    for s, a, p in zip(ema.shadow, start, params):
        torch.testing.assert_close(s, first_decay * a + (1 - first_decay) * p.detach())


def test_a_continued_release_lists_the_runs_it_builds_on(script, tmp_path):
    """``--resume``: the new train_stats.json keeps the earlier runs' commands and minutes, oldest first."""
    import json

    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    (first / "train_stats.json").write_text(json.dumps({"command": "run 1", "device": "cpu", "total_minutes": 105.4}))
    assert script.earlier_runs(None) == [] and script.earlier_runs(tmp_path) == []
    (second / "train_stats.json").write_text(json.dumps(
        {"command": "run 2", "device": "cuda", "total_minutes": 30.0, "earlier_runs": script.earlier_runs(first)}))
    chain = script.earlier_runs(second)
    assert [(r["command"], r["device"], r["total_minutes"]) for r in chain] == [("run 1", "cpu", 105.4), ("run 2", "cuda", 30.0)]
    assert chain[0]["dir"] == str(first)


def test_vae_from_reads_a_run_directory_or_a_release(script, tmp_path):
    """``--vae-from``: a run directory's vae_stats.json, else a release's train_stats.json "vae" entry (the
    released demo is reproduced from the previous release this way); with neither it says what to pass."""
    import json

    release = Path(__file__).resolve().parents[3] / "plugins" / "flextok" / "demo"
    assert script.reused_vae_info(release) == json.loads((release / "train_stats.json").read_text())["vae"]
    (tmp_path / "vae_stats.json").write_text(json.dumps({"minutes": 1.5, "steps": 7}))
    assert script.reused_vae_info(tmp_path) == {"minutes": 1.5, "steps": 7}
    with pytest.raises(FileNotFoundError, match="vae_stats.json nor train_stats.json"):
        script.reused_vae_info(tmp_path / "empty")


def test_the_image_cache_is_used_only_for_the_images_it_was_written_for(script, tmp_path):
    """Adding a training image must not shift the cached arrays onto other names (the cache used to be
    read by position)."""
    a, b = np.zeros((2, 2, 3), np.uint8), np.full((3, 3, 3), 7, np.uint8)
    path = tmp_path / "imgs.npz"
    assert script.read_image_cache(path, ["a", "b"]) is None  # nothing cached yet
    script.write_image_cache(path, {"a": a, "b": b})
    got = script.read_image_cache(path, ["a", "b"])
    assert got is not None and (got["b"] == b).all() and got["a"].shape == a.shape
    assert script.read_image_cache(path, ["a", "new", "b"]) is None
    np.savez(path, **{"0": a, "1": b})  # written before the names were stored
    assert script.read_image_cache(path, ["a", "b"]) is None


def test_photos_need_the_folder_their_packages_are_unpacked_in(script, capsys):
    with pytest.raises(SystemExit):
        script.main(["--photos"])
    assert "--debian-root" in capsys.readouterr().err
    assert set(script.PHOTO_VALIDATION) <= set(script.PHOTO_SOURCES)
    assert not set(script.PHOTO_SOURCES) & (set(script.DEBIAN_SOURCES) | set(script.SOURCES))
    assert all(lic.split(" ")[0] in ("CC0-1.0", "CC-BY-4.0", "CC-BY-SA-3.0", "CC-BY-SA-4.0")
               for _, _, lic in script.PHOTO_SOURCES.values())


def test_a_float16_release_loads_as_the_float32_model_rounded(script, tmp_path):
    """``--weights-dtype float16``: FlexTok's file holds float16 (half the bytes), the loader reads it
    into the float32 model, and the weights are the trained ones rounded to float16 (the VAE stays
    float32)."""
    from safetensors import safe_open
    from zoo_plugins.flextok.model import FlexTok

    torch.manual_seed(0)
    model = FlexTok(script.flextok_config(16, 0.5, dim=32, depth=1)).eval()
    sizes = {}
    for name in script.WEIGHTS_DTYPES:
        script.write_release(model, model.vae.vae, tmp_path / name, name)
        path = tmp_path / name / "tiny" / "model.safetensors"
        with safe_open(str(path), "pt") as f:
            assert {f.get_slice(k).get_dtype() for k in f.keys()} == {"F16" if name == "float16" else "F32"}
        sizes[name] = path.stat().st_size
    assert sizes["float16"] < 0.6 * sizes["float32"]
    loaded = script.load_release(tmp_path / "float16")
    want = {k: v for k, v in model.state_dict().items() if not k.startswith("vae.")}
    got = loaded.state_dict()
    assert all(got[k].dtype == torch.float32 for k in want)
    assert all(torch.equal(got[k], v.half().float()) for k, v in want.items())
    assert all(torch.equal(got[k], v) for k, v in model.state_dict().items() if k.startswith("vae."))
    with pytest.raises(SystemExit):
        script.main(["--weights-dtype", "bfloat8"])
