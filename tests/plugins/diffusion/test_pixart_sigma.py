"""PixArt-Σ on diffusers modules: zoo's loop against the diffusers PixArtSigmaPipeline on the same
tiny random modules and generator, the diffusers-layout release loaders, the CLI end to end
through a stand-in hub, component sharing, and bad input."""

from __future__ import annotations

import importlib.util

import pytest
import torch

pytest.importorskip("diffusers")
pytest.importorskip("sentencepiece")

import zoo  # noqa: E402
from zoo.errors import CheckpointError, InputError, InputTypeError, TokenError  # noqa: E402
from zoo_plugins.diffusion.testing import TINY_SIZE, tiny_pixart, write_components_release, write_pixart_hub, write_pixart_release  # noqa: E402

S = TINY_SIZE


@pytest.fixture(scope="module")
def model():
    return tiny_pixart()


@pytest.fixture(scope="module")
def pipe(model):
    from zoo.compat.torchvision import ensure_torchvision

    ensure_torchvision()
    from diffusers import PixArtSigmaPipeline

    te, vae = model.component("text_encoder"), model.component("vae")
    return PixArtSigmaPipeline(tokenizer=te.tokenizer, text_encoder=te.encoder, vae=vae.vae, transformer=model.transformer,
                               scheduler=model.scheduler())


def _ref(pipe, prompts, neg, g, steps, n, output_type="latent"):
    return pipe(prompts, negative_prompt=neg or "", guidance_scale=g, num_inference_steps=steps, height=S, width=S,
                generator=torch.Generator().manual_seed(7), output_type=output_type, use_resolution_binning=False,
                clean_caption=False, max_sequence_length=24, num_images_per_prompt=n).images


CASES = [  # prompts, negative prompt, guidance, steps, images per prompt
    (["a red fox"], None, 4.5, 4, 1),
    (["a red fox", "the lazy cat on a sofa"], "blurry", 3.0, 3, 2),
    (["A Cat "], None, 1.0, 2, 1),  # CFG off; the pipeline lower-cases and strips
]


