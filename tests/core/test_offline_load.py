"""`zoo.load(card, weights=PATH)` with a self-contained release file loads with HF_HUB_OFFLINE=1, an
empty cache and a hub that would record any request -- for every registered builder.

Each row writes a small release in the builder's format from the committed fixtures (or a seeded
tiny model) and loads it through a catalogue card of that builder. FlexTok is the one family with
a dependency (its VAE card): a file that carries the VAE weights and scaling factor needs nothing
else; a file without them asks for the VAE card, which offline is a clear error.
"""

from __future__ import annotations

import json
import types
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

import zoo
from zoo.errors import CheckpointError, ConfigError, HubError
from zoo.hookspecs import hookimpl
from zoo.registry import get_registry
from zoo.testing.plugins import temporary_plugin
from zoo.testing.weights import seeded_state_dict, state_manifest

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SMALL_WAV = {"n_filters": 4, "dimension": 16, "codebook_size": 64, "backbone_dim": 64, "intermediate_dim": 96, "num_layers": 2}


def _card(builder: str) -> str:
    """A catalogue card of ``builder`` with hub weights (the first in natural order)."""
    return next(n for n in zoo.list_models() if zoo.get_card(n).plugin == builder and zoo.get_card(n).hub_repo)


def _save(path: Path, state: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.contiguous() for k, v in state.items()}
    if path.suffix == ".safetensors":
        save_file(state, str(path))
    else:
        torch.save(state, path)
    return path


def _seeded(model: torch.nn.Module) -> dict:
    return seeded_state_dict(state_manifest(model), seed=0)


# ----------------------------------------------------------------- one writer per builder
# each returns (card name, weights path, config overrides)


def _titok(tmp: Path):
    from zoo_plugins.titok.config import TiTokConfig, from_reference_config
    from zoo_plugins.titok.model import TiTok

    ref = json.loads((FIXTURES / "titok" / "cases.json").read_text())["legacy_vq"]["config"]
    cfg = from_reference_config(ref)
    name = next(n for n in zoo.list_models("titok.*") if "config.json" in zoo.get_card(n).files)
    folder = tmp / "titok"  # the hub layout: model.safetensors + the reference config.json
    _save(folder / "model.safetensors", _seeded(TiTok(TiTokConfig(**cfg))))
    (folder / "config.json").write_text(json.dumps(ref))
    (folder / "optimizer_states.pt").write_bytes(b"not weights of the model")  # a side file is ignored
    return name, folder, {}


def _maskgit_vqgan(tmp: Path):
    cfg = json.loads((FIXTURES / "titok" / "vqgan.json").read_text())["config"]
    name = _card("maskgit_vqgan")
    model = zoo.load(name, pretrained=False, **cfg)
    return name, _save(tmp / "vqgan" / zoo.get_card(name).files[0], _seeded(model)), cfg


def _wavtokenizer(tmp: Path):
    from zoo_plugins.wavtokenizer.config import WavTokenizerConfig
    from zoo_plugins.wavtokenizer.model import WavTokenizer

    small = SMALL_WAV
    model = WavTokenizer(WavTokenizerConfig(**small, ratios=[8, 5, 4, 2], n_fft=1280, hop_length=320))
    name = next(n for n in zoo.list_models("wavtokenizer.*") if len(zoo.get_card(n).files) == 2 and "75" in n)
    folder = tmp / "wavtokenizer"  # any names: one .ckpt and one .yaml identify the pair
    folder.mkdir()
    torch.save({"state_dict": _seeded(model)}, folder / "my_checkpoint.ckpt")
    (folder / "my_config.yaml").write_text(_wavtokenizer_yaml(small, [8, 5, 4, 2], 1280, 320))
    return name, folder, {}


def _wavtokenizer_yaml(small: dict, ratios: list[int], n_fft: int, hop: int) -> str:
    import yaml

    return yaml.safe_dump({"model": {"init_args": {
        "feature_extractor": {"init_args": {"bandwidths": [6.6], "sample_rate": 24000, "encodec_ratios": ratios,
                                            "n_filters": small["n_filters"], "dimension": small["dimension"],
                                            "codebook_size": small["codebook_size"]}},
        "backbone": {"init_args": {"input_channels": small["dimension"], "dim": small["backbone_dim"],
                                   "intermediate_dim": small["intermediate_dim"], "num_layers": small["num_layers"]}},
        "head": {"init_args": {"dim": small["backbone_dim"], "n_fft": n_fft, "hop_length": hop, "padding": "same"}},
    }}})


