"""Nitro-E: zoo's E-MMDiT and loop against the official EMMDiTPipeline's recorded outputs
(tests/fixtures/nitro_e/parity.safetensors: AMD-AGI/Nitro-E at 9f12d73 with diffusers 0.32.2 and
transformers 4.49, run from a mirror on these tiny random parts: the weights are regenerated here
from the same seeds, and a checksum guards them), the release loaders (official file names, GRPO
LoRA merge), the components and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

pytest.importorskip("diffusers")

import zoo  # noqa: E402
from zoo.errors import CheckpointError, ConfigError, InputError, TokenError  # noqa: E402
from zoo_plugins.diffusion import nitro_e_testing as T  # noqa: E402
from zoo_plugins.diffusion.emmdit import EMMDiT, asa_merge, asa_split  # noqa: E402
from zoo_plugins.diffusion.nitro_e import NitroE, NitroEConfig  # noqa: E402
from zoo_plugins.diffusion.nitro_e_builders import merge_lora  # noqa: E402

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "nitro_e" / "parity.safetensors"
CONFIGS = {"asa": dict(T.TINY_NITRO_E), "noasa": {**T.TINY_NITRO_E, "sample_size": 8, "use_sub_attn": False}}


@pytest.fixture(scope="module")
def parts():
    return T.tiny_llama_encoder(), T.tiny_dcae()


@pytest.fixture(scope="module")
def recorded():
    from safetensors import safe_open
    from safetensors.torch import load_file

    with safe_open(str(FIXTURE), "pt") as f:
        meta = f.metadata()
    return load_file(str(FIXTURE)), json.loads(meta["cases"]), json.loads(meta["checksums"])


def _model(kind: str, parts) -> NitroE:
    model = NitroE(NitroEConfig(transformer=CONFIGS[kind], vae_scale_factor=2, max_sequence_length=T.TINY_TEXT_LENGTH))
    T._seed_all(model.transformer, 32)
    return model.eval().use_components(text_encoder=parts[0], vae=parts[1])


def test_the_fixture_covers_asa_cfg_batches_and_the_distilled_mode(recorded):
    _, cases, _ = recorded
    assert {k.split(".")[0] for k in cases} == {"asa", "noasa"}
    assert any(c["guidance_scale"] > 1 and c.get("negative_prompt") for c in cases.values())
    assert any(c["guidance_scale"] <= 1 for c in cases.values()) and any(c.get("num_images_per_prompt", 1) > 1 for c in cases.values())


@pytest.mark.parametrize("key", ["asa.cfg", "asa.batch", "asa.nocfg", "noasa.cfg"])
def test_latents_and_images_match_the_official_pipeline(parts, recorded, key):
    tensors, cases, sums = recorded
    kind = key.split(".")[0]
    model = _model(kind, parts)
    total = sum(float(v.double().abs().sum()) for v in model.transformer.state_dict().values())
    assert abs(total - sums[kind]) <= 1e-6 * sums[kind], "the seeded tiny weights changed: re-record the fixture"
    c = cases[key]
    kw = dict(steps=c["num_inference_steps"], guidance_scale=c["guidance_scale"], negative_prompt=c.get("negative_prompt") or None,
              num_images_per_prompt=c.get("num_images_per_prompt", 1))
    z = model.generate(c["prompt"], **kw, generator=torch.Generator().manual_seed(c["seed"]), return_latents=True)
    ref = tensors[f"{key}.latents"]
    assert z.shape == ref.shape
    assert (z - ref).abs().max() <= 1e-5 * ref.abs().max()  # bitwise equal on the machine that recorded it
    images = model.generate(c["prompt"], **kw, generator=torch.Generator().manual_seed(c["seed"]))
    assert ((images + 1) / 2 - tensors[f"{key}.images"]).abs().max() <= 1e-5  # the pipeline's [0, 1] output


def test_the_seed_decides_the_noise_and_cfg_changes_the_result(parts):
    model = _model("asa", parts)
    a = model.generate("a red fox", steps=2, seed=0, return_latents=True)
    assert torch.equal(a, model.generate("a red fox", steps=2, seed=0, return_latents=True))
    assert not torch.allclose(a, model.generate("a red fox", steps=2, seed=1, return_latents=True))
    assert not torch.allclose(a, model.generate("a red fox", steps=2, seed=0, guidance_scale=1.0, return_latents=True))


def test_prompts_and_negatives_are_cleaned_as_the_pipeline_default(parts):
    pytest.importorskip("bs4")
    pytest.importorskip("ftfy")
    from zoo_plugins.diffusion.captions import clean_caption

    model = _model("asa", parts)
    dirty = ("<b>A Red Fox</b> https://example.com/fox.jpg @bob #123 in the snow!!! FREE SHIPPING", "blurry &amp; <i>ugly</i> IMG_1.png")
    kw = dict(steps=2, guidance_scale=4.5, seed=3, return_latents=True)
    z = model.generate(*dirty, **kw)
    # the official pipeline's clean_caption=True text is clean_caption's (tests/plugins/diffusion/test_captions.py)
    assert torch.equal(z, model.generate(*map(clean_caption, dirty), clean_caption=False, **kw))
    assert not torch.allclose(z, model.generate(*dirty, clean_caption=False, **kw))


@pytest.mark.parametrize("ratio,run", [(4, 1), (4, 4), (2, 2)])
def test_asa_split_is_the_einops_pattern_and_merge_inverts_it(ratio, run):
    x = torch.randn(2, 32, 3)
    b, n, c = x.shape
    expected = x.view(b, n // (ratio * run), ratio, run, c).permute(0, 2, 1, 3, 4).reshape(b * ratio, n // ratio, c)
    assert torch.equal(asa_split(x, ratio, run), expected)
    assert torch.equal(asa_merge(asa_split(x, ratio, run), ratio, run), x)
    # subset s holds tokens whose index // run is s modulo ratio
    idx = asa_split(torch.arange(n, dtype=torch.float32).view(1, n, 1), ratio, run)[:, :, 0]
    assert all(((idx[s].long() // run) % ratio == s).all() for s in range(ratio))


def test_the_official_key_layout_and_a_strict_load():
    net = EMMDiT(**CONFIGS["asa"])
    keys = set(net.state_dict())
    assert "pos_embed_lv0" not in keys and "pos_embed.pos_embed" in keys  # non-persistent / persistent as the reference
    assert {"block_groups.0.0.attn.to_add_out.weight", "block_groups.2.3.attn.add_q_proj.weight", "tokencompressor.0.0.body4x.3.weight",
            "tokenreconstructor.0.0.mergers.2.weight", "adaln_single.emb.timestep_embedder.linear_2.bias",
            "block_groups.1.15.scale_shift_scale_c", "block_groups.0.0.ff_context.net.0.proj.weight"} <= keys
    assert not any(k.startswith("block_groups.2.3.") and ("_c" in k.rsplit(".", 1)[-1] or "context" in k.split(".")[3]) for k in keys
                   if "norm1_context" not in k)  # the last block keeps no text path
    assert len(net.block_groups[0]) + len(net.block_groups[1]) + len(net.block_groups[2]) == 24
    ratios = [(b.subsample_ratio, b.subsample_seq_len) for g in net.block_groups for b in g]
    assert ratios[:3] == [(1, 1), (4, 1), (4, 4)] and ratios[3:6] == ratios[:3]


def _release(tmp_path: Path, grpo: bool = False) -> tuple[Path, dict]:
    root = T.write_nitro_e_release(tmp_path / "nitro", grpo="ckpt_grpo_512px" if grpo else None)
    return root, {"transformer": dict(T.TINY_NITRO_E), "vae_scale_factor": 2, "max_sequence_length": T.TINY_TEXT_LENGTH}


def test_the_release_file_loads_strictly_through_the_card(tmp_path):
    root, over = _release(tmp_path)
    model = zoo.load("nitro_e.512px", weights=root, **over)
    ref = T.tiny_nitro_e(components=False)
    assert all(torch.equal(v, ref.transformer.state_dict()[k]) for k, v in model.transformer.state_dict().items())
    from safetensors.torch import load_file, save_file

    state = load_file(str(root / "Nitro-E-512px.safetensors"))
    state["extra.weight"] = torch.zeros(1)
    save_file(state, str(root / "Nitro-E-512px.safetensors"))
    with pytest.raises(CheckpointError, match="extra.weight"):
        zoo.load("nitro_e.512px", weights=root, **over)


def test_the_grpo_card_merges_its_lora_as_peft_does(tmp_path):
    root, over = _release(tmp_path, grpo=True)
    model = zoo.load("nitro_e.512px_grpo", weights=root, **over)
    base = T.tiny_nitro_e(components=False).transformer
    cfg, adapter = T.lora_adapter(base)
    scale = cfg["lora_alpha"] / cfg["r"]
    x = torch.randn(3, 16)
    name = "block_groups.1.4.attn.to_q"
    lin = dict(base.named_modules())[name]
    a, b = adapter[f"base_model.model.{name}.lora_A.weight"], adapter[f"base_model.model.{name}.lora_B.weight"]
    peft_forward = lin(x) + scale * (x @ a.T @ b.T)  # PEFT's unmerged LoRA forward
    merged = dict(model.transformer.named_modules())[name]
    assert torch.allclose(merged(x), peft_forward, atol=1e-5)
    untouched = "block_groups.1.4.attn.add_k_proj.weight"
    assert torch.equal(model.transformer.state_dict()[untouched], base.state_dict()[untouched])



def test_the_grpo_card_equals_peft_merge_and_unload_in_the_official_pipeline(parts, tmp_path):
    """tests/fixtures/nitro_e/grpo.safetensors: the reference's GRPO path (EMMDiTTransformer, peft's
    PeftModel.from_pretrained(...).merge_and_unload() as init_pipe does, EMMDiTPipeline) on this release."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    path = FIXTURE.parent / "grpo.safetensors"
    with safe_open(str(path), "pt") as f:
        meta = f.metadata()
    case, checksum = json.loads(meta["case"]), json.loads(meta["merged_checksum"])
    root, over = _release(tmp_path, grpo=True)
    model = zoo.load("nitro_e.512px_grpo", weights=root, **over).use_components(text_encoder=parts[0], vae=parts[1])
    total = sum(float(v.double().abs().sum()) for v in model.transformer.state_dict().values())
    assert abs(total - checksum) <= 1e-9 * checksum  # the merged weights (bitwise equal to peft's when recorded)
    z = model.generate(case["prompt"], case["negative_prompt"], steps=case["num_inference_steps"], guidance_scale=case["guidance_scale"],
                       generator=torch.Generator().manual_seed(case["seed"]), return_latents=True)
    ref = load_file(str(path))["grpo.latents"]
    assert (z - ref).abs().max() <= 1e-5 * ref.abs().max()

