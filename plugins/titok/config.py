"""TiTok / One-D-Piece typed config and the mapping from the official config files.

The official releases describe a model by a nested OmegaConf tree
(``model.vq_model.*`` + ``dataset.preprocessing.crop_size``): TiTok's hub repos carry it as
``config.json``; One-D-Piece's carry no config (the card holds the repo's yaml, mapped here).
Nothing named in those files is ever imported: only known fields are read.

This module does not import torch.

Example:
    >>> cfg = from_reference_config({"model": {"vq_model": {
    ...     "codebook_size": 4096, "token_size": 12, "use_l2_norm": True,
    ...     "vit_enc_model_size": "large", "vit_dec_model_size": "large",
    ...     "vit_enc_patch_size": 16, "vit_dec_patch_size": 16,
    ...     "num_latent_tokens": 32, "finetune_decoder": True}},
    ...     "dataset": {"preprocessing": {"crop_size": 256}}})
    >>> cfg["num_latent_tokens"], cfg["is_legacy"], cfg["finetune_decoder"]
    (32, True, True)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, List

__all__ = ["TiTokConfig", "VIT_SIZES", "vit_dims", "from_reference_config", "to_reference_config", "validate"]

#: ViT sizes used by TiTok: name -> (width, layers, heads). small/base/large are hard-coded in
#: the reference; "tiny" is zoo's own, for CPU-sized experiments (scripts/train_demo_one_d_piece.py).
VIT_SIZES: dict[str, tuple[int, int, int]] = {
    "tiny": (256, 4, 4),
    "small": (512, 8, 8),
    "base": (768, 12, 12),
    "large": (1024, 24, 16),
}


@dataclass
class TiTokConfig:
    """Architecture of a TiTok-family tokenizer (field names follow ``model.vq_model``).

    * ``quantize_mode``: ``"vq"`` (token ids) or ``"vae"`` (continuous tokens; zoo uses the
      posterior mean, so encoding is deterministic).
    * ``is_legacy``: the released L-32/B-64/S-128 and One-D-Piece weights depend on a reshape
      of the encoder output *without* a permute; ``False`` for the vq8k / VAE releases.
    * ``finetune_decoder``: the ViT decoder predicts 1024-way proxy-code logits that feed the
      bundled MaskGIT-VQGAN pixel decoder (``pixel_quantize`` / ``pixel_decoder`` keys).
    * ``strict_length_assertion``: ``False`` lets the decoder take any token prefix
      (One-D-Piece "tail token drop").
    """

    crop_size: int = 256
    vit_enc_model_size: str = "large"
    vit_dec_model_size: str = "large"
    vit_enc_patch_size: int = 16
    vit_dec_patch_size: int = 16
    num_latent_tokens: int = 32
    token_size: int = 12
    codebook_size: int = 4096
    use_l2_norm: bool = True
    quantize_mode: str = "vq"
    is_legacy: bool = True
    finetune_decoder: bool = True
    strict_length_assertion: bool = True
    # MaskGIT-VQGAN pixel decoder (fixed in the reference; kept here so it is visible).
    pixel_codebook_size: int = 1024
    pixel_z_channels: int = 256
    pixel_hidden_channels: int = 128
    pixel_channel_mult: List[int] = field(default_factory=lambda: [1, 1, 2, 2, 4])
    pixel_num_res_blocks: int = 2


# Arch fields read from ``model.vq_model``; their defaults are the reference's ``.get`` defaults.
_VQ_FIELDS = (
    "vit_enc_model_size", "vit_dec_model_size", "vit_enc_patch_size", "vit_dec_patch_size",
    "num_latent_tokens", "token_size", "codebook_size", "use_l2_norm", "quantize_mode",
    "is_legacy", "finetune_decoder", "strict_length_assertion",
)
# Training-only fields of ``model.vq_model`` that do not change the inference graph.
_VQ_IGNORED = ("commitment_cost", "pretrained_tokenizer_weight", "clustering_vq")
# Top-level sections of the official config that hold no architecture.
_TOP_IGNORED = ("experiment", "losses", "optimizer", "lr_scheduler", "training", "model.generator",
                "model.type", "dataset.params")


def vit_dims(size: str) -> tuple[int, int, int]:
    """``(width, layers, heads)`` of a TiTok ViT size name.

    Example:
        >>> vit_dims("base")
        (768, 12, 12)
    """
    try:
        return VIT_SIZES[size]
    except KeyError:
        raise _config_error(f"unknown ViT size {size!r}; choose one of {sorted(VIT_SIZES)}") from None


def _config_error(msg: str) -> Exception:
    from zoo.errors import ConfigError

    return ConfigError(msg)


def from_reference_config(tree: Mapping[str, Any]) -> dict[str, Any]:
    """Map an official TiTok / One-D-Piece config tree onto :class:`TiTokConfig` field names.

    Accepts the full tree (``{"model": {"vq_model": ...}, "dataset": ...}``, as in the hub
    ``config.json`` and the repos' yaml files). Training-only fields are dropped; an unknown
    field under ``model.vq_model`` raises ``ConfigError`` naming it.
    """
    if not isinstance(tree, Mapping):
        raise _config_error(f"TiTok config must be a mapping, got {type(tree).__name__}")
    model = tree.get("model")
    if not isinstance(model, Mapping) or not isinstance(model.get("vq_model"), Mapping):
        raise _config_error(
            "TiTok config has no `model.vq_model` section; pass the official config.json / yaml "
            f"(top-level keys found: {sorted(tree)})"
        )
    vq = model["vq_model"]
    unknown = sorted(set(vq) - set(_VQ_FIELDS) - set(_VQ_IGNORED))
    if unknown:
        raise _config_error(
            f"unknown TiTok field(s) under model.vq_model: {unknown}; known: {sorted(_VQ_FIELDS)} "
            f"(ignored training fields: {sorted(_VQ_IGNORED)})"
        )
    out: dict[str, Any] = {k: vq[k] for k in _VQ_FIELDS if k in vq}
    crop = ((tree.get("dataset") or {}).get("preprocessing") or {}).get("crop_size")
    if crop is not None:
        out["crop_size"] = int(crop)
    # Reference defaults that differ from "absent means dataclass default".
    out.setdefault("is_legacy", True)
    out.setdefault("quantize_mode", "vq")
    out.setdefault("finetune_decoder", True)
    out.setdefault("strict_length_assertion", True)
    validate(out)
    return out


def to_reference_config(cfg: Any) -> dict[str, Any]:
    """The official nested layout of a :class:`TiTokConfig` (inverse of
    :func:`from_reference_config`; e.g. to build the reference model side by side).

    Example:
        >>> to_reference_config(TiTokConfig())["model"]["vq_model"]["num_latent_tokens"]
        32
    """
    get = (lambda k: cfg[k]) if isinstance(cfg, Mapping) else (lambda k: getattr(cfg, k))
    vq = {k: get(k) for k in _VQ_FIELDS}
    vq["commitment_cost"] = 0.25  # a training weight the reference constructor requires
    return {"model": {"vq_model": vq}, "dataset": {"preprocessing": {"crop_size": get("crop_size")}}}


def validate(cfg: Mapping[str, Any]) -> None:
    """Raise ``ConfigError`` for combinations the architecture cannot build.

    Example:
        >>> validate({"quantize_mode": "vq"})
    """
    mode = cfg.get("quantize_mode", "vq")
    if mode not in ("vq", "vae"):
        raise _config_error(f"quantize_mode must be 'vq' or 'vae', got {mode!r}")
    if mode == "vae" and cfg.get("finetune_decoder", True):
        raise _config_error("quantize_mode='vae' needs finetune_decoder=False (as in the reference)")
    for key in ("vit_enc_model_size", "vit_dec_model_size"):
        if key in cfg:
            vit_dims(cfg[key])
    if cfg.get("finetune_decoder", True) and not cfg.get("is_legacy", True):
        # The reference builds the RGB head when is_legacy=False; proxy logits need the legacy head.
        raise _config_error("finetune_decoder=True (MaskGIT-VQGAN pixel decoder) needs is_legacy=True")
    crop = cfg.get("crop_size", 256)
    for key in ("vit_enc_patch_size", "vit_dec_patch_size"):
        if key in cfg and crop % int(cfg[key]):
            raise _config_error(f"crop_size {crop} is not a multiple of {key}={cfg[key]}")