def _rar(tmp: Path):
    from zoo_plugins.rar.config import RARConfig
    from zoo_plugins.rar.model import RAR

    cfg = json.loads((FIXTURES / "rar" / "cases.json").read_text())["config"]
    name = _card("rar")
    return name, _save(tmp / "rar" / zoo.get_card(name).files[0], _seeded(RAR(RARConfig(**cfg)))), cfg


def _maskgit(tmp: Path):
    cases = json.loads((FIXTURES / "maskgit" / "cases.json").read_text())["cases"]
    case = next(c for c in cases.values() if c["config"].get("arch", "bert") == "bert") if isinstance(cases, dict) else cases[0]
    cfg = dict(case["config"])
    name = _card("maskgit")
    model = zoo.load(name, pretrained=False, **cfg)
    return name, _save(tmp / "maskgit" / "model.safetensors", _seeded(model)), cfg


def _outetts(tmp: Path):
    cfg = json.loads((FIXTURES / "outetts" / "cases.json").read_text())["config"]
    name = _card("outetts")
    model = zoo.load(name, pretrained=False, **cfg)
    return name, _save(tmp / "outetts" / "model.safetensors", _seeded(model)), cfg


def _flextok_vae(tmp: Path):
    cfg = {"_class_name": "AutoencoderKL", "block_out_channels": [8, 16], "norm_num_groups": 4, "latent_channels": 4,
           "layers_per_block": 1, "down_block_types": ["DownEncoderBlock2D"] * 2, "up_block_types": ["UpDecoderBlock2D"] * 2}
    name = _card("flextok_vae")
    folder = tmp / "vae"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(cfg))
    from zoo_plugins.flextok.vae import AutoencoderKL

    _save(folder / "diffusion_pytorch_model.safetensors", _seeded(AutoencoderKL.from_config(cfg)))
    return name, folder, {}


TINY_FLEXTOK = "offlinetest.flextok"


@hookimpl
def _flextok_card(register):
    """A FlexTok card like the catalogue's (VAE card as a dependency) at the fixtures' tiny VAE size."""
    from zoo_plugins.flextok.testing import TINY_VAE

    register({"name": TINY_FLEXTOK, "kind": "tokenizer", "plugin": "flextok", "modality": "image", "license": {"code": "test"},
              "hub_repo": "org/flextok-tiny", "files": ["model.safetensors"], "dependencies": {"vae": "flextok_vae.c16"},
              "config": {"vae": dict(TINY_VAE)}})


def _flextok_file(tmp: Path, with_vae: bool) -> Path:
    from zoo_plugins.flextok.builder import FlexTokBuilder
    from zoo_plugins.flextok.testing import TINY_VAE

    from zoo.builders import CheckpointFiles
    from zoo.config import merge_config
    from zoo.weights import no_init

    header = json.loads((FIXTURES / "flextok" / "tiny_base.json").read_text())["metadata"]
    path = tmp / ("with_vae" if with_vae else "without_vae") / "model.safetensors"
    path.parent.mkdir(parents=True)
    save_file({"placeholder": torch.zeros(1)}, str(path), metadata=header)
    builder = FlexTokBuilder()
    ckpt = builder.read_checkpoint(CheckpointFiles({"model.safetensors": path}))
    config = merge_config(builder.config_class, [("card", {"vae": dict(TINY_VAE)}), ("checkpoint", ckpt.config)])
    with no_init():
        state = _seeded(builder.build(config))
    if not with_vae:
        state = {k: v for k, v in state.items() if not k.startswith("vae.vae.")}
    save_file({k: v.contiguous() for k, v in state.items()}, str(path), metadata=header)
    return path


def _flextok(tmp: Path):
    return TINY_FLEXTOK, _flextok_file(tmp, with_vae=True), {}


def _conv_family_state(family: str, fixture: str) -> tuple[dict, dict]:
    """(release-layout seeded state dict, small config) from a conv-core family's committed fixture."""
    meta = json.loads((FIXTURES / family / f"{fixture}.json").read_text())
    return seeded_state_dict({k: (tuple(s), d) for k, (s, d) in meta["manifest"].items()}, seed=0), meta["config"]


