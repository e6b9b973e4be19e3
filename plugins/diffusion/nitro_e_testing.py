"""Tiny random-weight Nitro-E parts and releases (official file layouts), for tests, docs and benchmarks.

Deterministic (seeded); nothing is downloaded. The tiny Llama tokenizer is a byte-level BPE trained
on a few sentences with ``tokenizers`` (Llama 3's kind: BOS added in front, EOS used as padding).

Example:
    >>> TINY_NITRO_E["sample_size"], TINY_LLAMA["hidden_size"]
    (16, 16)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import torch

from .testing import _CORPUS, _seed_all

__all__ = ["TINY_NITRO_E", "TINY_LLAMA", "TINY_DCAE", "tiny_llama_tokenizer", "tiny_llama_encoder", "tiny_dcae", "tiny_nitro_e",
           "write_nitro_e_release", "write_llama_release", "write_dcae_release", "lora_adapter"]

#: 16x16 latents (the 512 px card's grid, so ASA's 4x4 runs fit: 256 and 80 image tokens), width 16, the official depth.
TINY_NITRO_E = {"sample_size": 16, "in_channels": 4, "out_channels": 4, "attention_head_dim": 8, "num_attention_heads": 2,
                "caption_channels": 16, "caption_projection_dim": 16, "pos_embed_max_size": 24, "use_sub_attn": True}
TINY_LLAMA = {"model_type": "llama", "vocab_size": 320, "hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1,
              "num_attention_heads": 2, "num_key_value_heads": 1, "max_position_embeddings": 64, "rms_norm_eps": 1e-5,
              "bos_token_id": 0, "eos_token_id": 1, "tie_word_embeddings": True}
#: factor 2 (32 px <-> 16x16 latents), 4 channels, one ResBlock stage and one EfficientViT stage.
TINY_DCAE = {"in_channels": 3, "latent_channels": 4, "attention_head_dim": 4, "encoder_block_types": ["ResBlock", "EfficientViTBlock"],
             "decoder_block_types": ["ResBlock", "EfficientViTBlock"], "encoder_block_out_channels": [8, 8],
             "decoder_block_out_channels": [8, 8], "encoder_layers_per_block": [1, 1], "decoder_layers_per_block": [1, 1],
             "encoder_qkv_multiscales": [[], [5]], "decoder_qkv_multiscales": [[], [5]], "scaling_factor": 0.41407}
TINY_TEXT_LENGTH = 32  # a multiple of 16: ASA splits the text into 4 runs of 4 too


def tiny_llama_tokenizer(folder: Optional[Path] = None) -> Any:
    """A byte-level BPE tokenizer (vocab 320: 256 bytes + merges, ``<|begin_of_text|>`` = 0, ``<|end_of_text|>`` = 1) as
    transformers' ``PreTrainedTokenizerFast`` (saved in ``folder`` when given: tokenizer.json + jsons)."""
    import tempfile

    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    from .libs import transformers_module

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    special = ["<|begin_of_text|>", "<|end_of_text|>"]
    tok.train_from_iterator(_CORPUS * 4, trainers.BpeTrainer(vocab_size=TINY_LLAMA["vocab_size"], special_tokens=special,
                                                             initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False))
    tok.post_processor = processors.TemplateProcessing(single="<|begin_of_text|> $A", pair="<|begin_of_text|> $A $B",
                                                       special_tokens=[("<|begin_of_text|>", 0)])
    fast = transformers_module().PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=special[0], eos_token=special[1])
    target = Path(folder) if folder is not None else Path(tempfile.mkdtemp(prefix="zoo_llamatok_"))
    fast.save_pretrained(str(target))
    return fast


def _tiny_llama(seed: int) -> torch.nn.Module:
    from .libs import transformers_module

    tf = transformers_module()
    return _seed_all(tf.LlamaForCausalLM(tf.LlamaConfig(**{k: v for k, v in TINY_LLAMA.items() if k != "model_type"})), seed).eval()


def tiny_llama_encoder(seed: int = 30):
    """A tiny Llama :class:`~.nitro_e.LlamaTextEncoder` (1 layer, width 16) with :func:`tiny_llama_tokenizer`."""
    from .nitro_e import LlamaTextEncoder

    return LlamaTextEncoder(_tiny_llama(seed).model, tiny_llama_tokenizer(), max_length=TINY_TEXT_LENGTH).eval()


