"""MingTok's typed config and the mapping from its transformers-style ``config.json`` (read as data).

Example:
    >>> c = from_hf_config({"low_level_encoder": {"img_size": 512, "patch_size": 32, "depth": 12, "embed_dim": 768,
    ...     "ffn_layer": "swiglufused", "out_dim": 32}, "semantic_decoder": {"in_dim": 32, "patch_size": 32,
    ...     "embed_dim": 1024, "decoder_depth": 24, "ffn_layer": "swiglufused"}, "pixel_decoder": {"patch_size": 16,
    ...     "decoder_depth": 24, "norm_pix_loss": True, "embed_dim": 1024, "loss_type": "L1-plain"},
    ...     "scaling_factor": 8.09449291, "mean": 1.46817409, "model_type": "mingtok"})
    >>> c["encoder_dim"], c["semantic_depth"], c["pixel_patch_size"], c["mean"]
    (768, 24, 16, 1.46817409)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from zoo.errors import ConfigError

__all__ = ["MingTokConfig", "from_hf_config", "swiglu_hidden"]

#: config.json section -> {file key: zoo field}
_SECTIONS = {
    "low_level_encoder": {"img_size": "img_size", "patch_size": "patch_size", "depth": "encoder_depth",
                          "embed_dim": "encoder_dim", "ffn_layer": "encoder_ffn", "out_dim": "latent_dim"},
    "semantic_decoder": {"in_dim": "latent_dim", "patch_size": "semantic_patch_size", "embed_dim": "semantic_dim",
                         "decoder_depth": "semantic_depth", "ffn_layer": "semantic_ffn"},
    "pixel_decoder": {"patch_size": "pixel_patch_size", "decoder_depth": "pixel_depth", "embed_dim": "pixel_dim"},
}
#: keys that only matter for training or loading in the reference (ignored by name)
_TRAINING_KEYS = {"norm_pix_loss", "loss_type", "frozen", "fa_enable", "initialization_method", "drop_path_rate",
                  "enable_lpips_loss", "in_projection_layer"}
_TOP = {"scaling_factor": "scaling_factor", "mean": "mean"}
_IGNORED_TOP = {"pretrained_checkpoint", "model_dtype", "model_type", "architectures", "torch_dtype", "dtype",
                "transformers_version", "auto_map", "_name_or_path"}


def swiglu_hidden(dim: int, ratio: float = 4.0) -> int:
    """DINOv2's ``SwiGLUFFNFused`` width: ``(int(dim * ratio * 2 / 3) + 7) // 8 * 8``.

    Example:
        >>> swiglu_hidden(768), swiglu_hidden(1024)
        (2048, 2736)
    """
    return (int(int(dim * ratio) * 2 / 3) + 7) // 8 * 8


def from_hf_config(raw: Mapping[str, Any]) -> dict[str, Any]:
    """``config.json`` (MingTokConfig) -> :class:`MingTokConfig` fields; an unknown key is a ConfigError."""
    out: dict[str, Any] = {}
    unknown = []
    for key, value in raw.items():
        if key in _SECTIONS:
            if not isinstance(value, Mapping):
                raise ConfigError(f"MingTok config.json: {key} must be an object, got {type(value).__name__}")
            for k, v in value.items():
                if k in _SECTIONS[key]:
                    field_name = _SECTIONS[key][k]
                    if field_name in out and out[field_name] != v:
                        raise ConfigError(f"MingTok config.json: {key}.{k}={v!r} disagrees with {out[field_name]!r}")
                    out[field_name] = v
                elif k not in _TRAINING_KEYS:
                    unknown.append(f"{key}.{k}")
        elif key in _TOP:
            out[_TOP[key]] = value
        elif key not in _IGNORED_TOP:
            unknown.append(key)
    if unknown:
        raise ConfigError(f"MingTok config.json has fields zoo does not know: {sorted(unknown)}")
    return out


@dataclass
class MingTokConfig:
    """MingTok-Vision: a ViT low-level encoder (``img_size``/``patch_size``, DINOv2-style blocks with a
    class token appended last) to ``latent_dim`` channels, a causal semantic decoder and a pixel decoder
    (``pixel_patch_size``). Heads are ``dim // 64`` everywhere; latents are normalised as
    ``(z - mean) / scaling_factor``. ``image_size`` is what ``zoo reconstruct`` resizes to."""

    img_size: int = 512
    patch_size: int = 32
    encoder_depth: int = 12
    encoder_dim: int = 768
    encoder_ffn: str = "swiglufused"
    latent_dim: int = 32
    semantic_patch_size: int = 32
    semantic_dim: int = 1024
    semantic_depth: int = 24
    semantic_ffn: str = "swiglufused"
    pixel_patch_size: int = 16
    pixel_depth: int = 24
    pixel_dim: int = 1024
    scaling_factor: float = 8.09449291
    mean: float = 1.46817409
    image_size: int = 512

    def __post_init__(self) -> None:
        for name in ("encoder_ffn", "semantic_ffn"):
            if getattr(self, name) not in ("mlp", "swiglu", "swiglufused"):
                raise ConfigError(f"MingTok {name} must be 'mlp', 'swiglu' or 'swiglufused', got {getattr(self, name)!r}")
        for name in ("encoder_dim", "semantic_dim", "pixel_dim"):
            if getattr(self, name) % 64:
                raise ConfigError(f"MingTok {name}={getattr(self, name)} must be a multiple of 64 (heads of 64)")
        if self.semantic_patch_size % self.pixel_patch_size:
            raise ConfigError("MingTok semantic_patch_size must be a multiple of pixel_patch_size")
        if self.encoder_dim % self.latent_dim or self.semantic_dim % self.latent_dim:
            raise ConfigError("MingTok latent_dim must divide encoder_dim and semantic_dim (the shortcuts)")