def _llamagen_vq(tmp: Path):
    state, cfg = _conv_family_state("llamagen_vq", "small")
    name = _card("llamagen_vq")
    path = tmp / "llamagen" / zoo.get_card(name).files[0]
    path.parent.mkdir(parents=True)
    torch.save({"model": state}, path)
    return name, path, cfg


def _tokenflow(tmp: Path):
    from tests.plugins.tokenflow.test_tokenflow import _fixture, reference_state

    state = reference_state(_fixture("clipb"))  # reference layout, small widths
    cfg = dict(codebook_size=512, z_channels=32, ch=32, num_res_blocks=1, encoder_ch_mult=[1] * 5, decoder_ch_mult=[1] * 5,
               decoder_ch=32, decoder_num_res_blocks=2, teacher_width=64, teacher_layers=2, teacher_heads=2,
               vqkd_decoder_heads=2)
    path = tmp / "tokenflow" / zoo.get_card("tokenflow.clipb_32k").files[0]
    path.parent.mkdir(parents=True)
    torch.save({"model": state}, path)
    return "tokenflow.clipb_32k", path, cfg



_TINY_DINOV2 = dict(embed_dim=32, depth=2, heads=2)


def _dinov2_state() -> dict:
    from zoo.nn.backbones import DINOv2

    return _seeded(DINOv2(**_TINY_DINOV2, num_register_tokens=4))


def _dinov2(tmp: Path):  # off-Hub card: the .pth as downloaded from weights_url
    name = "dinov2.vitb14_reg4"
    return name, _save(tmp / "dinov2" / zoo.get_card(name).files[0], _dinov2_state()), dict(_TINY_DINOV2)


def _digit(tmp: Path):  # a folder with the centroids and the DINOv2 release beside them
    import numpy as np

    name = "digit.base_8k"
    folder = tmp / "digit"
    _save(folder / zoo.get_card("dinov2.vitb14_reg4").files[0], _dinov2_state())
    np.save(folder / zoo.get_card(name).files[0], np.random.default_rng(0).standard_normal((16, 32)).astype(np.float32))
    return name, folder, dict(_TINY_DINOV2, layer=1)


def _hita(tmp: Path):  # the release (no DINOv2 inside) + the DINOv2 .pth beside it
    from tests.plugins.hita.test_hita import SMALL, dino_state, release_state

    fx = torch.load(FIXTURES / "hita" / "hita.pt", weights_only=True)
    folder = tmp / "hita"
    _save(folder / zoo.get_card("dinov2.vitl14_reg4").files[0], dino_state(fx))
    torch.save({"ema": release_state(fx, "vanilla")}, folder / "hita-tok.pt")
    return "hita.vanilla", folder, dict(SMALL)


def _meditok(tmp: Path):  # the bare state dict build_meditok loads
    from tests.plugins.meditok.test_meditok import SMALL, release_state

    fx = torch.load(FIXTURES / "meditok" / "meditok.pt", weights_only=True)
    path = tmp / "meditok" / zoo.get_card("meditok.simple_v1").files[0]
    path.parent.mkdir(parents=True)
    torch.save(release_state(fx), path)
    return "meditok.simple_v1", path, dict(SMALL)

def _mar_vae(tmp: Path):
    state, cfg = _conv_family_state("kl_vae", "mar_kl16")
    name = _card("mar_vae")
    return name, _save(tmp / "mar" / zoo.get_card(name).files[0], state), cfg


def _va_vae(tmp: Path):
    state, cfg = _conv_family_state("kl_vae", "va_vae_f16d32")
    name = _card("va_vae")
    folder = tmp / "vavae"
    folder.mkdir()
    torch.save({"state_dict": state}, folder / zoo.get_card(name).files[0])
    c = cfg["embed_dim"]
    torch.save({"mean": torch.zeros(1, c, 1, 1), "std": torch.ones(1, c, 1, 1)}, folder / "latents_stats.pt")
    return name, folder, cfg


def _snac(tmp: Path):
    from zoo_plugins.snac.testing import SMALL, parity_state_dict

    from zoo.testing.weights import load_manifest

    folder = tmp / "snac"  # the hub repo's two files, config.json describing the small test model
    folder.mkdir()
    torch.save(parity_state_dict(load_manifest(FIXTURES / "snac" / "manifest_plain.json")), folder / "pytorch_model.bin")
    (folder / "config.json").write_text(json.dumps(SMALL["plain"]))
    return "snac.24khz", folder, {}


