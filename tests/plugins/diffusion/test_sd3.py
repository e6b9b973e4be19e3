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
