"""LARP's typed config and the mapping from the release's ``config.json``.

The hub repo ``hywang66/LARP-L-long-tokenizer`` was saved with huggingface_hub's
``PyTorchModelHubMixin``: ``config.json`` holds the keyword arguments of ``LARPTokenizer(...)``,
including the nested ``bottleneck`` spec (``{"name": "bottleneck", "args": {"bottleneck_dim",
"norm", "regularizer": {"name": "vq", "args": {...}}}}``) and the training-only ``prior_model``
spec. Those are read as data onto :class:`LARPConfig`: nothing named in the file is imported or
instantiated, unknown fields are a :class:`~zoo.errors.ConfigError` naming them.

This module does not import torch.

Example:
    >>> cfg = from_reference_config({"bottleneck_token_num": 1024, "input_size": 128, "frame_num": 16,
    ...     "bottleneck": {"name": "bottleneck", "args": {"bottleneck_dim": 16, "norm": "none",
    ...         "regularizer": {"name": "vq", "args": {"codebook_size": 8192, "l2_normalized": True,
    ...             "stochastic": True, "stochastic_temperature": 0.03}}}},
    ...     "prior_model": {"name": "gptc-S", "n_rounds": 2}})
    >>> cfg["codebook_size"], cfg["bottleneck_dim"], cfg["stochastic_temperature"]
    (8192, 16, 0.03)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

__all__ = ["LARPConfig", "from_reference_config", "to_reference_config", "validate"]


@dataclass
class LARPConfig:
    """Architecture of a LARP tokenizer (field names follow ``LARPTokenizer.__init__``; the
    bottleneck fields are flattened from its nested spec).

    * Encoder: 3-D patches (``temporal_patch_size`` x ``patch_size``\\ :sup:`2`) + sine-cosine
      position buffer, ``bottleneck_token_num`` learned queries appended, ``encoder_depth`` timm
      blocks of full attention over [patches | queries]; the queries' outputs are the latents.
    * Bottleneck: ``in_linear`` to ``bottleneck_dim``, VQ over ``codebook_size`` codes
      (``l2_normalized``: cosine; ``stochastic``: the reference samples
      ``softmax(cos / stochastic_temperature)``), ``out_linear`` back to the decoder width.
    * Decoder: latents + a position buffer, patch queries appended, ``decoder_depth`` blocks,
      LayerNorm + linear to pixels in [0, 1].
    """

    bottleneck_token_num: int = 1024
    input_size: int = 128
    frame_num: int = 16
    temporal_patch_size: int = 4
    patch_size: int = 8
    decoder_temporal_patch_size: int = 4
    decoder_patch_size: int = 8
    in_channels: int = 3
    encoder_hidden_size: int = 768
    decoder_hidden_size: int = 768
    encoder_num_heads: int = 12
    decoder_num_heads: int = 12
    encoder_depth: int = 12
    decoder_depth: int = 12
    latent_pe_scale_factor: float = 10000.0
    learned_encoder_patch_pe: bool = False
    learned_encoder_latent_query_embed: bool = True
    learned_decoder_latent_pe: bool = False
    learned_decoder_patch_query_embed: bool = False
    use_encoder_patch_token_type_embed: bool = False
    use_encoder_latent_query_token_type_embed: bool = False
    use_decoder_latent_token_type_embed: bool = False
    use_decoder_patch_query_token_type_embed: bool = True
    bottleneck_dim: int = 16
    bottleneck_norm: str = "none"
    codebook_size: int = 8192
    l2_normalized: bool = True
    stochastic: bool = True
    stochastic_temperature: float = 0.03


# LARPTokenizer kwargs that change nothing at inference (initialisation, module-name choices with one value).
_IGNORED_TOP = ("query_init_std", "encoder_query_gaussian_init", "prior_model")
_NAMED_MODULES = ("transformer_name", "encoder_name", "decoder_name")
_SUPPORTED_TRANSFORMER = "transformer_encoder_parallel"
# Regularizer args that only weight training losses (plus the two the Bottleneck writes into the spec).
_IGNORED_VQ = ("commitment_loss_weight", "codebook_loss_weight", "entropy_loss_weight", "entropy_loss_temperature",
               "same_index_shape", "dim", "token_nums")
_NORMS = ("none", "no", "ln_d", "ln_d_na")


def _error(msg: str) -> Exception:
    from zoo.errors import ConfigError

    return ConfigError(msg)


def _section(tree: Mapping[str, Any], key: str, where: str) -> Mapping[str, Any]:
    value = tree.get(key)
    if not isinstance(value, Mapping):
        raise _error(f"LARP config: `{where}` must be a mapping, got {type(value).__name__}")
    return value


def from_reference_config(tree: Mapping[str, Any]) -> dict[str, Any]:
    """Map the release's ``config.json`` (``LARPTokenizer`` kwargs) onto :class:`LARPConfig` fields."""
    if not isinstance(tree, Mapping):
        raise _error(f"LARP config must be a mapping, got {type(tree).__name__}")
    flat = {f.name for f in fields(LARPConfig)} - {"bottleneck_dim", "bottleneck_norm", "codebook_size", "l2_normalized",
                                                     "stochastic", "stochastic_temperature"}
    unknown = sorted(set(tree) - flat - set(_IGNORED_TOP) - set(_NAMED_MODULES) - {"bottleneck"})
    if unknown:
        raise _error(f"unknown LARP config field(s) {unknown}; known: {sorted(flat | {'bottleneck'})}")
    for key in _NAMED_MODULES:
        name = tree.get(key)
        if name is not None and str(name).lower() not in ("none", "no", "null", "", _SUPPORTED_TRANSFORMER):
            raise _error(f"LARP config {key}={name!r}: zoo implements the released '{_SUPPORTED_TRANSFORMER}' only")
    out: dict[str, Any] = {k: tree[k] for k in flat if k in tree}
    if "bottleneck" in tree:
        spec = _section(tree, "bottleneck", "bottleneck")
        if spec.get("name", "bottleneck") != "bottleneck":
            raise _error(f"LARP bottleneck {spec.get('name')!r} is not supported (the release uses 'bottleneck')")
        args = _section(spec, "args", "bottleneck.args")
        extra = sorted(set(args) - {"bottleneck_dim", "norm", "regularizer", "param_names", "token_nums", "input_dim", "output_dim"})
        if extra:
            raise _error(f"unknown LARP bottleneck field(s) {extra}")
        out["bottleneck_dim"] = int(args.get("bottleneck_dim", 16))
        out["bottleneck_norm"] = str(args.get("norm") or "none").lower()
        reg = _section(args, "regularizer", "bottleneck.args.regularizer")
        if reg.get("name") != "vq":
            raise _error(f"LARP regularizer {reg.get('name')!r}: zoo implements the released 'vq' tokenizer only")
        rargs = _section(reg, "args", "bottleneck.args.regularizer.args")
        known = {"codebook_size", "l2_normalized", "stochastic", "stochastic_temperature"}
        extra = sorted(set(rargs) - known - set(_IGNORED_VQ))
        if extra:
            raise _error(f"unknown LARP VQ field(s) {extra}; known: {sorted(known)}")
        out.update({k: rargs[k] for k in known if k in rargs})
    validate(out)
    return out