def _speechtokenizer(tmp: Path):
    from zoo_plugins.speechtokenizer.testing import SMALL, parity_state_dict

    from zoo.testing.weights import load_manifest

    name = _card("speechtokenizer")
    folder = tmp / "speechtokenizer"
    for rel in zoo.get_card(name).files:  # the repo layout: speechtokenizer_hubert_avg/{SpeechTokenizer.pt, config.json}
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
    weights, config = zoo.get_card(name).files
    torch.save(parity_state_dict(load_manifest(FIXTURES / "speechtokenizer" / "manifest_elu.json")), folder / weights)
    (folder / config).write_text(json.dumps({**SMALL["elu"], "batch_size": 6}))
    return name, folder, {}


def _hf_codec(family: str):
    """A transformers-format repo (save_pretrained: config.json, model.safetensors, preprocessor_config.json) of a tiny config."""

    def write(tmp: Path):
        pytest.importorskip("transformers", reason="the transformers codecs need the zoo[transformers] extra")
        from zoo_plugins.hf_codecs.testing import tiny_hf_config

        name = _card(family)
        folder = tmp / family
        torch.manual_seed(0)
        model = zoo.load(name, pretrained=False, hf=tiny_hf_config(family))
        model.codec.save_pretrained(folder)
        if family == "xcodec2":  # its feature extractor needs torchaudio; the card's file is still expected
            (folder / "preprocessor_config.json").write_text("{}")
        else:
            model.feature_extractor().save_pretrained(folder)
        return name, folder, {}

    return write


def _languagecodec(tmp: Path):
    from zoo_plugins.languagecodec.testing import parity_state_dict

    from zoo.testing.weights import load_manifest

    name = "languagecodec.paper_8nq"  # Google Drive weights: no hub repo, weights=PATH is the only way
    path = tmp / "languagecodec" / zoo.get_card(name).files[0]
    path.parent.mkdir(parents=True)
    torch.save({"state_dict": parity_state_dict(load_manifest(FIXTURES / "languagecodec" / "manifest_small.json"))}, path)
    return name, path, {}


def _wetok(tmp: Path):
    from zoo_plugins.wetok.config import WeTokConfig
    from zoo_plugins.wetok.model import WeTok
    from zoo_plugins.wetok.testing import release_state_dict

    cfg = {"ch": 32, "ch_mult": [1, 2], "num_res_blocks": 1, "z_channels": 8, "n_embed": 16, "num_codebooks": 2}
    with torch.device("meta"):
        manifest = state_manifest(WeTok(WeTokConfig(**cfg)))
    name = _card("wetok")
    path = tmp / "wetok" / zoo.get_card(name).files[0]  # <domain>/<variant>/WeTok.ckpt
    path.parent.mkdir(parents=True)
    torch.save({"state_dict": release_state_dict(manifest)}, path)
    return name, path, cfg


def _gigatok(tmp: Path):
    import argparse

    from zoo_plugins.gigatok.config import GigaTokConfig
    from zoo_plugins.gigatok.model import GigaTok

    cfg = {"encoder_size": "t", "decoder_size": "t", "vit_sizes": {"t": [64, 1, 2]}, "ch": 32, "encoder_ch_mult": [1, 2],
           "decoder_ch_mult": [1, 2], "num_res_blocks": 1, "z_channels": 32, "codebook_size": 64,
           "num_latent_tokens": 16, "image_size": 16}
    with torch.device("meta"):
        manifest = state_manifest(GigaTok(GigaTokConfig(**cfg)))
    name = "gigatok.s_s"  # weights off the Hub (Google Drive): only weights=PATH loads it
    path = tmp / "gigatok" / zoo.get_card(name).files[0]
    path.parent.mkdir(parents=True)
    torch.save({"ema": seeded_state_dict(manifest), "args": argparse.Namespace(ema=True)}, path)
    return name, path, cfg


def _var(tmp: Path):
    small = json.loads((FIXTURES / "var" / "small.json").read_text())
    man = {k: (tuple(v[0]), v[1]) for k, v in small["var"]["manifests"]["plain"].items()}
    vae = small["vae"]["config"]
    cfg = {**small["var"]["cases"]["plain"], "num_classes": small["var"]["num_classes"], "patch_nums": vae["v_patch_nums"],
           "vae_channels": vae["z_channels"], "vocab_size": vae["vocab_size"]}
    return "var.d16", _save(tmp / "var" / "var_d16.pth", seeded_state_dict(man)), cfg


