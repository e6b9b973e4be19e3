"""Typed config of a MaskGIT generator, and the mapping from 1d-tokenizer's nested yaml/json.

Example:
    >>> cfg = from_reference_config({"model": {"vq_model": {"codebook_size": 4096, "num_latent_tokens": 32},
    ...     "generator": {"model_type": "ViT", "hidden_size": 768, "guidance_decay": "linear"}}})
    >>> cfg["arch"], cfg["image_seq_len"], "guidance_decay" in cfg   # sampler settings come from the card
    ('bert', 32, False)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

__all__ = ["MaskGITConfig", "from_reference_config"]


@dataclass
class MaskGITConfig:
    """Architecture + the reference's default sampler settings (TiTok conventions: the
    ``guidance_scale`` of ``constant``/``linear`` decays is the ``cond + s (cond - uncond)``
    scale; ``power-cosine`` uses ``uncond + w (cond - uncond)``)."""

    arch: str = "bert"  # bert (ImageBert) | uvit (UViTBert)
    hidden_size: int = 768
    num_hidden_layers: int = 24
    num_attention_heads: int = 16
    intermediate_size: int = 3072
    image_seq_len: int = 32
    codebook_size: int = 4096
    condition_num_classes: int = 1000
    # sampler defaults (sample_imagenet_titok.py / One-D-Piece training yaml "best params")
    num_steps: int = 8
    guidance_scale: float = 3.0
    guidance_decay: str = "constant"  # constant | linear | power-cosine
    guidance_scale_pow: float = 3.0
    randomize_temperature: float = 1.0
    softmax_temperature_annealing: bool = True
    # the tokenizer card that decodes the generated ids
    tokenizer: str = ""


_GEN_FIELDS = {"hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "condition_num_classes"}
# sampler settings in a release's config.json may be training-time values: the card's (the
# reference's evaluation settings) are kept instead
_SAMPLER = {"guidance_scale", "guidance_decay", "guidance_scale_pow", "randomize_temperature", "num_steps"}
_IGNORED = {"dropout", "attn_drop", "class_label_dropout", "image_seq_len", "model_type", "use_checkpoint"} | _SAMPLER


def from_reference_config(tree: Mapping[str, Any]) -> dict[str, Any]:
    """Map 1d-tokenizer's nested config (``model.generator.*``, ``model.vq_model.*``) onto
    :class:`MaskGITConfig` field names; unknown generator keys are an error naming them."""
    from zoo.errors import ConfigError

    model = tree.get("model", tree)
    gen = dict(model.get("generator", {}))
    vq = model.get("vq_model", {})
    out: dict[str, Any] = {}
    unknown = sorted(set(gen) - _GEN_FIELDS - _IGNORED)
    if unknown:
        raise ConfigError(f"unknown MaskGIT generator config key(s) {unknown}; known: {sorted(_GEN_FIELDS | _IGNORED)}")
    for k in _GEN_FIELDS & set(gen):
        out[k] = gen[k]
    if "model_type" in gen:
        kinds = {"ViT": "bert", "UViT": "uvit"}
        if gen["model_type"] not in kinds:
            raise ConfigError(f"unsupported generator model_type {gen['model_type']!r}; known: {sorted(kinds)}")
        out["arch"] = kinds[gen["model_type"]]
    if "codebook_size" in vq:
        out["codebook_size"] = int(vq["codebook_size"])
    seq = gen.get("image_seq_len")
    if isinstance(seq, int):
        out["image_seq_len"] = seq
    elif "num_latent_tokens" in vq:
        out["image_seq_len"] = int(vq["num_latent_tokens"])
    return out