@pytest.mark.parametrize("config,adapter,message", [
    ({"r": 1, "use_dora": True}, {}, "plain LoRA"),
    ({"r": 1, "rank_pattern": {"x": 2}}, {}, "rank_pattern"),
    ({"r": 1}, {"base_model.model.lin.lora_A.weight": torch.ones(1, 3)}, "only one of"),
    ({"r": 1}, {"base_model.model.nope.lora_A.weight": torch.ones(1, 3), "base_model.model.nope.lora_B.weight": torch.ones(2, 1)}, "do not have"),
    ({"r": 1}, {"base_model.model.lin.lora_A.weight": torch.ones(1, 4), "base_model.model.lin.lora_B.weight": torch.ones(2, 1)}, "does not fit"),
    ({"r": 1}, {"base_model.model.lin.lora_embedding_A": torch.ones(1, 3)}, "unexpected key"),
])
def test_lora_adapters_zoo_cannot_merge_are_refused(config, adapter, message):
    with pytest.raises(CheckpointError, match=message):
        merge_lora({"lin.weight": torch.zeros(2, 3)}, config, adapter)


def test_the_component_releases_load(tmp_path):
    enc = zoo.load("llama_text.llama_3_2_1b", weights=T.write_llama_release(tmp_path / "llama"))
    ref = T.tiny_llama_encoder()
    a, b = enc.embed(["a red fox"], 8)[0], ref.embed(["a red fox"], 8)[0]
    assert a.shape == (1, 8, 16) and torch.equal(a, b)
    assert enc.encode("a red fox").lengths.tolist() == [5]
    with pytest.raises(TokenError):
        enc.decode(None)
    vae = zoo.load("dc_ae.f32c32_sana_1_0", weights=T.write_dcae_release(tmp_path / "dcae"))
    img = torch.rand(1, 3, 32, 32) * 2 - 1
    assert torch.equal(vae.encode(img).values, T.tiny_dcae().encode(img).values)
    assert tuple(vae.decode(vae.encode(img)).shape) == (1, 3, 32, 32)