def _var_vqvae(tmp: Path):
    small = json.loads((FIXTURES / "var" / "small.json").read_text())
    man = {k: (tuple(v[0]), v[1]) for k, v in small["vae"]["manifest"].items()}
    return "var_vqvae.ch160v4096z32", _save(tmp / "var" / "vae_ch160v4096z32.pth", seeded_state_dict(man)), small["vae"]["config"]


def _mar(tmp: Path):
    """The official layout: checkpoint-last.pth with model_ema (loaded), model/optimizer/args (dropped)."""
    import argparse

    fix = json.loads((FIXTURES / "mar" / "cases.json").read_text())
    man = {k: (tuple(v[0]), v[1]) for k, v in fix["manifest"].items()}
    path = tmp / "mar" / "checkpoint-last.pth"
    path.parent.mkdir(parents=True)
    torch.save({"model": seeded_state_dict(man, seed=1), "model_ema": seeded_state_dict(man), "optimizer": {}, "epoch": 799,
                "args": argparse.Namespace(model="mar_base")}, path)
    return "mar.base", path, fix["config"]


def _lightningdit(tmp: Path):
    """A train.py checkpoint: {model, ema, opt, config}; the ema entry is loaded."""
    fix = json.loads((FIXTURES / "lightningdit" / "cases.json").read_text())["configs"]["small"]
    man = {k: (tuple(v[0]), v[1]) for k, v in fix["manifest"].items()}
    path = tmp / "lightningdit" / zoo.get_card("lightningdit.xl_800ep").files[0]
    path.parent.mkdir(parents=True)
    torch.save({"model": seeded_state_dict(man, seed=1), "ema": seeded_state_dict(man), "opt": {}, "config": {"model": {}}}, path)
    return "lightningdit.xl_800ep", path, fix["config"]


def _larp(tmp: Path):
    """The hub layout: model.safetensors with the prior (dropped by name) + the LARPTokenizer kwargs as config.json."""
    from zoo_plugins.larp.config import LARPConfig, to_reference_config

    fix = json.loads((FIXTURES / "larp" / "cases.json").read_text())
    man = {k: (tuple(v[0]), v[1]) for k, v in fix["manifest"].items()}
    folder = tmp / "larp"
    _save(folder / "model.safetensors", seeded_state_dict(man))
    (folder / "config.json").write_text(json.dumps(to_reference_config(LARPConfig(**fix["config"]))))
    return "larp.l_long", folder, {}


def _flowar(tmp: Path):
    small = json.loads((FIXTURES / "flowar" / "small.json").read_text())
    man = {k: (tuple(v[0]), v[1]) for k, v in small["manifests"]["selfattn"].items()}
    return "flowar.s", _save(tmp / "flowar" / "FlowAR-S.pth", seeded_state_dict(man)), dict(small["configs"]["selfattn"])


def _xar(tmp: Path):
    small = json.loads((FIXTURES / "xar" / "small.json").read_text())
    man = {k: (tuple(v[0]), v[1]) for k, v in small["manifests"]["narrow"].items()}
    return "xar.b", _save(tmp / "xar" / "xAR-B.pth", seeded_state_dict(man)), dict(small["configs"]["narrow"])


def _point_bert(tmp: Path):
    """Off the Hub (Tsinghua Cloud): the training checkpoint with base_model under DDP's module. prefix."""
    from zoo_plugins.pointbert.testing import release_state_dict

    fix = json.loads((FIXTURES / "pointbert" / "cases.json").read_text())
    man = {k: (tuple(v[0]), v[1]) for k, v in fix["manifest"].items()}
    path = tmp / "pointbert" / "dVAE.pth"
    path.parent.mkdir(parents=True)
    torch.save({"base_model": {"module." + k: v for k, v in release_state_dict(man).items()}, "epoch": 300}, path)
    return "point_bert.dvae_shapenet", path, fix["config"]


