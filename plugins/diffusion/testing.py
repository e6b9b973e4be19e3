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
           "tiny_pixart", "write_pixart_release", "write_t5_release", "write_vae_release"]

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