@pytest.mark.parametrize("kwargs,error,message", [
    ({"height": 64, "width": 64}, InputError, "32x32 images only"),
    ({"height": 33}, InputError, "multiple of 2"),
    ({"steps": 0}, InputError, "steps"),
    ({"num_images_per_prompt": 0}, InputError, "num_images_per_prompt"),
    ({"negative_prompt": ["a", "b"]}, InputError, "negative prompts"),
])
def test_bad_input_is_refused_before_any_work(parts, kwargs, error, message):
    with pytest.raises(error, match=message):
        _model("asa", parts).generate("a red fox", **kwargs)


def test_bad_configs_name_the_problem():
    with pytest.raises(ConfigError, match="caption_projection_dim"):
        EMMDiT(**{**CONFIGS["asa"], "caption_projection_dim": 8})
    with pytest.raises(ConfigError, match="block_split_stage"):
        EMMDiT(**CONFIGS["asa"], block_split_stage=(2, 2, 2))
    with pytest.raises(ConfigError, match="multiple of 4"):
        EMMDiT(**{**CONFIGS["noasa"], "sample_size": 6})
    with pytest.raises(ConfigError, match="20 \\(compressed\\)"):
        EMMDiT(**{**CONFIGS["asa"], "sample_size": 8})  # 64 tokens fit, the 16 + 4 compressed ones do not
    EMMDiT(**{**CONFIGS["noasa"], "sample_size": 8})  # without ASA any multiple of 4 works
    with pytest.raises(ConfigError, match="max_sequence_length"):
        NitroE(NitroEConfig(transformer=CONFIGS["asa"], max_sequence_length=120))