def _omnitokenizer(tmp: Path):
    """The Lightning layout: state_dict with discriminators + LPIPS (dropped by name), hyper_parameters.args a Namespace."""
    import argparse

    fix = json.loads((FIXTURES / "omnitokenizer" / "cases.json").read_text())["cases"]["vq"]
    man = {k: (tuple(v[0]), v[1]) for k, v in fix["manifest"].items()}
    state = seeded_state_dict(man)
    state.update({"image_discriminator.model0.0.weight": torch.zeros(2), "perceptual_model.net.slice1.0.weight": torch.zeros(2)})
    path = tmp / "omnitokenizer" / "imagenet_k600.ckpt"
    path.parent.mkdir(parents=True)
    args = argparse.Namespace(**fix["config"], perceptual_weight=4.0, gpus=8, accelerator="ddp")
    torch.save({"state_dict": state, "hyper_parameters": {"args": args}, "epoch": 3}, path)
    return "omnitokenizer.imagenet_k600", path, {}


def _text_tokenizer(tmp: Path):
    """The hub layout of a tokenizer repo: tokenizer.json + tokenizer_config.json + special_tokens_map.json."""
    from zoo_plugins.text_tokenizers.testing import kl3m_like, write_release

    return "kl3m.004_128k_cased", write_release(tmp / "kl3m", kl3m_like(300)), {}


def _pixart_sigma(tmp: Path):
    """The diffusers layout: transformer/{config.json, diffusion_pytorch_model.safetensors} + scheduler/ (components: other cards)."""
    from zoo_plugins.diffusion.testing import write_pixart_release

    return "pixart_sigma.xl_2_1024_ms", write_pixart_release(tmp / "pixart"), {}


def _t5_encoder(tmp: Path):
    """text_encoder/ (4 shards + index, config.json) and tokenizer/ (spiece.model + jsons), as PixArt-Σ's components repo."""
    from zoo_plugins.diffusion.testing import write_components_release

    return "t5_encoder.pixart_sigma", write_components_release(tmp / "components"), {}


def _sd3(tmp: Path):
    """An SD3 repo's transformer/ + scheduler/ (the encoders and VAE are other cards over the same repo)."""
    from zoo_plugins.diffusion.testing import write_sd3_release

    return "sd3.medium", write_sd3_release(tmp / "sd3"), {}


def _sd3_text(tmp: Path):
    """text_encoder{,_2,_3}/ (CLIP-L, CLIP-G, T5 in 2 shards) + tokenizer{,_2,_3}/ of an SD3 repo."""
    from zoo_plugins.diffusion.testing import write_sd3_components

    return "sd3_text.sd3_medium", write_sd3_components(tmp / "sd3"), {}


def _instaflow(tmp: Path):
    """An InstaFlow repo (diffusers pipeline folder): unet/ for the generator card (text encoder and VAE: other cards)."""
    from zoo_plugins.diffusion.testing import write_instaflow_release

    return "instaflow.0_9b", write_instaflow_release(tmp / "instaflow"), {}


def _clip_text(tmp: Path):
    """text_encoder/ (CLIPTextModel, model.safetensors) + tokenizer/ (vocab.json, merges.txt) of an SD 1.5-layout repo."""
    from zoo_plugins.diffusion.testing import write_instaflow_release

    return "clip_text.instaflow_0_9b", write_instaflow_release(tmp / "instaflow"), {}


def _diffusers_vae(tmp: Path):
    from zoo_plugins.diffusion.testing import write_vae_release

    return "sdxl_vae.pixart_sigma", write_vae_release(tmp / "vae"), {}


def _vitok_v2(tmp: Path):
    from safetensors.torch import save_file as save

    meta = json.loads((FIXTURES / "vitok" / "small.json").read_text())
    state = seeded_state_dict({k: (tuple(v), d) for k, (v, d) in meta["manifest"].items()}, seed=0)
    folder = tmp / "vitok"  # the hub layout: encoder.safetensors + decoder.safetensors
    folder.mkdir()
    enc = {k: v for k, v in state.items() if k.startswith(("patch_embed.", "to_code.", "encoder_blocks."))}
    save(enc, str(folder / "encoder.safetensors"))
    save({k: v for k, v in state.items() if k not in enc}, str(folder / "decoder.safetensors"))
    return _card("vitok_v2"), folder, {"variant": meta["variant"]}


def _instella_bae(tmp: Path):
    meta = json.loads((FIXTURES / "instella_bae" / "small.json").read_text())
    state = seeded_state_dict({k: (tuple(v), d) for k, (v, d) in meta["manifest"].items()}, seed=0)
    name = _card("instella_bae")
    return name, _save(tmp / "instella" / "model.safetensors", state), dict(meta["config"], image_size=32)


