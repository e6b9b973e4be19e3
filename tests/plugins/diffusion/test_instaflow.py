"""InstaFlow / 2-Rectified Flow on diffusers modules: zoo's loop against the official
RectifiedFlowPipeline's recorded outputs (tests/fixtures/instaflow, recorded by
scripts/parity/record_instaflow.py from gnobitab/InstaFlow on the same tiny random modules and
seeds), the loop re-derived from the paper's Euler update, the release loaders, the CLI through a
stand-in hub, tome_sd on the UNet, and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

pytest.importorskip("diffusers")

import zoo  # noqa: E402
from zoo.errors import CheckpointError, InputError, InputTypeError, TokenError, ZooError  # noqa: E402
from zoo_plugins.diffusion.instaflow import unet_timestep  # noqa: E402
from zoo_plugins.diffusion.testing import TINY_SIZE, tiny_instaflow, write_instaflow_hub, write_instaflow_release  # noqa: E402

S = TINY_SIZE
FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "instaflow" / "parity.safetensors"


@pytest.fixture(scope="module")
def model():
    return tiny_instaflow()


@pytest.fixture(scope="module")
def recorded():
    from safetensors import safe_open
    from safetensors.torch import load_file

    with safe_open(str(FIXTURE), "pt") as f:
        meta = f.metadata()
    return load_file(str(FIXTURE)), json.loads(meta["cases"])


def test_the_fixture_covers_one_step_few_steps_cfg_and_negatives(recorded):
    _, cases = recorded
    assert {c[3] for c in cases} >= {1, 4, 25}  # steps
    assert any(c[2] > 1 and c[1] for c in cases) and any(c[2] <= 1 for c in cases)  # CFG with a negative; CFG off
    assert any(c[4] > 1 for c in cases) and any(c[6] != c[7] for c in cases)  # several images per prompt; not square


@pytest.mark.parametrize("i", range(5))
def test_latents_match_the_official_pipeline(model, recorded, i):
    tensors, cases = recorded
    prompts, neg, g, steps, n, seed, h, w = cases[i]
    ref = tensors[f"case{i}.latents"]
    z = model.generate(prompts, neg, steps=steps, guidance_scale=g, num_images_per_prompt=n, height=h, width=w,
                       generator=torch.Generator().manual_seed(seed), return_latents=True)
    assert z.shape == ref.shape == (len(prompts) * n, 4, h // 8, w // 8)
    assert (z - ref).abs().max() <= 1e-5 * ref.abs().max()  # bitwise equal on the machine that recorded it


def test_images_match_the_official_pipeline_and_follow_zoo_range(model, recorded):
    tensors, cases = recorded
    prompts, neg, g, steps, n, seed, h, w = cases[0]
    img = model.generate(prompts, neg, steps=steps, guidance_scale=g, height=h, width=w, seed=seed)
    assert img.shape == (1, 3, S, S) and img.min() >= -1 and img.max() <= 1
    assert torch.allclose((img + 1) / 2, tensors["case0.images"], atol=1e-5)


@pytest.mark.parametrize("steps", [1, 2, 3, 4, 7, 8, 25, 50, 100])
def test_unet_time_input_equals_the_pipelines_grid(steps):
    from zoo.sampling.flow import flow_timesteps

    official = [float(torch.ones(1) * ((1.0 - i / steps) * 1000.0)) for i in range(steps)]  # pipeline_rf.py's vec_t
    assert [unet_timestep(t) for t in flow_timesteps(steps)[:-1]] == official


@pytest.mark.parametrize("g", [1.0, 2.0])
def test_loop_equals_the_papers_euler_update(model, g):
    """x_{k+1} = x_k + v(x_k, t_k) / N with t_k = (1 - k/N) * 1000, CFG v_neg + w (v_text - v_neg)."""
    te = model.component("text_encoder")
    steps, seed = 3, 11
    text = te.embed(["a red fox"])
    neg = te.embed([""])
    x = torch.randn(1, 4, S // 8, S // 8, generator=torch.Generator().manual_seed(seed))
    for k in range(steps):
        t = torch.full((2,), (1.0 - k / steps) * 1000.0)
        with torch.no_grad():
            if g > 1:
                v_neg, v_text = model.unet(torch.cat([x, x]), t, encoder_hidden_states=torch.cat([neg, text])).sample.chunk(2)
                v = v_neg + g * (v_text - v_neg)
            else:
                v = model.unet(x, t[:1], encoder_hidden_states=text).sample
        x = x + v / steps
    z = model.generate("a red fox", steps=steps, guidance_scale=g, seed=seed, return_latents=True)
    assert torch.allclose(z, x, atol=1e-5 * float(x.abs().max()))


def test_prompt_seed_and_negative_prompt_change_the_result(model):
    kw = dict(steps=2, guidance_scale=2.0, return_latents=True)
    base = model.generate("a red fox", seed=0, **kw)
    assert torch.equal(base, model.generate("a red fox", seed=0, **kw))
    for other in (model.generate("a blue cat", seed=0, **kw), model.generate("a red fox", seed=1, **kw),
                  model.generate("a red fox", "a dog", seed=0, **kw)):
        assert (other - base).abs().max() > 1e-3


BAD = [
    (dict(prompt=[]), InputError, "empty"),
    (dict(prompt=3), InputTypeError, "string"),
    (dict(height=20), InputError, "multiple of 8"),
    (dict(width=-8), InputError, "multiple of 8"),
    (dict(steps=0), InputError, "steps"),
    (dict(guidance_scale=float("inf")), InputError, "finite"),
    (dict(prompt=["a", "b", "c"], negative_prompt=["x", "y"], guidance_scale=2.0), InputError, "negative prompts"),
    (dict(seed=1, generator=torch.Generator()), InputError, "not both"),
    (dict(num_images_per_prompt=0), InputError, "num_images_per_prompt"),
]


@pytest.mark.parametrize("kwargs,error,words", BAD)
def test_bad_input_is_refused_before_sampling(model, kwargs, error, words):
    kwargs = {"prompt": "a fox", "steps": 1, **kwargs}
    with pytest.raises(error, match=words):
        model.generate(**kwargs)


def test_text_encoder_interface(model):
    te = model.component("text_encoder")
    z = te.encode(["a red fox", "a cat"])
    assert z.values.shape == (2, 77, 32)
    with pytest.raises(TokenError, match="cannot be decoded"):
        te.decode(z)


def test_release_folder_loads_strictly_through_the_three_cards(model, tmp_path):
    root = write_instaflow_release(tmp_path / "r")
    loaded = zoo.load("instaflow", weights=root)
    loaded.use_components(text_encoder=zoo.load("clip_text.instaflow_0_9b", weights=root), vae=zoo.load("sd_vae.instaflow_0_9b", weights=root))
    kw = dict(steps=2, guidance_scale=1.5, height=S, width=S, seed=3)
    assert torch.equal(loaded.generate("a fox", return_latents=True, **kw), model.generate("a fox", return_latents=True, **kw))
    assert torch.equal(loaded.generate("a fox", **kw), model.generate("a fox", **kw))
    assert loaded.config.steps == 1 and zoo.load("rectified_flow", weights=root).config.steps == 25  # the cards' sampler defaults
    cfg = root / "unet" / "config.json"
    cfg.write_text(cfg.read_text().replace('"UNet2DConditionModel"', '"SD3Transformer2DModel"'))
    with pytest.raises(CheckpointError, match="SD3Transformer2DModel"):
        zoo.load("instaflow", weights=root)
    (root / "text_encoder" / "model.safetensors").unlink()
    with pytest.raises(CheckpointError):
        zoo.load("clip_text.instaflow_0_9b", weights=root)


def test_cli_generate_writes_a_png_with_components_resolved_on_demand(tmp_path_factory, tmp_path):
    from click.testing import CliRunner
    from PIL import Image

    from zoo.cli import cli
    from zoo.testing.hub import HubStandIn, hub_env

    root = write_instaflow_hub(tmp_path_factory.mktemp("hub"))
    out = tmp_path / "fox.png"
    with HubStandIn(root) as hub, hub_env(hub.url, tmp_path_factory.mktemp("cache")):
        res = CliRunner().invoke(cli, ["generate", "--model", "instaflow", "a red fox", "--seed", "0", "--out", str(out)])
    assert res.exit_code == 0, res.output
    w, h = Image.open(out).size  # one image in zoo's grid (with its margin)
    assert S <= w < 2 * S and S <= h < 2 * S
    fetched = {path.split("/resolve/")[-1].split("/", 1)[-1] for _, path in hub.requests if "/resolve/" in path}
    assert {"unet/diffusion_pytorch_model.safetensors", "text_encoder/model.safetensors", "tokenizer/vocab.json",
            "vae/diffusion_pytorch_model.safetensors"} <= fetched
    assert not any(p.startswith(("safety_checker/", "scheduler/")) for p in fetched)


def test_tome_sd_on_the_instaflow_unet(model):
    kw = dict(steps=2, guidance_scale=1.5, seed=0, return_latents=True)
    base = model.generate("a red fox", **kw)
    tome = zoo.load("tome_sd")
    with tome.apply(model, ratio=0.0):
        assert torch.equal(model.generate("a red fox", **kw), base)
    with tome.apply(model, ratio=0.5) as handle:
        merged = model.generate("a red fox", **kw)
    assert handle.merged_calls > 0 and not torch.equal(merged, base)
    assert torch.equal(model.generate("a red fox", **kw), base)


def test_a_random_build_refuses_to_build_a_text_encoder_it_cannot_tokenize_for():
    model = tiny_instaflow(components=False)
    model.components_pretrained = False  # what zoo.load(..., pretrained=False) sets
    with pytest.raises(ZooError, match="use_components"):
        model.generate("a fox")
