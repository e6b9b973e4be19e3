"""Tiny random-weight components and diffusers-layout releases, for tests, docs and benchmarks.

Everything is deterministic (seeded); nothing is downloaded. A tiny T5 tokenizer is trained on
a few sentences with sentencepiece (no file ships with zoo): 49 pieces (``sentencepiece`` stops
where the corpus runs out), ids 0 pad, 1 eos, 2 unk.

Example:
    >>> TINY_PIXART["num_layers"], TINY_T5["d_model"]
    (2, 32)
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any, Optional

import torch

__all__ = ["TINY_PIXART", "TINY_T5", "TINY_VAE", "TINY_SIZE", "tiny_t5_tokenizer", "tiny_text_encoder", "tiny_vae", "write_components_release", "write_pixart_hub",
           "tiny_pixart", "write_pixart_release", "write_t5_release", "write_vae_release", "tiny_clip_text", "tiny_sd15_vae",
           "tiny_instaflow", "write_instaflow_release", "write_instaflow_hub"]

#: The image side of the tiny configs (32 px -> 4x4 latents -> 4 patches of 2x2).
TINY_SIZE = 32
TINY_T5 = {"model_type": "t5", "vocab_size": 64, "d_model": 32, "d_kv": 8, "d_ff": 48, "num_layers": 1, "num_heads": 4,
           "relative_attention_num_buckets": 8, "relative_attention_max_distance": 16, "feed_forward_proj": "gated-gelu",
           "is_encoder_decoder": False, "dropout_rate": 0.0, "pad_token_id": 0, "eos_token_id": 1}
TINY_VAE = {"in_channels": 3, "out_channels": 3, "latent_channels": 4, "block_out_channels": [8, 8, 8, 8], "layers_per_block": 1,
            "norm_num_groups": 4, "sample_size": TINY_SIZE, "scaling_factor": 0.13025,
            "down_block_types": ["DownEncoderBlock2D"] * 4, "up_block_types": ["UpDecoderBlock2D"] * 4}
TINY_PIXART = {"sample_size": TINY_SIZE // 8, "num_layers": 2, "num_attention_heads": 2, "attention_head_dim": 8, "in_channels": 4,
               "out_channels": 8, "patch_size": 2, "cross_attention_dim": 16, "caption_channels": TINY_T5["d_model"],
               "norm_num_groups": 4, "use_additional_conditions": False, "interpolation_scale": 1}
_CORPUS = ["a red fox in the snow", "a photo of a cat on a sofa", "an astronaut riding a horse on mars",
           "a bowl of fruit on a wooden table", "the quick brown fox jumps over the lazy dog", "zebra yak quilt vivid jump"]


def _seed_all(module: torch.nn.Module, seed: int) -> torch.nn.Module:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in sorted(module.named_parameters()):
            fan_in = max(p[0].numel(), 1) if p.dim() > 1 else 1
            scale = fan_in ** -0.5 if p.dim() > 1 else 0.1  # unit-scale activations: outputs depend on every input
            p.copy_(torch.randn(p.shape, generator=g) * scale + (1.0 if "norm" in name and name.endswith("weight") else 0.0))
    return module


def tiny_t5_tokenizer(folder: Optional[Path] = None) -> Any:
    """A T5 tokenizer with a small sentencepiece model trained on a few sentences (saved in
    ``folder`` when given: ``spiece.model`` + the tokenizer jsons)."""
    import tempfile

    import sentencepiece as spm

    from .libs import transformers_module

    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(_CORPUS * 4), model_writer=buf, vocab_size=TINY_T5["vocab_size"],
                                   model_type="unigram", pad_id=0, eos_id=1, unk_id=2, bos_id=-1, pad_piece="<pad>", eos_piece="</s>",
                                   unk_piece="<unk>", minloglevel=2, num_threads=1, hard_vocab_limit=False, seed_sentencepiece_size=1000)
    target = Path(folder) if folder is not None else Path(tempfile.mkdtemp(prefix="zoo_t5tok_"))
    target.mkdir(parents=True, exist_ok=True)
    (target / "spiece.model").write_bytes(buf.getvalue())
    tok = transformers_module().T5Tokenizer.from_pretrained(str(target), extra_ids=0, local_files_only=True)
    tok.save_pretrained(str(target))
    return tok


def tiny_text_encoder(seed: int = 0):
    """A tiny T5 :class:`~.components.TextEncoder` (1 layer, width 32) with :func:`tiny_t5_tokenizer`."""
    from .components import TextEncoder
    from .libs import transformers_module

    tf = transformers_module()
    enc = _seed_all(tf.T5EncoderModel(tf.T5Config.from_dict(dict(TINY_T5))), seed).eval()
    return TextEncoder(enc, tiny_t5_tokenizer(), max_length=32).eval()


def tiny_vae(seed: int = 1):
    """A tiny SDXL-like ``AutoencoderKL`` (factor 8, 4 latent channels) as a :class:`~.components.DiffusersVAE`."""
    from .components import DiffusersVAE
    from .libs import diffusers_module

    return DiffusersVAE(_seed_all(diffusers_module().AutoencoderKL.from_config(dict(TINY_VAE)), seed)).eval()


def tiny_pixart(seed: int = 2, *, components: bool = True, **config: Any):
    """A tiny PixArt-Σ (2 blocks, width 16) with tiny components attached (``components=False``: none)."""
    from .config import PixArtSigmaConfig
    from .pixart import PixArtSigma

    cfg = PixArtSigmaConfig(transformer=dict(TINY_PIXART), max_sequence_length=24, **config)
    model = PixArtSigma(cfg)
    _seed_all(model.transformer, seed)
    model.eval()
    if components:
        model.use_components(text_encoder=tiny_text_encoder(), vae=tiny_vae())
    return model


# ------------------------------------------------------------------ release writers (diffusers layout)
def _save_component(module: torch.nn.Module, folder: Path, class_name: str, config: dict) -> None:
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps({"_class_name": class_name, "_diffusers_version": "0.32.0", **config}, indent=1))
    save_file({k: v.contiguous() for k, v in module.state_dict().items()}, str(folder / "diffusion_pytorch_model.safetensors"))


def write_pixart_release(root: Path, seed: int = 2, *, scheduler: bool = True) -> Path:
    """``root/transformer/{config.json, diffusion_pytorch_model.safetensors}`` (+ ``scheduler/``) of the tiny PixArt-Σ."""
    model = tiny_pixart(seed, components=False)
    _save_component(model.transformer, Path(root) / "transformer", "PixArtTransformer2DModel", dict(model.transformer.config))
    if scheduler:
        (Path(root) / "scheduler").mkdir(parents=True, exist_ok=True)
        (Path(root) / "scheduler" / "scheduler_config.json").write_text(json.dumps({"_class_name": "DPMSolverMultistepScheduler"}))
    return Path(root)


def write_vae_release(root: Path, seed: int = 1) -> Path:
    """``root/vae/{config.json, diffusion_pytorch_model.safetensors}`` of the tiny VAE."""
    vae = tiny_vae(seed)
    _save_component(vae.vae, Path(root) / "vae", "AutoencoderKL", dict(vae.vae.config))
    return Path(root)


def write_t5_release(root: Path, seed: int = 0, *, shards: int = 4) -> Path:
    """``root/text_encoder/`` (config.json, ``shards`` safetensors + index, transformers' naming)
    and ``root/tokenizer/`` of the tiny T5 (the PixArt release shards its T5 in 4 files)."""
    from safetensors.torch import save_file

    te = tiny_text_encoder(seed)
    enc_dir = Path(root) / "text_encoder"
    enc_dir.mkdir(parents=True, exist_ok=True)
    (enc_dir / "config.json").write_text(json.dumps({**TINY_T5, "architectures": ["T5EncoderModel"]}, indent=1))
    state = {k: v.contiguous() for k, v in te.encoder.state_dict().items() if k != "encoder.embed_tokens.weight"}  # tied to shared
    keys = sorted(state)
    names = [f"model-{i + 1:05d}-of-{shards:05d}.safetensors" for i in range(shards)]
    weight_map = {}
    for i, name in enumerate(names):
        part = {k: state[k] for k in keys[i::shards]}
        save_file(part, str(enc_dir / name), metadata={"format": "pt"})
        weight_map.update({k: name for k in part})
    (enc_dir / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}, indent=1))
    tiny_t5_tokenizer(Path(root) / "tokenizer")
    return Path(root)


def write_components_release(root: Path) -> Path:
    """The tiny T5 (sharded, tokenizer) and VAE in one folder laid out as
    ``PixArt-alpha/pixart_sigma_sdxlvae_T5_diffusers`` (every file its cards list)."""
    root = Path(root)
    write_t5_release(root)
    write_vae_release(root)
    tok = root / "tokenizer"
    (tok / "special_tokens_map.json").write_text(json.dumps({"eos_token": "</s>", "pad_token": "<pad>", "unk_token": "<unk>"}))
    (tok / "added_tokens.json").write_text("{}")
    return root


def write_pixart_hub(root: Path, repos: tuple[str, ...] = ("PixArt-alpha/PixArt-Sigma-XL-2-1024-MS",)) -> Path:
    """A hub folder (``root/<org>/<name>/...``, for :class:`zoo.testing.hub.HubStandIn`) holding the
    tiny PixArt-Σ under each of ``repos`` and the tiny components under the components repo."""
    root = Path(root)
    for repo in repos:
        write_pixart_release(root / repo)
    write_components_release(root / "PixArt-alpha" / "pixart_sigma_sdxlvae_T5_diffusers")
    return root


# ------------------------------------------------------------------ Stable Diffusion 3 (tiny)
TINY_CLIP = {"model_type": "clip_text_model", "vocab_size": 58, "hidden_size": 32, "intermediate_size": 37, "num_attention_heads": 4,
             "num_hidden_layers": 2, "projection_dim": 32, "max_position_embeddings": 77, "hidden_act": "gelu",
             "bos_token_id": 56, "eos_token_id": 57, "pad_token_id": 57}
TINY_T5_SD3 = {**TINY_T5, "d_model": 64}
TINY_SD3_VAE = {**TINY_VAE, "latent_channels": 16, "scaling_factor": 1.5305, "shift_factor": 0.0609, "use_quant_conv": False,
                "use_post_quant_conv": False}
TINY_SD3 = {"sample_size": TINY_SIZE // 8, "patch_size": 2, "in_channels": 16, "out_channels": 16, "num_layers": 2,
            "attention_head_dim": 8, "num_attention_heads": 2, "joint_attention_dim": 64, "caption_projection_dim": 16,
            "pooled_projection_dim": 64, "pos_embed_max_size": 16}


def tiny_clip_tokenizer(folder: Optional[Path] = None) -> Any:
    """A CLIP BPE tokenizer over single letters and a few merges (58 ids; 56 bos, 57 eos/pad)."""
    import tempfile

    from .libs import transformers_module

    target = Path(folder) if folder is not None else Path(tempfile.mkdtemp(prefix="zoo_cliptok_"))
    target.mkdir(parents=True, exist_ok=True)
    letters = "abcdefghijklmnopqrstuvwxyz"
    merges = [("r", "e"), ("re", "d</w>"), ("f", "o"), ("fo", "x</w>")]
    vocab = {c: i for i, c in enumerate(letters)}
    vocab.update({c + "</w>": 26 + i for i, c in enumerate(letters)})
    vocab.update({a + b: 52 + i for i, (a, b) in enumerate(merges)})
    vocab.update({"<|startoftext|>": 56, "<|endoftext|>": 57})
    (target / "vocab.json").write_text(json.dumps(vocab))
    (target / "merges.txt").write_text("#version: 0.2\n" + "\n".join(f"{a} {b}" for a, b in merges) + "\n")
    tok = transformers_module().CLIPTokenizer.from_pretrained(str(target), local_files_only=True, model_max_length=77)
    tok.save_pretrained(str(target))
    return tok


def tiny_sd3_text(seed: int = 10, *, t5: bool = True):
    """SD3's three tiny encoders (CLIP-L/G width 32, T5 width 64) and tokenizers."""
    from .libs import transformers_module
    from .sd3 import SD3TextEncoders

    tf = transformers_module()
    clips = [_seed_all(tf.CLIPTextModelWithProjection(tf.CLIPTextConfig.from_dict(dict(TINY_CLIP))), seed + i).eval() for i in range(2)]
    enc = _seed_all(tf.T5EncoderModel(tf.T5Config.from_dict(dict(TINY_T5_SD3))), seed + 2).eval() if t5 else None
    toks = [tiny_clip_tokenizer(), tiny_clip_tokenizer(), tiny_t5_tokenizer()]
    return SD3TextEncoders(clips[0], clips[1], enc, toks, joint_dim=TINY_T5_SD3["d_model"]).eval()


def tiny_sd3_vae(seed: int = 11):
    from .components import DiffusersVAE
    from .libs import diffusers_module

    return DiffusersVAE(_seed_all(diffusers_module().AutoencoderKL.from_config(dict(TINY_SD3_VAE)), seed)).eval()


def tiny_sd3(seed: int = 12, *, components: bool = True, **config: Any):
    """A tiny SD3 (2 MMDiT blocks, width 16) with tiny components attached (``components=False``: none)."""
    from .config import SD3Config
    from .sd3 import StableDiffusion3

    model = StableDiffusion3(SD3Config(transformer=dict(TINY_SD3), max_sequence_length=16, **config))
    _seed_all(model.transformer, seed)
    model.eval()
    if components:
        model.use_components(text_encoders=tiny_sd3_text(), vae=tiny_sd3_vae())
    return model


def _write_hf_module(module: torch.nn.Module, folder: Path, *, shards: int = 1, drop: tuple[str, ...] = ()) -> None:
    """config.json + ``model.safetensors`` (or ``shards`` files named as transformers names them, with the index)."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    module.config.to_json_file(str(folder / "config.json"))
    state = {k: v.contiguous() for k, v in module.state_dict().items() if k not in drop}
    if shards == 1:
        save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
        return
    keys, weight_map = sorted(state), {}
    for i in range(shards):
        name = f"model-{i + 1:05d}-of-{shards:05d}.safetensors"
        part = {k: state[k] for k in keys[i::shards]}
        save_file(part, str(folder / name), metadata={"format": "pt"})
        weight_map.update({k: name for k in part})
    (folder / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}, indent=1))


def write_sd3_release(root: Path, seed: int = 12, *, shards: int = 1) -> Path:
    """An SD3 repo's ``transformer/`` (one file, or ``shards`` with the diffusers index) and ``scheduler/``."""
    from safetensors.torch import save_file

    model = tiny_sd3(seed, components=False)
    folder = Path(root) / "transformer"
    if shards == 1:
        _save_component(model.transformer, folder, "SD3Transformer2DModel", dict(model.transformer.config))
    else:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "config.json").write_text(json.dumps({"_class_name": "SD3Transformer2DModel", **dict(model.transformer.config)}))
        state = {k: v.contiguous() for k, v in model.transformer.state_dict().items()}
        keys, weight_map = sorted(state), {}
        for i in range(shards):
            name = f"diffusion_pytorch_model-{i + 1:05d}-of-{shards:05d}.safetensors"
            part = {k: state[k] for k in keys[i::shards]}
            save_file(part, str(folder / name))
            weight_map.update({k: name for k in part})
        (folder / "diffusion_pytorch_model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    (Path(root) / "scheduler").mkdir(parents=True, exist_ok=True)
    (Path(root) / "scheduler" / "scheduler_config.json").write_text(json.dumps({"_class_name": "FlowMatchEulerDiscreteScheduler", "shift": 3.0,
                                                                                  "num_train_timesteps": 1000}))
    return Path(root)


def write_sd3_components(root: Path) -> Path:
    """The rest of an SD3 repo: ``text_encoder{,_2,_3}/`` (T5 in 2 shards), ``tokenizer{,_2,_3}/``, ``vae/``."""
    root = Path(root)
    te = tiny_sd3_text()
    _write_hf_module(te.clip_l, root / "text_encoder")
    _write_hf_module(te.clip_g, root / "text_encoder_2")
    _write_hf_module(te.t5, root / "text_encoder_3", shards=2, drop=("encoder.embed_tokens.weight",))
    for sub, tok in (("tokenizer", te.tokenizers[0]), ("tokenizer_2", te.tokenizers[1]), ("tokenizer_3", te.tokenizers[2])):
        tok.save_pretrained(str(root / sub))
        (root / sub / "special_tokens_map.json").write_text(json.dumps({"eos_token": tok.eos_token, "pad_token": tok.pad_token,
                                                                         "unk_token": tok.unk_token}))
    for sub, tok in (("tokenizer", te.tokenizers[0]), ("tokenizer_2", te.tokenizers[1])):  # the BPE files the release ships
        for name in ("vocab.json", "merges.txt"):
            (root / sub / name).write_bytes((Path(tok.name_or_path) / name).read_bytes())
    (root / "tokenizer_3" / "spiece.model").write_bytes((Path(te.tokenizers[2].name_or_path) / "spiece.model").read_bytes())
    vae = tiny_sd3_vae()
    _save_component(vae.vae, root / "vae", "AutoencoderKL", dict(vae.vae.config))
    return root


def write_sd3_hub(root: Path, repo: str = "stabilityai/stable-diffusion-3-medium-diffusers") -> Path:
    """A hub folder holding the tiny SD3 as ``repo`` (transformer, scheduler, encoders, tokenizers, VAE)."""
    write_sd3_release(Path(root) / repo)
    write_sd3_components(Path(root) / repo)
    return Path(root)


# ------------------------------------------------------------------ UNet (SD 1.5 layout, as InstaFlow's), tiny
TINY_UNET = {"sample_size": 8, "in_channels": 4, "out_channels": 4, "block_out_channels": [8, 16], "layers_per_block": 1,
             "down_block_types": ["CrossAttnDownBlock2D", "DownBlock2D"], "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D"],
             "cross_attention_dim": 16, "norm_num_groups": 4, "attention_head_dim": 2}