def _llmlingua2(tmp: Path):
    """The hub layout (config.json, model.safetensors, tokenizer.json, tokenizer_config.json, special_tokens_map.json) of a tiny classifier."""
    pytest.importorskip("transformers", reason="LLMLingua-2 needs the zoo[llm] extra")
    from tests.plugins.llmlingua2.tiny import write_model

    name = _card("llmlingua2")
    return name, write_model(tmp / "llmlingua2", "bert" if "bert" in name else "xlm-roberta"), {}


def _mingtok(tmp: Path):  # the transformers layout: config.json (read as data) + model.safetensors
    meta = json.loads((FIXTURES / "mingtok" / "small.json").read_text())
    folder = tmp / "mingtok"
    _save(folder / "model.safetensors", seeded_state_dict({k: (tuple(v), d) for k, (v, d) in meta["manifest"].items()}, seed=0))
    (folder / "config.json").write_text(json.dumps(meta["config"]))
    return _card("mingtok"), folder, {"image_size": 64}


def _nitro_e(tmp: Path):
    """A single Nitro-E-512px.safetensors at the root (no config file: the card's config, shrunk here)."""
    from zoo_plugins.diffusion.nitro_e_testing import TINY_NITRO_E, TINY_TEXT_LENGTH, write_nitro_e_release

    return "nitro_e.512px", write_nitro_e_release(tmp / "nitro_e"), {"transformer": dict(TINY_NITRO_E), "vae_scale_factor": 2,
                                                                    "max_sequence_length": TINY_TEXT_LENGTH}


def _llama_text(tmp: Path):
    """A Llama folder: config.json, model.safetensors (the causal LM's model.* keys), tokenizer.json + jsons."""
    from zoo_plugins.diffusion.nitro_e_testing import write_llama_release

    return "llama_text.llama_3_2_1b", write_llama_release(tmp / "llama"), {}


def _dc_ae(tmp: Path):
    from zoo_plugins.diffusion.nitro_e_testing import write_dcae_release

    return "dc_ae.f32c32_sana_1_0", write_dcae_release(tmp / "dcae"), {}


WRITERS = {
    "llmlingua2": _llmlingua2,
    "text_tokenizer": _text_tokenizer,
    "wetok": _wetok,
    "gigatok": _gigatok,
    **{family: _hf_codec(family) for family in ("encodec", "dac", "mimi", "xcodec", "xcodec2")},
    "languagecodec": _languagecodec,
    "snac": _snac,
    "speechtokenizer": _speechtokenizer,
    "titok": _titok,
    "maskgit_vqgan": _maskgit_vqgan,
    "wavtokenizer": _wavtokenizer,
    "rar": _rar,
    "maskgit": _maskgit,
    "outetts": _outetts,
    "flextok_vae": _flextok_vae,
    "flextok": _flextok,
    "llamagen_vq": _llamagen_vq,
    "tokenflow": _tokenflow,
    "dinov2": _dinov2,
    "digit": _digit,
    "hita": _hita,
    "meditok": _meditok,
    "mar_vae": _mar_vae,
    "va_vae": _va_vae,
    "var": _var,
    "var_vqvae": _var_vqvae,
    "mar": _mar,
    "lightningdit": _lightningdit,
    "larp": _larp,
    "point_bert": _point_bert,
    "omnitokenizer": _omnitokenizer,
    "flowar": _flowar,
    "xar": _xar,
    "vitok_v2": _vitok_v2,
    "instella_bae": _instella_bae,
    "mingtok": _mingtok,
    "pixart_sigma": _pixart_sigma,
    "t5_encoder": _t5_encoder,
    "diffusers_vae": _diffusers_vae,
    "sd3": _sd3,
    "sd3_text": _sd3_text,
    "instaflow": _instaflow,
    "clip_text": _clip_text,
    "nitro_e": _nitro_e,
    "llama_text": _llama_text,
    "dc_ae": _dc_ae,
}
NO_WEIGHTS = {"reducers", "flextok_ar", "kv_cache"}  # no published weights: nothing to load from a file


def test_the_table_covers_every_registered_builder():
    builders = {c.plugin for c in get_registry().cards.values()}
    assert builders - NO_WEIGHTS <= set(WRITERS), f"add a writer for {sorted(builders - NO_WEIGHTS - set(WRITERS))}"
    for name in NO_WEIGHTS & builders:
        assert not any(zoo.get_card(n).hub_repo for n in zoo.list_models() if zoo.get_card(n).plugin == name)