@pytest.mark.parametrize("prompts,neg,g,steps,n", CASES)
@pytest.mark.parametrize("trim", [False, True])
def test_latents_match_the_diffusers_pipeline(model, pipe, prompts, neg, g, steps, n, trim):
    ref = _ref(pipe, prompts, neg, g, steps, n)
    model.config.trim_text_padding = trim
    try:
        z = model.generate(prompts, neg, steps=steps, guidance_scale=g, height=S, width=S, num_images_per_prompt=n,
                           generator=torch.Generator().manual_seed(7), return_latents=True)
    finally:
        model.config.trim_text_padding = True
    assert z.shape == ref.shape == (len(prompts) * n, 4, S // 8, S // 8)
    if trim:  # T5 + cross-attention over the real tokens only: masked padding, equal up to rounding
        assert (z - ref).abs().max() <= 1e-5 * ref.abs().max()
    else:  # the same 24 padded tokens: the same numbers
        assert torch.equal(z, ref)


DIRTY = ("<b>A Red Fox</b> https://example.com/fox.jpg @bob #123 in the snow!!! FREE SHIPPING",
         "blurry &amp; <i>ugly</i> 1920x1080 IMG_0001.png")


@pytest.mark.parametrize("trim", [False, True])
def test_dirty_prompts_are_cleaned_as_the_pipeline_default(model, pipe, trim):
    pytest.importorskip("bs4")
    pytest.importorskip("ftfy")
    ref = pipe(DIRTY[0], negative_prompt=DIRTY[1], guidance_scale=4.5, num_inference_steps=3, height=S, width=S,
               generator=torch.Generator().manual_seed(7), output_type="latent", use_resolution_binning=False,
               max_sequence_length=24).images  # the pipeline's default: clean_caption=True
    model.config.trim_text_padding = trim
    try:
        kw = dict(steps=3, guidance_scale=4.5, height=S, width=S, return_latents=True)
        z = model.generate(DIRTY[0], DIRTY[1], generator=torch.Generator().manual_seed(7), **kw)
        raw = model.generate(DIRTY[0], DIRTY[1], generator=torch.Generator().manual_seed(7), clean_caption=False, **kw)
    finally:
        model.config.trim_text_padding = True
    assert torch.equal(z, ref) if not trim else (z - ref).abs().max() <= 1e-5 * ref.abs().max()
    assert (raw - ref).abs().max() > 1e-3  # cleaning changes the condition: the option is what makes them agree


def test_images_match_the_pipeline_and_follow_zoo_range(model, pipe):
    ref = _ref(pipe, ["a red fox"], None, 4.5, 3, 1, output_type="pt")  # [0, 1]
    img = model.generate("a red fox", steps=3, height=S, width=S, seed=7)
    assert img.shape == (1, 3, S, S) and img.min() >= -1 and img.max() <= 1
    assert torch.allclose((img + 1) / 2, ref, atol=1e-5)


def test_prompt_seed_and_negative_prompt_change_the_result(model):
    base = model.generate("a red fox", steps=2, seed=0, return_latents=True)
    assert torch.equal(base, model.generate("a red fox", steps=2, seed=0, return_latents=True))
    for other in (model.generate("a blue cat", steps=2, seed=0, return_latents=True),
                  model.generate("a red fox", steps=2, seed=1, return_latents=True),
                  model.generate("a red fox", "a dog", steps=2, seed=0, return_latents=True)):
        assert (other - base).abs().max() > 1e-3


BAD = [
    (dict(prompt=[]), InputError, "empty"),
    (dict(prompt=3), InputTypeError, "string"),
    (dict(height=20), InputError, "multiple of 16"),
    (dict(width=0), InputError, "multiple of 16"),
    (dict(steps=0), InputError, "steps"),
    (dict(guidance_scale=float("nan")), InputError, "finite"),
    (dict(prompt=["a", "b", "c"], negative_prompt=["x", "y"]), InputError, "negative prompts"),
    (dict(seed=1, generator=torch.Generator()), InputError, "not both"),
    (dict(num_images_per_prompt=0), InputError, "num_images_per_prompt"),
]


@pytest.mark.parametrize("kwargs,error,words", BAD)
def test_bad_input_is_refused_before_sampling(model, kwargs, error, words):
    kwargs = {"prompt": "a fox", "steps": 1, **kwargs}
    with pytest.raises(error, match=words):
        model.generate(**kwargs)


def test_text_encoder_and_vae_interfaces(model):
    te, vae = model.component("text_encoder"), model.component("vae")
    z = te.encode(["a red fox", "a cat on a sofa in the snow"])
    assert z.values.shape[0] == 2 and z.lengths.tolist()[0] < z.lengths.tolist()[1] == z.max_length
    with pytest.raises(TokenError, match="cannot be decoded"):
        te.decode(z)
    lat = vae.encode(torch.zeros(2, 3, S, S))
    assert lat.meta["grid"] == (S // 8, S // 8) and vae.decode(lat).shape == (2, 3, S, S)
    with pytest.raises(InputError, match="multiples of 8"):
        vae.encode(torch.zeros(1, 3, 20, 20))


def test_release_folders_load_strictly(model, tmp_path):
    write_pixart_release(tmp_path / "t")
    loaded = zoo.load("pixart_sigma", weights=tmp_path / "t").use_components(
        text_encoder=model.component("text_encoder"), vae=model.component("vae"))
    kw = dict(steps=2, height=S, width=S, return_latents=True)
    assert torch.equal(loaded.generate("a fox", seed=3, **kw), model.generate("a fox", seed=3, **kw))
    assert loaded.config.scheduler == {}  # the release's scheduler_config.json (diffusers defaults)
    # the components' release layout (T5 in 4 shards + index, spiece.model; VAE) loads through their cards
    write_components_release(tmp_path / "c")
    te = zoo.load("t5_encoder.pixart_sigma", weights=tmp_path / "c")
    ref = model.component("text_encoder")
    assert torch.equal(te.embed(["a red fox"], 24)[0], ref.embed(["a red fox"], 24)[0])
    vae = zoo.load("sdxl_vae.pixart_sigma", weights=tmp_path / "c")
    x = torch.rand(1, 3, S, S) * 2 - 1
    assert torch.equal(vae.encode(x).values, model.component("vae").encode(x).values)
    # another model's config is refused before anything is built
    cfg = tmp_path / "t" / "transformer" / "config.json"
    cfg.write_text(cfg.read_text().replace('"PixArtTransformer2DModel"', '"SD3Transformer2DModel"'))
    with pytest.raises(CheckpointError, match="SD3Transformer2DModel"):
        zoo.load("pixart_sigma", weights=tmp_path / "t")


@pytest.fixture(scope="module")
def stand_in_hub(tmp_path_factory):
    from zoo.testing.hub import HubStandIn, hub_env

    root = write_pixart_hub(tmp_path_factory.mktemp("hub"), repos=("PixArt-alpha/PixArt-Sigma-XL-2-1024-MS",
                                                                   "PixArt-alpha/PixArt-Sigma-XL-2-512-MS"))
    with HubStandIn(root) as hub, hub_env(hub.url, tmp_path_factory.mktemp("cache")):
        yield hub


def test_cli_generate_writes_a_png_with_components_resolved_on_demand(stand_in_hub, tmp_path):
    from click.testing import CliRunner
    from PIL import Image

    from zoo.cli import cli

    out = tmp_path / "fox.png"
    res = CliRunner().invoke(cli, ["generate", "--model", "pixart_sigma", "a red fox", "--seed", "0", "--steps", "2", "--out", str(out)])
    assert res.exit_code == 0, res.output
    w, h = Image.open(out).size  # one image in zoo's grid (with its margin)
    assert S <= w < 2 * S and S <= h < 2 * S
    fetched = {path.split("/resolve/")[-1].split("/", 1)[-1] for _, path in stand_in_hub.requests if "/resolve/" in path}
    assert {"text_encoder/model-00004-of-00004.safetensors", "vae/diffusion_pytorch_model.safetensors"} <= fetched


def test_cli_no_clean_caption_only_lower_cases_the_prompt(stand_in_hub, tmp_path):
    """``--no-clean-caption`` reaches ``generate(clean_caption=False)``: a prompt that differs only in
    case gives the same picture, and (where bs4 + ftfy are installed) the default cleaning, which
    drops the URL and the tags, gives another."""
    from click.testing import CliRunner

    from zoo.cli import cli

    def run(*args: str) -> bytes:
        out = tmp_path / f"{len(list(tmp_path.iterdir()))}.png"
        res = CliRunner().invoke(cli, ["generate", "--model", "pixart_sigma", *args, "--seed", "0", "--steps", "2", "--out", str(out)])
        assert res.exit_code == 0, res.output
        return out.read_bytes()

    raw = run("<b>A Red Fox</b> https://example.com/fox.jpg", "--no-clean-caption")
    assert raw == run("<b>a red fox</b> https://example.com/FOX.jpg", "--no-clean-caption")
    if importlib.util.find_spec("bs4") and importlib.util.find_spec("ftfy"):
        assert raw != run("<b>A Red Fox</b> https://example.com/fox.jpg")


def test_components_are_shared_between_cards_in_one_process(stand_in_hub):
    a = zoo.load("pixart_sigma.xl_2_1024_ms")
    b = zoo.load("pixart_sigma.xl_2_512_ms")
    assert a.component("text_encoder") is b.component("text_encoder")
    assert a.component("vae") is b.component("vae")


def test_a_random_build_refuses_to_build_a_text_encoder_it_cannot_tokenize_for():
    from zoo.errors import ZooError

    model = tiny_pixart(components=False)
    model.components_pretrained = False  # what zoo.load(..., pretrained=False) sets
    with pytest.raises(ZooError, match="use_components"):
        model.generate("a fox", steps=1)


# ------------------------------------------------------------------ PixArt-Σ Nitro (amd/PixArt-Sigma-Nitro): one step at timestep 400
NITRO = dict(num_inference_steps=1, guidance_scale=0.0, timesteps=[400])  # its README and core/tools/gen_samples.py


@pytest.mark.parametrize("prompts,n", [(["a red fox"], 1), (["a red fox", "the lazy cat on a sofa"], 2)])
def test_nitro_sampling_matches_the_pipeline_with_explicit_timesteps(model, pipe, prompts, n):
    ref = pipe(prompts, height=S, width=S, generator=torch.Generator().manual_seed(5), output_type="latent", use_resolution_binning=False,
               clean_caption=False, max_sequence_length=24, num_images_per_prompt=n, **NITRO).images
    nitro = tiny_pixart(components=False, steps=1, guidance_scale=0.0, timesteps=[400])
    nitro.transformer.load_state_dict(model.transformer.state_dict())
    nitro.use_components(text_encoder=model.component("text_encoder"), vae=model.component("vae"))
    z = nitro.generate(prompts, height=S, width=S, num_images_per_prompt=n, generator=torch.Generator().manual_seed(5), return_latents=True)
    assert (z - ref).abs().max() <= 1e-5 * ref.abs().max()  # bitwise at 24 padded tokens; T5 trimmed: rounding only
    explicit = model.generate(prompts, steps=1, guidance_scale=0.0, timesteps=[400], height=S, width=S, num_images_per_prompt=n,
                              generator=torch.Generator().manual_seed(5), return_latents=True)
    assert torch.equal(explicit, z)
    uniform = model.generate(prompts, steps=1, guidance_scale=0.0, height=S, width=S, num_images_per_prompt=n,
                             generator=torch.Generator().manual_seed(5), return_latents=True)
    assert (uniform - z).abs().max() > 1e-3  # one uniform step starts at 999, not 400: the timesteps matter
    # the card's timesteps apply to its own step count only: steps=2 samples the uniform 2-step grid
    two = nitro.generate(prompts[0], steps=2, height=S, width=S, seed=5, return_latents=True)
    assert torch.equal(two, model.generate(prompts[0], steps=2, guidance_scale=0.0, height=S, width=S, seed=5, return_latents=True))


@pytest.mark.parametrize("kwargs,words", [(dict(timesteps=[100, 400]), "decreasing"), (dict(timesteps=[1000]), "decreasing"),
                                          (dict(timesteps=[400.5]), "whole"), (dict(timesteps=[400, 200], steps=3), "disagrees")])
def test_bad_timesteps_are_refused(model, kwargs, words):
    with pytest.raises(InputError, match=words):
        model.generate("a fox", **kwargs)


def test_nitro_release_file_loads_strictly_into_the_cards_architecture(model, tmp_path):
    from safetensors.torch import save_file

    from zoo_plugins.diffusion.testing import TINY_PIXART

    path = tmp_path / "pixart-sigma-nitro.safetensors"
    save_file({k: v.contiguous() for k, v in model.transformer.state_dict().items()}, str(path))
    nitro = zoo.load("pixart_sigma.nitro", weights=path, transformer=dict(TINY_PIXART))
    assert (nitro.config.steps, nitro.config.guidance_scale, nitro.config.timesteps) == (1, 0.0, [400])
    nitro.use_components(text_encoder=model.component("text_encoder"), vae=model.component("vae"))
    z = nitro.generate("a fox", height=S, width=S, seed=2, return_latents=True)
    assert torch.equal(z, model.generate("a fox", steps=1, guidance_scale=0.0, timesteps=[400], height=S, width=S, seed=2, return_latents=True))
    save_file({k: v.contiguous() for k, v in list(model.transformer.state_dict().items())[1:]}, str(path))  # one key short
    with pytest.raises(CheckpointError):
        zoo.load("pixart_sigma.nitro", weights=path, transformer=dict(TINY_PIXART))


# ------------------------------------------------------------------ resolution binning (the pipeline's use_resolution_binning)
@pytest.fixture(scope="module")
def model_256(model):
    """The tiny PixArt-Σ at sample_size 32 (a '256 px' transformer: diffusers has aspect-ratio bins for it)."""
    from zoo_plugins.diffusion.config import PixArtSigmaConfig
    from zoo_plugins.diffusion.pixart import PixArtSigma
    from zoo_plugins.diffusion.testing import TINY_PIXART, _seed_all

    m = PixArtSigma(PixArtSigmaConfig(transformer={**TINY_PIXART, "sample_size": 32}, max_sequence_length=24))
    _seed_all(m.transformer, 2)
    return m.eval().use_components(text_encoder=model.component("text_encoder"), vae=model.component("vae"))


@pytest.mark.parametrize("sample_size", [32, 64, 128, 256])
def test_binned_size_picks_the_pipelines_bin(model_256, sample_size):
    from diffusers.image_processor import PixArtImageProcessor

    from zoo_plugins.diffusion.pixart import aspect_ratio_bins

    bins = aspect_ratio_bins(sample_size)
    model_256.transformer.config.sample_size = sample_size  # binned_size reads only this
    try:
        for h, w in [(100, 400), (200, 300), (256, 256), (1000, 700), (512, 2048), (999, 17), (17, 999), (640, 480)]:
            assert model_256.binned_size(h, w) == PixArtImageProcessor.classify_height_width_bin(h, w, ratios=bins)
    finally:
        model_256.transformer.config.sample_size = 32


def test_resize_and_crop_equals_the_pipelines():
    from diffusers.image_processor import PixArtImageProcessor

    from zoo_plugins.diffusion.pixart import resize_and_crop

    x = torch.randn(2, 3, 96, 160, generator=torch.Generator().manual_seed(0))
    for h, w in [(96, 160), (100, 100), (50, 300), (200, 120)]:
        assert torch.equal(resize_and_crop(x, h, w), PixArtImageProcessor.resize_and_crop_tensor(x, w, h))


@pytest.mark.parametrize("height,width", [(200, 300), (100, 400), (256, 256), (250, 130)])
def test_resolution_binning_matches_the_pipeline(model_256, height, width):
    from diffusers import PixArtSigmaPipeline

    te, vae = model_256.component("text_encoder"), model_256.component("vae")
    pipe = PixArtSigmaPipeline(tokenizer=te.tokenizer, text_encoder=te.encoder, vae=vae.vae, transformer=model_256.transformer,
                               scheduler=model_256.scheduler())
    kw = dict(guidance_scale=4.5, num_inference_steps=2, height=height, width=width, clean_caption=False, max_sequence_length=24)
    ref_z = pipe("a red fox", generator=torch.Generator().manual_seed(1), output_type="latent", **kw).images
    ref = pipe("a red fox", generator=torch.Generator().manual_seed(1), output_type="pt", **kw).images  # [0, 1]
    mine = dict(steps=2, guidance_scale=4.5, height=height, width=width, resolution_binning=True)
    z = model_256.generate("a red fox", seed=1, return_latents=True, **mine)
    assert z.shape == ref_z.shape and tuple(8 * s for s in z.shape[-2:]) == model_256.binned_size(height, width)
    assert (z - ref_z).abs().max() <= 1e-5 * ref_z.abs().max()
    img = model_256.generate("a red fox", seed=1, **mine)
    assert img.shape == (1, 3, height, width) and torch.allclose((img + 1) / 2, ref, atol=1e-5)


def test_resolution_binning_needs_a_trained_size(model):
    with pytest.raises(InputError, match="sample_size 4"):
        model.generate("a fox", steps=1, resolution_binning=True)