def tiny_unet(seed: int = 20, **config: Any):
    """A tiny ``UNet2DConditionModel`` with the SD 1.5 block layout (cross-attention blocks at the top resolution)."""
    from .libs import diffusers_module

    return _seed_all(diffusers_module().UNet2DConditionModel.from_config({**TINY_UNET, **config}), seed).eval()


# ------------------------------------------------------------------ InstaFlow / 2-Rectified Flow (SD 1.5 layout), tiny
TINY_SD15_CLIP = {k: v for k, v in TINY_CLIP.items() if k != "projection_dim"}
TINY_SD15_VAE = {**TINY_VAE, "scaling_factor": 0.18215}


def tiny_clip_text(seed: int = 21):
    """A tiny SD 1.5-style text encoder: ``CLIPTextModel`` (2 layers, width 32) with :func:`tiny_clip_tokenizer`."""
    from .instaflow import CLIPTextEncoder
    from .libs import transformers_module

    tf = transformers_module()
    enc = _seed_all(tf.CLIPTextModel(tf.CLIPTextConfig.from_dict(dict(TINY_SD15_CLIP))), seed).eval()
    return CLIPTextEncoder(enc, tiny_clip_tokenizer()).eval()


def tiny_sd15_vae(seed: int = 22):
    """A tiny SD 1.5-like ``AutoencoderKL`` (factor 8, 4 channels, scaling 0.18215)."""
    from .components import DiffusersVAE
    from .libs import diffusers_module

    return DiffusersVAE(_seed_all(diffusers_module().AutoencoderKL.from_config(dict(TINY_SD15_VAE)), seed)).eval()