@pytest.fixture
def offline_empty_cache(hub_stand_in, monkeypatch, tmp_path):
    """HF_HUB_OFFLINE=1, an empty cache, and a hub endpoint that records any request."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with temporary_plugin(types.SimpleNamespace(register_cards=_flextok_card), "offlinetest"):
        yield hub_stand_in
    assert not any(hub_stand_in.cache_dir.rglob("*.safetensors"))


@pytest.mark.parametrize("builder", sorted(WRITERS))
def test_a_self_contained_release_loads_offline(builder, offline_empty_cache, tmp_path):
    name, weights, overrides = WRITERS[builder](tmp_path)
    model = zoo.load(name, weights=weights, **overrides)
    assert model.card.name == name
    assert offline_empty_cache.requests == []  # not one request, not even a HEAD
    assert not offline_empty_cache.cache_dir.exists() or not any(offline_empty_cache.cache_dir.rglob("*"))


def test_flextok_without_its_vae_asks_for_the_vae_card(offline_empty_cache, tmp_path):
    """The same file minus the vae.vae.* weights needs flextok_vae.c16: offline that is a clear error."""
    path = _flextok_file(tmp_path, with_vae=False)
    with pytest.raises(HubError, match=r"EPFL-VILAB/flextok_vae_c16/.* not in the local cache .* offline"):
        zoo.load(TINY_FLEXTOK, weights=path)
    assert offline_empty_cache.requests == []


def test_flextok_vae_weights_equal_with_and_without_the_dependency(offline_empty_cache, tmp_path):
    """Self-contained: the VAE comes from the file (same tensors as written)."""
    from safetensors.torch import load_file

    path = _flextok_file(tmp_path, with_vae=True)
    model = zoo.load(TINY_FLEXTOK, weights=path)
    written = {k: v for k, v in load_file(str(path)).items() if k.startswith("vae.vae.")}
    state = model.state_dict()
    assert written and all(torch.equal(state[k], v) for k, v in written.items())
    assert model.config.vae.scaling_factor == 0.75  # from the file's metadata, not a VAE config.json


@pytest.mark.parametrize(
    ("files", "layout", "error", "message"),
    [
        (2, {"a.ckpt": "ckpt75", "b.yaml": "yaml40"}, ConfigError, "does not fit|ratios|n_fft|hop"),  # pair mismatch
        (2, {"a.ckpt": "ckpt75", "b.ckpt": "ckpt75", "c.yaml": "yaml75"}, CheckpointError, r"holds 2 \.ckpt files"),
        (2, {"a.ckpt": "ckpt75", "b.yaml": "yaml75", "c.yaml": "yaml40"}, CheckpointError, r"holds 2 \.yaml files"),
        (2, {"c.yaml": "yaml75"}, CheckpointError, r"lacks \[.*\.ckpt"),
        (1, {"a.ckpt": "ckpt75", "b.yaml": "yaml40"}, ConfigError, "does not fit|ratios|n_fft|hop"),  # card lists no yaml
        (1, {"a.ckpt": "ckpt75", "b.yaml": "yaml75", "c.yaml": "yaml40"}, ConfigError, "2 yaml files given"),
    ],
)
def test_wavtokenizer_directory_pairing_errors(offline_empty_cache, tmp_path, files, layout, error, message):
    from zoo_plugins.wavtokenizer.config import WavTokenizerConfig
    from zoo_plugins.wavtokenizer.model import WavTokenizer

    small = SMALL_WAV
    name = next(n for n in zoo.list_models("wavtokenizer.*") if len(zoo.get_card(n).files) == files and "75" in n)
    folder = tmp_path / "release"
    folder.mkdir()
    for fname, what in layout.items():
        if what == "ckpt75":
            model = WavTokenizer(WavTokenizerConfig(**small, ratios=[8, 5, 4, 2], n_fft=1280, hop_length=320))
            torch.save({"state_dict": _seeded(model)}, folder / fname)
        elif what == "yaml75":
            (folder / fname).write_text(_wavtokenizer_yaml(small, [8, 5, 4, 2], 1280, 320))
        else:
            (folder / fname).write_text(_wavtokenizer_yaml(small, [6, 5, 5, 4], 2400, 600))
    with pytest.raises(error, match=message):
        zoo.load(name, weights=folder)