@pytest.mark.parametrize("card", ["nitro_e.512px", "nitro_e.512px_grpo", "nitro_e.512px_dist", "nitro_e.1024px", "nitro_e.1024px_grpo",
                                  "nitro_e.1024px_dist"])
def test_every_card_builds_the_official_key_and_shape_manifest(card):
    """tests/fixtures/nitro_e/manifests.json: the reference's EMMDiTTransformer as init_pipe builds it at 512 and 1024 px."""
    manifests = json.loads((FIXTURE.parent / "manifests.json").read_text())["manifests"]
    cfg = zoo.get_card(card).config["transformer"]
    with torch.device("meta"):
        net = EMMDiT(**cfg)
    found = {k: list(v.shape) for k, v in net.state_dict().items()}
    assert found == manifests["1024px" if cfg["sample_size"] == 32 else "512px"]
    assert net.use_sub_attn == (cfg["sample_size"] == 16)
    assert sum(p.numel() for p in net.parameters()) == 302_449_952


class _TinyCards:
    """Tiny cards of the three Nitro-E builders (the real cards' configs are full size and hold no config file to shrink)."""

    from zoo.hookspecs import hookimpl

    @hookimpl
    def register_cards(self, register):
        lic = {"code": "MIT", "weights": "test"}
        register({"name": "nitro_e.tiny_test", "kind": "generator", "plugin": "nitro_e", "modality": "image", "license": lic,
                  "hub_repo": "test/nitro-e", "files": ["Nitro-E-512px.safetensors"],
                  "config": {"transformer": dict(T.TINY_NITRO_E), "vae_scale_factor": 2, "max_sequence_length": T.TINY_TEXT_LENGTH,
                             "text_encoder": "llama_text.tiny_test", "vae": "dc_ae.tiny_test", "steps": 2}})
        register({"name": "llama_text.tiny_test", "kind": "tokenizer", "plugin": "llama_text", "modality": "text", "license": lic,
                  "hub_repo": "test/llama", "files": ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"]})
        register({"name": "dc_ae.tiny_test", "kind": "tokenizer", "plugin": "dc_ae", "modality": "image", "license": lic,
                  "hub_repo": "test/dcae", "files": ["config.json", "diffusion_pytorch_model.safetensors"]})


def test_cli_generate_writes_a_png_with_components_resolved_on_demand(tmp_path_factory, tmp_path):
    from click.testing import CliRunner
    from PIL import Image

    from zoo.cli import cli
    from zoo.testing.hub import HubStandIn, hub_env
    from zoo.testing.plugins import temporary_plugin

    root = tmp_path_factory.mktemp("hub")
    T.write_nitro_e_release(root / "test" / "nitro-e")
    T.write_llama_release(root / "test" / "llama")
    T.write_dcae_release(root / "test" / "dcae")
    out = tmp_path / "fox.png"
    with temporary_plugin(_TinyCards()), HubStandIn(root) as hub, hub_env(hub.url, tmp_path_factory.mktemp("cache")):
        res = CliRunner().invoke(cli, ["generate", "--model", "nitro_e.tiny_test", "a red fox", "--seed", "0", "--out", str(out)])
    assert res.exit_code == 0, res.output
    w, h = Image.open(out).size  # one 32 px image in zoo's grid (with its margin)
    assert 32 <= w < 64 and 32 <= h < 64
    fetched = {path.split("/resolve/")[-1].split("/", 1)[-1] for _, path in hub.requests if "/resolve/" in path}
    assert {"Nitro-E-512px.safetensors", "model.safetensors", "tokenizer.json", "diffusion_pytorch_model.safetensors"} <= fetched