def tiny_instaflow(seed: int = 20, *, components: bool = True, **config: Any):
    """A tiny InstaFlow (the :func:`tiny_unet` layout, cross-attending to width-32 CLIP states) with tiny components."""
    from .instaflow import InstaFlow, InstaFlowConfig

    model = InstaFlow(InstaFlowConfig(unet={**TINY_UNET, "sample_size": TINY_SIZE // 8, "cross_attention_dim": TINY_SD15_CLIP["hidden_size"]},
                                      **config))
    _seed_all(model.unet, seed)
    model.eval()
    if components:
        model.use_components(text_encoder=tiny_clip_text(), vae=tiny_sd15_vae())
    return model


def write_instaflow_release(root: Path, seed: int = 20) -> Path:
    """An InstaFlow repo as published (diffusers pipeline folder): ``unet/``, ``vae/``, ``text_encoder/``
    (``model.safetensors``), ``tokenizer/`` (CLIP BPE files), ``scheduler/`` and ``model_index.json``."""
    root = Path(root)
    model = tiny_instaflow(seed, components=False)
    _save_component(model.unet, root / "unet", "UNet2DConditionModel", dict(model.unet.config))
    vae = tiny_sd15_vae()
    _save_component(vae.vae, root / "vae", "AutoencoderKL", dict(vae.vae.config))
    te = tiny_clip_text()
    _write_hf_module(te.encoder, root / "text_encoder")
    tok = root / "tokenizer"
    te.tokenizer.save_pretrained(str(tok))
    for name in ("vocab.json", "merges.txt"):
        (tok / name).write_bytes((Path(te.tokenizer.name_or_path) / name).read_bytes())
    (tok / "special_tokens_map.json").write_text(json.dumps({"bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>",
                                                             "pad_token": "<|endoftext|>", "unk_token": "<|endoftext|>"}))
    (root / "scheduler").mkdir(parents=True, exist_ok=True)
    (root / "scheduler" / "scheduler_config.json").write_text(json.dumps({"_class_name": "PNDMScheduler", "num_train_timesteps": 1000}))
    (root / "model_index.json").write_text(json.dumps({"_class_name": "RectifiedFlowPipeline", "unet": ["diffusers", "UNet2DConditionModel"]}))
    return root


def write_instaflow_hub(root: Path, repos: tuple[str, ...] = ("XCLiu/instaflow_0_9B_from_sd_1_5",)) -> Path:
    """A hub folder (``root/<org>/<name>/...``, for :class:`zoo.testing.hub.HubStandIn`) holding the tiny release under each of ``repos``."""
    for repo in repos:
        write_instaflow_release(Path(root) / repo)
    return Path(root)
