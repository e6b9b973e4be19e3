"""Stable Diffusion 3 on diffusers modules: zoo's flow loop against the diffusers
StableDiffusion3Pipeline on the same tiny random modules and generator, the flow-matching grid
against FlowMatchEulerDiscreteScheduler, the release loaders, and the CLI through a stand-in hub."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("diffusers")
pytest.importorskip("sentencepiece")

import zoo  # noqa: E402
from zoo.errors import CheckpointError, InputError, TokenError  # noqa: E402
from zoo.sampling import flow_match_sigmas, flow_match_timestep  # noqa: E402
from zoo_plugins.diffusion.testing import TINY_SIZE, tiny_sd3, write_sd3_components, write_sd3_hub, write_sd3_release  # noqa: E402

S = TINY_SIZE


@pytest.fixture(scope="module")
def model():
    return tiny_sd3()


@pytest.fixture(scope="module")
def pipe(model):
    from zoo.compat.torchvision import ensure_torchvision

    ensure_torchvision()
    from diffusers import FlowMatchEulerDiscreteScheduler, StableDiffusion3Pipeline

    te, vae = model.component("text_encoders"), model.component("vae")
    return StableDiffusion3Pipeline(transformer=model.transformer, scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0), vae=vae.vae,
                                    text_encoder=te.clip_l, tokenizer=te.tokenizers[0], text_encoder_2=te.clip_g,
                                    tokenizer_2=te.tokenizers[1], text_encoder_3=te.t5, tokenizer_3=te.tokenizers[2])


@pytest.mark.parametrize("steps,shift,mu", [(28, 3.0, None), (4, 3.0, None), (1, 3.0, None), (10, 1.0, None), (8, 1.0, 0.9)])
def test_flow_match_grid_equals_the_diffusers_scheduler(steps, shift, mu):
    from zoo.compat.torchvision import ensure_torchvision

    ensure_torchvision()
    from diffusers import FlowMatchEulerDiscreteScheduler

    sched = FlowMatchEulerDiscreteScheduler(shift=shift, use_dynamic_shifting=mu is not None)
    sched.set_timesteps(steps, mu=mu)
    mine = flow_match_sigmas(steps, shift=shift, mu=mu)
    assert mine == sched.sigmas.tolist()
    assert [flow_match_timestep(s) for s in mine[:-1]] == sched.timesteps.tolist()


def _ref(pipe, prompts, neg, g, steps, n, output_type="latent"):
    return pipe(prompts, negative_prompt=neg, guidance_scale=g, num_inference_steps=steps, height=S, width=S,
                generator=torch.Generator().manual_seed(7), output_type=output_type, max_sequence_length=16,
                num_images_per_prompt=n).images


CASES = [  # prompts, negative prompt, guidance, steps, images per prompt
    (["a red fox"], None, 7.0, 4, 1),
    (["a red fox", "the lazy cat"], "blurry", 3.0, 3, 2),
    (["a cat"], None, 1.0, 2, 1),  # CFG off: B rows
]


@pytest.mark.parametrize("prompts,neg,g,steps,n", CASES)
@pytest.mark.parametrize("batched", [False, True])
def test_latents_match_the_diffusers_pipeline(model, pipe, prompts, neg, g, steps, n, batched):
    ref = _ref(pipe, prompts, neg, g, steps, n)
    model.config.batch_text_encoders = batched
    try:
        z = model.generate(prompts, neg, steps=steps, guidance_scale=g, height=S, width=S, num_images_per_prompt=n,
                           generator=torch.Generator().manual_seed(7), return_latents=True)
    finally:
        model.config.batch_text_encoders = False
    assert z.shape == ref.shape == (len(prompts) * n, 16, S // 8, S // 8)
    if batched and g > 1:  # one encoder batch for prompts + negatives: float rounding differs (ulps), amplified by CFG
        assert (z - ref).abs().max() <= 1e-3 * ref.abs().max()
    else:
        assert torch.equal(z, ref)


def test_images_match_the_pipeline(model, pipe):
    ref = _ref(pipe, ["a red fox"], None, 1.0, 3, 1, output_type="pt")
    img = model.generate("a red fox", steps=3, guidance_scale=1.0, seed=7)
    assert img.shape == (1, 3, S, S) and torch.allclose((img + 1) / 2, ref, atol=1e-5)


def test_text_encoders_without_t5_give_zeros_like_the_pipeline(model):
    from zoo_plugins.diffusion.sd3 import SD3TextEncoders

    te = model.component("text_encoders")
    no_t5 = SD3TextEncoders(te.clip_l, te.clip_g, None, te.tokenizers, joint_dim=te.joint_dim)
    states, pooled = no_t5.embed(["a fox"], 16)
    full, pooled_full = te.embed(["a fox"], 16)
    assert states.shape == full.shape and not states[:, 77:].any() and torch.equal(states[:, :77], full[:, :77])
    assert torch.equal(pooled, pooled_full)
    with pytest.raises(TokenError, match="cannot be decoded"):
        te.decode(te.encode("a fox"))


@pytest.mark.parametrize("kwargs,words", [(dict(height=24), "multiple of 16"), (dict(steps=0), "steps"), (dict(prompt=[]), "empty")])
def test_bad_input(model, kwargs, words):
    with pytest.raises(InputError, match=words):
        model.generate(**{"prompt": "a fox", "steps": 1, **kwargs})


@pytest.mark.parametrize("card,shards", [("sd3.medium", 1), ("sd3.sd3_5_large", 2)])  # 3.5 Large: sharded transformer + index
def test_release_folders_load_strictly(model, tmp_path, card, shards):
    write_sd3_release(tmp_path / "r", shards=shards)
    write_sd3_components(tmp_path / "r")
    loaded = zoo.load(card, weights=tmp_path / "r", max_sequence_length=16)
    te = zoo.load("sd3_text.sd3_medium", weights=tmp_path / "r")
    vae = zoo.load("sd3_vae.sd3_medium", weights=tmp_path / "r")
    loaded.use_components(text_encoders=te, vae=vae)
    assert loaded.config.scheduler["shift"] == 3.0
    mine, theirs = loaded.transformer.state_dict(), model.transformer.state_dict()
    assert mine.keys() == theirs.keys() and all(torch.equal(mine[k], theirs[k]) for k in mine)
    kw = dict(steps=2, guidance_scale=3.0, seed=1, return_latents=True)
    got, want = loaded.generate("a red fox", **kw), model.generate("a red fox", **kw)
    # same weights; a loaded copy's batch-1 encoder GEMMs may round differently (ulps, amplified by random weights)
    assert (got - want).abs().max() <= 1e-5 * want.abs().max()
    (tmp_path / "r" / "text_encoder_2" / "config.json").write_text('{"model_type": "t5"}')
    with pytest.raises(CheckpointError, match="clip_text_model"):
        zoo.load("sd3_text.sd3_medium", weights=tmp_path / "r")


def test_cli_generate_through_the_hub(tmp_path_factory, tmp_path):
    from click.testing import CliRunner
    from PIL import Image

    from zoo.cli import cli
    from zoo.testing.hub import HubStandIn, hub_env

    root = write_sd3_hub(tmp_path_factory.mktemp("hub"))
    out = tmp_path / "fox.png"
    with HubStandIn(root) as hub, hub_env(hub.url, tmp_path_factory.mktemp("cache")):
        res = CliRunner().invoke(cli, ["generate", "--model", "sd3", "a red fox", "--seed", "0", "--steps", "2", "--out", str(out)])
    assert res.exit_code == 0, res.output
    w, h = Image.open(out).size
    assert S <= w < 2 * S and S <= h < 2 * S


# ---------------------------------------------------------------- skip-layer guidance and dynamic shift (issue 25)
SLG_CASES = [  # layers, scale, start, stop, guidance, steps, prompts: the pipeline's skip_guidance_layers / skip_layer_guidance_*
    ((1,), 2.8, 0.01, 0.2, 7.0, 10, ["a red fox"]),  # the pipeline's defaults: the window holds step 1 of 10
    ((0, 1), 2.5, 0.0, 1.0, 4.5, 4, ["a red fox", "the lazy cat"]),  # every block skipped, steps 1..3
    ((1,), 1.5, -0.5, 0.6, 3.0, 5, ["a cat"]),  # window from step 0
    ((0,), 2.8, 0.0, 1.0, 1.0, 3, ["a cat"]),  # CFG off: the pipeline skips SLG too
]


@pytest.mark.parametrize("layers,scale,start,stop,g,steps,prompts", SLG_CASES)
def test_skip_layer_guidance_matches_the_pipeline(model, pipe, layers, scale, start, stop, g, steps, prompts):
    ref = pipe(prompts, guidance_scale=g, num_inference_steps=steps, height=S, width=S, generator=torch.Generator().manual_seed(3),
               output_type="latent", max_sequence_length=16, skip_guidance_layers=list(layers), skip_layer_guidance_scale=scale,
               skip_layer_guidance_start=start, skip_layer_guidance_stop=stop).images
    slg = {"layers": list(layers), "scale": scale, "start": start, "stop": stop}
    z = model.generate(prompts, steps=steps, guidance_scale=g, height=S, width=S, generator=torch.Generator().manual_seed(3),
                       return_latents=True, skip_layer_guidance=slg)
    assert torch.equal(z, ref)
    plain = model.generate(prompts, steps=steps, guidance_scale=g, seed=3, return_latents=True)
    assert torch.equal(plain, ref) == (g <= 1.0)  # SLG changed the result exactly where CFG runs


def test_skip_layer_guidance_from_the_config_and_turned_off(model):
    kw = dict(steps=4, guidance_scale=4.0, seed=1, return_latents=True)
    on = model.generate("a fox", skip_layer_guidance={"layers": [1], "start": 0.0, "stop": 1.0}, **kw)
    model.config.skip_layer_guidance = {"layers": [1], "start": 0.0, "stop": 1.0}
    try:
        assert torch.equal(model.generate("a fox", **kw), on)
        assert torch.equal(model.generate("a fox", skip_layer_guidance=False, **kw), model.generate("a fox", skip_layer_guidance={}, **kw))
        assert not torch.equal(model.generate("a fox", skip_layer_guidance=False, **kw), on)
    finally:
        model.config.skip_layer_guidance = None


@pytest.mark.parametrize("slg,words", [({"layers": [2]}, "do not exist"), ({"layers": []}, "non-empty"), ({"scale": 2.0}, "layers required"),
                                       ({"layers": [1], "start": 0.5, "stop": 0.1}, "start <= stop"), ("7,8", "SkipLayerGuidance")])
def test_bad_skip_layer_guidance(model, slg, words):
    with pytest.raises(InputError, match=words):
        model.generate("a fox", steps=1, guidance_scale=3.0, skip_layer_guidance=slg)


def test_the_sd3_5_medium_card_recommends_stabilitys_skip_layers():
    cfg = zoo.get_card("sd3.sd3_5_medium").config["skip_layer_guidance"]
    assert cfg == {"layers": [7, 8, 9], "scale": 2.5, "start": 0.01, "stop": 0.2}
    assert all("skip_layer_guidance" not in zoo.get_card(c).config for c in ("sd3.medium", "sd3.sd3_5_large", "sd3.sd3_5_large_turbo"))


SHIFT_CASES = [  # scheduler config, generate(mu=), size: the pipeline computes mu from the latent's patch count unless given
    ({"shift": 3.0}, None, S),
    ({"shift": 3.0}, 0.9, S),  # mu without use_dynamic_shifting: ignored by the scheduler, and by zoo
    ({"use_dynamic_shifting": True}, None, S),  # defaults: base 0.5 at 256 tokens, max 1.15 at 4096
    ({"use_dynamic_shifting": True, "base_shift": 0.2, "max_shift": 3.0, "base_image_seq_len": 4, "max_image_seq_len": 64}, None, 2 * S),
    ({"use_dynamic_shifting": True}, 1.7, S),
    ({"use_dynamic_shifting": True, "time_shift_type": "linear", "base_image_seq_len": 1, "max_image_seq_len": 16}, None, 2 * S),
]


@pytest.mark.parametrize("sched,mu,size", SHIFT_CASES)
def test_dynamic_shift_matches_the_pipeline(model, pipe, sched, mu, size):
    from diffusers import FlowMatchEulerDiscreteScheduler, StableDiffusion3Pipeline

    ref_pipe = StableDiffusion3Pipeline(**{**pipe.components, "scheduler": FlowMatchEulerDiscreteScheduler(**sched)})
    ref = ref_pipe("a red fox", guidance_scale=5.0, num_inference_steps=6, height=size, width=size, output_type="latent",
                   generator=torch.Generator().manual_seed(5), max_sequence_length=16, mu=mu).images
    old = model.config.scheduler
    model.config.scheduler = dict(sched)
    try:
        z = model.generate("a red fox", steps=6, guidance_scale=5.0, height=size, width=size, seed=5, return_latents=True, mu=mu)
        grid = model.sigmas(6, size, size, mu=mu)
    finally:
        model.config.scheduler = old
    assert grid == ref_pipe.scheduler.sigmas.tolist()
    assert torch.equal(z, ref)


def test_scheduler_options_zoo_does_not_reproduce_are_refused(model):
    from zoo.errors import ConfigError

    old = model.config.scheduler
    model.config.scheduler = {"shift": 3.0, "use_karras_sigmas": True, "shift_terminal": None}
    try:
        with pytest.raises(ConfigError, match="use_karras_sigmas"):
            model.generate("a fox", steps=2)
    finally:
        model.config.scheduler = old


def test_the_card_default_reaches_a_loaded_model_and_can_be_overridden(model, tmp_path):
    write_sd3_release(tmp_path / "r")
    write_sd3_components(tmp_path / "r")
    loaded = zoo.load("sd3.sd3_5_medium", weights=tmp_path / "r", max_sequence_length=16)
    assert loaded.config.skip_layer_guidance == {"layers": [7, 8, 9], "scale": 2.5, "start": 0.01, "stop": 0.2}
    with pytest.raises(InputError, match="do not exist: the model has 2 blocks"):  # the tiny release has 2 blocks, the card's layers 7..9
        loaded.generate("a fox", steps=1, guidance_scale=3.0)
    mine = zoo.load("sd3.sd3_5_medium", weights=tmp_path / "r", max_sequence_length=16, skip_layer_guidance={"layers": [1], "start": 0.0, "stop": 1.0})
    assert mine.config.skip_layer_guidance == {"layers": [1], "scale": 2.5, "start": 0.0, "stop": 1.0}  # merged onto the card's
    mine.use_components(text_encoders=model.component("text_encoders"), vae=model.component("vae"))
    kw = dict(steps=3, guidance_scale=3.0, seed=2, return_latents=True)
    assert torch.equal(mine.generate("a fox", **kw), model.generate("a fox", skip_layer_guidance={"layers": [1], "scale": 2.5, "start": 0.0, "stop": 1.0}, **kw))
    assert zoo.load("sd3.sd3_5_medium", weights=tmp_path / "r", max_sequence_length=16, skip_layer_guidance=None).config.skip_layer_guidance is None