def tiny_dcae(seed: int = 31):
    """A tiny ``AutoencoderDC`` (factor 2, 4 channels) as a :class:`~.nitro_e.DiffusersDCAE`."""
    from .libs import diffusers_module
    from .nitro_e import DiffusersDCAE

    return DiffusersDCAE(_seed_all(diffusers_module().AutoencoderDC.from_config(dict(TINY_DCAE)), seed)).eval()


def tiny_nitro_e(seed: int = 32, *, components: bool = True, **config: Any):
    """A tiny Nitro-E (the official 24 blocks at width 16, 32 px images) with tiny components (``components=False``: none)."""
    from .nitro_e import NitroE, NitroEConfig

    cfg = NitroEConfig(transformer=dict(TINY_NITRO_E), vae_scale_factor=2, max_sequence_length=TINY_TEXT_LENGTH, **config)
    model = NitroE(cfg)
    _seed_all(model.transformer, seed)
    model.eval()
    if components:
        model.use_components(text_encoder=tiny_llama_encoder(), vae=tiny_dcae())
    return model


def lora_adapter(model: torch.nn.Module, rank: int = 2, alpha: float = 4.0, seed: int = 33,
                 targets: tuple[str, ...] = ("to_q", "to_k", "to_v", "to_out.0", "add_q_proj", "ff.net.2")) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """A PEFT-layout LoRA adapter for ``model``'s linear layers whose names end with one of ``targets``:
    ``(adapter_config, {"base_model.model.<name>.lora_A.weight": [r, in], ...lora_B.weight: [out, r]})``."""
    g = torch.Generator().manual_seed(seed)
    state = {}
    for name, mod in model.named_modules():
        if isinstance(mod, torch.nn.Linear) and any(name == t or name.endswith("." + t) for t in targets):
            state[f"base_model.model.{name}.lora_A.weight"] = torch.randn(rank, mod.in_features, generator=g) * 0.3
            state[f"base_model.model.{name}.lora_B.weight"] = torch.randn(mod.out_features, rank, generator=g) * 0.3
    cfg = {"peft_type": "LORA", "r": rank, "lora_alpha": alpha, "target_modules": list(targets), "use_rslora": False,
           "use_dora": False, "fan_in_fan_out": False, "bias": "none", "rank_pattern": {}, "alpha_pattern": {}, "modules_to_save": None}
    return cfg, state


def write_nitro_e_release(root: Path, seed: int = 32, *, name: str = "Nitro-E-512px.safetensors", grpo: Optional[str] = None) -> Path:
    """``root/<name>`` (the tiny E-MMDiT's state dict, official keys) and, with ``grpo="ckpt_grpo_512px"``,
    ``root/<grpo>/{adapter_config.json, adapter_model.safetensors}`` (a tiny PEFT LoRA)."""
    from safetensors.torch import save_file

    model = tiny_nitro_e(seed, components=False)
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.transformer.state_dict().items()}, str(root / name))
    if grpo:
        cfg, state = lora_adapter(model.transformer)
        (root / grpo).mkdir(parents=True, exist_ok=True)
        (root / grpo / "adapter_config.json").write_text(json.dumps(cfg, indent=1))
        save_file(state, str(root / grpo / "adapter_model.safetensors"))
    return root


def write_llama_release(root: Path, seed: int = 30) -> Path:
    """``root/{config.json, model.safetensors, tokenizer.json, tokenizer_config.json, special_tokens_map.json}``
    of the tiny Llama (the causal LM's layout: ``model.*`` keys, ``lm_head`` tied and not stored)."""
    root = Path(root)
    _tiny_llama(seed).save_pretrained(str(root), safe_serialization=True)
    tiny_llama_tokenizer(root)
    if not (root / "special_tokens_map.json").exists():
        (root / "special_tokens_map.json").write_text(json.dumps({"bos_token": "<|begin_of_text|>", "eos_token": "<|end_of_text|>"}))
    return root


def write_dcae_release(root: Path, seed: int = 31) -> Path:
    """``root/{config.json, diffusion_pytorch_model.safetensors}`` of the tiny DC-AE (diffusers layout)."""
    from safetensors.torch import save_file

    vae = tiny_dcae(seed)
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    (root / "config.json").write_text(json.dumps({"_class_name": "AutoencoderDC", "_diffusers_version": "0.32.2", **dict(vae.vae.config)}, indent=1))
    save_file({k: v.contiguous() for k, v in vae.vae.state_dict().items()}, str(root / "diffusion_pytorch_model.safetensors"))
    return root