def to_reference_config(cfg: Any) -> dict[str, Any]:
    """The ``LARPTokenizer`` kwargs of a config (inverse of :func:`from_reference_config`), with
    the release's ``gptc-S`` prior spec; used to build the reference side by side.

    Example:
        >>> to_reference_config(LARPConfig())["bottleneck"]["args"]["regularizer"]["args"]["codebook_size"]
        8192
    """
    get = (lambda k: cfg[k]) if isinstance(cfg, Mapping) else (lambda k: getattr(cfg, k))
    names = [f.name for f in fields(LARPConfig)]
    top = {k: get(k) for k in names[: names.index("bottleneck_dim")]}
    top["bottleneck"] = {"name": "bottleneck", "args": {"bottleneck_dim": get("bottleneck_dim"), "norm": get("bottleneck_norm"),
                         "regularizer": {"name": "vq", "args": {
                             "codebook_size": get("codebook_size"), "commitment_loss_weight": 0.25,
                             "codebook_loss_weight": 1.0, "entropy_loss_weight": 0.0, "entropy_loss_temperature": 0.01,
                             "l2_normalized": get("l2_normalized"), "stochastic": get("stochastic"),
                             "stochastic_temperature": get("stochastic_temperature")}}}}
    top["prior_model"] = {"name": "gptc-S", "use_mix_ss": True, "mix_ss_max_ratio": 0.5, "mix_ss_peak_steps_ratio": 0.3,
                          "n_rounds": 2, "avg_loss_over_rounds": True, "no_grad_before_last_round": False,
                          "no_dropout": False, "latent_ce_temperature": 1.0, "args": {"l2_normalized": True}}
    top["transformer_name"] = _SUPPORTED_TRANSFORMER
    return top


def validate(cfg: Mapping[str, Any]) -> None:
    """Raise ``ConfigError`` for combinations the released architecture cannot build.

    Example:
        >>> validate({"input_size": 128, "patch_size": 8})
    """
    def get(k):
        return cfg.get(k, getattr(LARPConfig, k))

    if get("temporal_patch_size") < 2:
        raise _error("temporal_patch_size 1 (per-frame 2-D patches) is not supported; the release uses 4")
    if (get("decoder_patch_size"), get("decoder_temporal_patch_size")) != (get("patch_size"), get("temporal_patch_size")):
        raise _error("decoder patch sizes must equal the encoder's (the reference unpatchifies with the encoder's sizes)")
    if get("input_size") % get("patch_size") or get("frame_num") % get("temporal_patch_size"):
        raise _error(f"input_size {get('input_size')} / frame_num {get('frame_num')} must be multiples of "
                     f"patch_size {get('patch_size')} / temporal_patch_size {get('temporal_patch_size')}")
    for w, h in (("encoder_hidden_size", "encoder_num_heads"), ("decoder_hidden_size", "decoder_num_heads")):
        if get(w) % get(h):
            raise _error(f"{w}={get(w)} is not divisible by {h}={get(h)}")
    if str(get("bottleneck_norm")).lower() not in _NORMS:
        raise _error(f"bottleneck norm {get('bottleneck_norm')!r} is not supported; one of {list(_NORMS)} "
                     "(the batch-norm variants are training-only)")
    if get("stochastic") and not get("l2_normalized"):
        raise _error("stochastic VQ needs l2_normalized=True (as the reference asserts)")
