# ruff: noqa: C408  (the SPECS table mirrors the reference signatures as keyword lists)
"""Read FlexTok's Hydra config from a safetensors header, as data, onto :class:`FlexTokConfig`.

The official ``model.safetensors`` stores ``{top_key: str(python_repr)}`` in ``__metadata__``
(top keys ``_target_``, ``vae``, ``encoder``, ``decoder``, ``regularizer``,
``flow_matching_noise_module``, ``pipeline``). Each value is parsed with
:func:`ast.literal_eval` (never imported, never executed). Every ``_target_`` string is only
*compared* against the reference class names zoo understands; each module's fields are checked
against the full argument list of that reference class, and anything unknown -- a field, a
class, a data-flow zoo does not reproduce -- is a :class:`zoo.errors.ConfigError` naming it.

Example:
    >>> meta = {"_target_": "flextok.flextok_wrapper.FlexTok"}
    >>> parse_metadata(meta)["_target_"]
    'flextok.flextok_wrapper.FlexTok'
"""

from __future__ import annotations

import ast
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

try:
    from zoo.errors import ConfigError
except ImportError:  # pragma: no cover - core not installed
    class ConfigError(ValueError):  # type: ignore[no-redef]
        pass

__all__ = ["SPECS", "ConfigError", "config_from_metadata", "parse_metadata", "read_header_metadata"]

_REQ = object()  # marks a required argument
_HYDRA = {"_target_", "_partial_", "_recursive_", "_convert_"}
_MAX_VALUE_CHARS = 1_000_000

# Accepted constructor arguments (and defaults) of every reference class that can appear in a
# published config. Facts about the reference's interface, used to validate field names.
_LN_DEFAULT = {"_target_": "Fp32LayerNorm", "_partial_": True, "bias": False, "elementwise_affine": False}
SPECS: dict[str, dict[str, Any]] = {
    "FlexTok": dict(vae=_REQ, encoder=_REQ, decoder=_REQ, regularizer=_REQ, flow_matching_noise_module=_REQ, pipeline=_REQ),
    "StableDiffusionVAE": dict(
        images_read_key=_REQ, vae_latents_read_key=_REQ, vae_latents_write_key=_REQ, images_reconst_write_key=_REQ,
        vae_kl_loss_write_key=None, latent_channels=16, scaling_factor=None, dtype_override="fp32", hf_hub_path=None,
        sample_posterior=True, learnable_logvar=False, logvar_init=0.0, compile_encode_fn=False,
        force_vae_encode=True, frozen=False,
    ),
    "SequentialModuleDictWrapper": dict(module_dict=_REQ),
    "PerSampleOp": dict(read_key=_REQ, write_key=_REQ, per_sample_op=_REQ),
    "PatchEmbedder": dict(
        input_tensor_list_read_key=_REQ, patches_list_write_key=_REQ, n_patches_write_key=_REQ, patch_sizes=_REQ,
        channels_in=_REQ, dim=None, flatten_patches=True, weight_init_style="xavier",
    ),
    "PositionalEmbeddingAdder": dict(
        read_key=_REQ, write_key=_REQ, dim=_REQ, max_sizes=_REQ, posemb_type="sincos", posemb_scaling="absolute",
        posemb_write_key=None,
    ),
    "Registers1D": dict(
        input_tensor_list_read_key=_REQ, register_sizes_read_write_key=_REQ, registers_write_key=_REQ, dim=_REQ,
        n_min=_REQ, n_max=_REQ, n_eval=None, size_sampling_mode="uniform", ordering_mode="nested",
        extra_registers_write_key=None, extra_registers_dim=None,
    ),
    "BlockWiseSequencePacker": dict(
        input_list_read_keys=_REQ, packed_seq_write_key=_REQ, block_mask_write_key=_REQ,
        inner_packed_shapes_write_key=_REQ, outer_packed_shapes_write_key=_REQ, mask_mode="full", max_seq_len=None,
        pad_to_multiple=None, emb_packing_fn_write_key=None, per_subseq_embs=False, compile_block_mask=True,
        return_materialized_mask=False,
    ),
    "FlexTransformer": dict(
        input_seq_read_key=_REQ, output_seq_write_key=_REQ, dim=768, depth=12, head_dim=64, mlp_ratio=4.0,
        qkv_bias=False, proj_bias=False, mlp_bias=False, drop=0.0, drop_path_rate=0.0, act_layer="SiLU",
        norm_layer=_LN_DEFAULT, gated_mlp=True, qk_norm=True, use_act_checkpoint=False, weight_init_style="xavier",
        zero_init_query_proj=False, block_mask_read_key=None, score_mod_read_key=None, adaLN_emb_read_key=None,
        adaLN_packing_fn_read_key=None, adaLN_expansion=1, rope_forward_read_key=None,
        intermediate_layer_write_key=None, intermediate_layers=[],
    ),
    "SequenceUnpacker": dict(
        packed_seq_read_key=_REQ, inner_seq_write_keys=_REQ, inner_packed_shapes_read_key=_REQ,
        outer_packed_shapes_read_key=_REQ,
    ),
    "LinearHead": dict(
        read_key=_REQ, write_key=_REQ, dim=_REQ, dim_out=_REQ, use_mup_readout=_REQ, weight_init_style="zero",
        norm_layer=_LN_DEFAULT, dtype_override=None, adaLN_emb_read_key=None, adaLN_packing_fn_read_key=None,
        adaLN_bias=True, proj_bias=True,
    ),
    "ToPatchesLinearHead": dict(
        read_key=_REQ, write_key=_REQ, dim=_REQ, channels_out=_REQ, patch_sizes=_REQ, use_mup_readout=_REQ,
        weight_init_style="zero", norm_layer=_LN_DEFAULT, dtype_override=None, adaLN_emb_read_key=None,
        adaLN_packing_fn_read_key=None, adaLN_bias=True, proj_bias=True,
    ),
    "FSQ": dict(
        latents_read_key=_REQ, quants_write_key=_REQ, tokens_write_key=_REQ, levels=_REQ, drop_quant_p=0.0,
        corrupt_tokens_p=0.0, min_corrupt_tokens_p=None, apply_corrupt_tokens_p=0.2, packed_call=True,
    ),
    "LinearLayer": dict(read_key=_REQ, write_key=_REQ, dim_in=_REQ, dim=_REQ, weight_init_style="xavier", dtype_override=None, proj_bias=True),
    "MaskedNestedDropout": dict(
        read_write_key=_REQ, dim=_REQ, eval_keep_k_read_key="eval_keep_k", train_keep_k_write_key="train_keep_k",
        size_sampling_mode="uniform",
    ),
    "LearnedNullCond": dict(
        read_write_key=_REQ, dim=_REQ, eval_drop_flag_read_key="eval_dropout_mask", dropout_prob=0.0,
        replace_with_single_token=False,
    ),
    "ZeroNullCond": dict(read_write_key=_REQ, eval_drop_flag_read_key="eval_dropout_mask", dropout_prob=0.0),
    "TimestepEmbedder": dict(
        timesteps_read_key=_REQ, time_embedding_write_key=_REQ, dim=_REQ, frequency_embedding_size=256,
        weight_init_style="xavier", max_timestep=1000.0, temb_as_tokens=False,
    ),
    "MinRFNoiseModule": dict(
        clean_images_read_key=_REQ, noised_images_write_key=_REQ, timesteps_write_key=_REQ, sigmas_write_key=_REQ,
        ln=True, stratisfied=False, mode_scale=0.0, noise_write_key="flow_noise", noise_read_key=None,
    ),
    "MinRFPipeline": dict(
        noise_read_key=None, target_sizes_read_key=None, latents_read_key=None, timesteps_read_key=None,
        noised_images_read_key=None, reconst_write_key=None, out_channels=None,
    ),
    "Fp32LayerNorm": dict(normalized_shape=None, eps=1e-5, elementwise_affine=True, bias=True),
    "LayerNorm": dict(normalized_shape=None, eps=1e-5, elementwise_affine=True, bias=True),
}
_TOP_KEYS = ("_target_", "vae", "encoder", "decoder", "regularizer", "flow_matching_noise_module", "pipeline")
_ACTS = {"SiLU": "silu", "GELU": "gelu"}


# ----------------------------------------------------------------------------- reading


def read_header_metadata(path: str | Path) -> dict[str, str]:
    """The ``__metadata__`` dict of a safetensors file, read from its JSON header only.

    Example:
        >>> import tempfile, os, torch
        >>> from safetensors.torch import save_file
        >>> p = os.path.join(tempfile.mkdtemp(), "m.safetensors")
        >>> save_file({"x": torch.zeros(1)}, p, metadata={"vae": "{'latent_channels': 16}"})
        >>> read_header_metadata(p)
        {'vae': "{'latent_channels': 16}"}
    """
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        if n <= 0 or n > 100_000_000:
            raise ConfigError(f"{path}: not a safetensors file (header length {n})")
        try:
            header = json.loads(f.read(n))
        except (ValueError, UnicodeDecodeError) as exc:  # truncated or lying header
            raise ConfigError(f"{path}: the safetensors header is not readable JSON ({exc}); is the file truncated?") from None
    meta = header.get("__metadata__", {}) if isinstance(header, dict) else None
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise ConfigError(f"{path}: the safetensors __metadata__ must map names to strings")
    return dict(meta)


def parse_metadata(raw: Mapping[str, str]) -> dict[str, Any]:
    """Parse each ``str(python_repr)`` value with :func:`ast.literal_eval` (strings stay strings)."""
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if not isinstance(value, str):
            out[key] = value
            continue
        if len(value) > _MAX_VALUE_CHARS:
            raise ConfigError(f"metadata value {key!r} is {len(value)} characters long; refusing to parse")
        try:
            out[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            out[key] = value
    return out


# ----------------------------------------------------------------------------- nodes


def _cls(target: Any, where: str) -> str:
    if not isinstance(target, str) or not target:
        raise ConfigError(f"{where}: `_target_` must be a class path string, got {target!r}")
    return target.rsplit(".", 1)[-1]


def _node(value: Any, where: str, allowed: tuple[str, ...] | None = None) -> tuple[str, dict[str, Any]]:
    """(class name, args with defaults filled) of one Hydra node; unknown fields raise."""
    if not isinstance(value, Mapping) or "_target_" not in value:
        raise ConfigError(f"{where}: expected a mapping with a `_target_`, got {type(value).__name__}")
    cls = _cls(value["_target_"], where)
    if cls not in SPECS or (allowed is not None and cls not in allowed):
        ok = ", ".join(allowed or sorted(SPECS))
        raise ConfigError(
            f"{where}: module class {value['_target_']!r} is not supported by zoo's FlexTok "
            f"(supported here: {ok}). zoo does not guess what an unknown module does."
        )
    spec = SPECS[cls]
    unknown = sorted(k for k in value if k not in spec and k not in _HYDRA)
    if unknown:
        raise ConfigError(
            f"{where}: unknown field(s) {', '.join(map(repr, unknown))} for {cls} "
            f"(accepted: {', '.join(sorted(spec))})"
        )
    args = {}
    for k, default in spec.items():
        if k in value:
            args[k] = value[k]
        elif default is _REQ:
            raise ConfigError(f"{where}: {cls} is missing its required field {k!r}")
        else:
            args[k] = default
    return cls, args


def _callable_name(value: Any, where: str) -> str:
    """Name of a callable given as a Hydra node (``_partial_``/``get_method``) or a path string."""
    if isinstance(value, str):
        return value.rsplit(".", 1)[-1]
    if isinstance(value, Mapping):
        target = value.get("_target_", "")
        name = _cls(target, where)
        if name in ("get_method", "get_class", "get_object") and "path" in value:
            return str(value["path"]).rsplit(".", 1)[-1]
        extra = sorted(k for k in value if k not in _HYDRA)
        if extra and name not in ("Fp32LayerNorm", "LayerNorm"):
            raise ConfigError(f"{where}: arguments {extra} for {name} are not supported")
        return name
    raise ConfigError(f"{where}: expected a callable reference, got {value!r}")


def _norm(value: Any, where: str) -> dict[str, Any] | None:
    """``{eps, affine, bias}`` of a norm_layer node, or None for no norm."""
    if value is None:
        return None
    if isinstance(value, str):
        value = {"_target_": value}
    _, args = _node(value, where, ("Fp32LayerNorm", "LayerNorm"))
    affine = bool(args["elementwise_affine"])
    return {"eps": float(args["eps"]), "affine": affine, "bias": affine and bool(args["bias"])}


def _act(value: Any, where: str) -> str:
    name = _callable_name(value, where)
    if name not in _ACTS:
        raise ConfigError(f"{where}: activation {name!r} is not supported (supported: {sorted(_ACTS)})")
    if isinstance(value, Mapping) and value.get("approximate", "none") != "none":
        return "gelu_tanh"
    return _ACTS[name]


def _check(cond: bool, where: str, msg: str) -> None:
    if not cond:
        raise ConfigError(f"{where}: {msg}")


def _transformer(args: dict[str, Any], where: str) -> dict[str, Any]:
    for k in ("score_mod_read_key", "rope_forward_read_key"):
        _check(args[k] is None, where, f"{k}={args[k]!r} is not supported (no score_mod / RoPE in FlexTok)")
    norm = _norm(args["norm_layer"], where + ".norm_layer")
    _check(norm is not None, where, "norm_layer=None is not supported")
    return {
        "dim": int(args["dim"]), "depth": int(args["depth"]), "head_dim": int(args["head_dim"]),
        "mlp_ratio": float(args["mlp_ratio"]), "qkv_bias": bool(args["qkv_bias"]),
        "proj_bias": bool(args["proj_bias"]), "mlp_bias": bool(args["mlp_bias"]),
        "gated_mlp": bool(args["gated_mlp"]), "qk_norm": bool(args["qk_norm"]),
        "act": _act(args["act_layer"], where + ".act_layer"), "norm_eps": norm["eps"],
        "norm_affine": norm["affine"], "norm_bias": norm["bias"],
        "adaln_expansion": int(args["adaLN_expansion"]) if args["adaLN_emb_read_key"] is not None else 0,
    }


def _modules(node: Any, where: str) -> list[tuple[str, str, dict[str, Any]]]:
    _, args = _node(node, where, ("SequentialModuleDictWrapper",))
    md = args["module_dict"]
    _check(isinstance(md, Mapping), where, "module_dict must be a mapping")
    out = []
    for name, sub in md.items():
        sub_cls, sub_args = _node(sub, f"{where}.module_dict.{name}")
        out.append((str(name), sub_cls, sub_args))
    return out


def _posemb(args: dict[str, Any], where: str, dims: int) -> dict[str, Any]:
    ptype = args["posemb_type"]
    _check(ptype in ("sincos", "learnable_sum", "learnable_prod"), where, f"posemb_type {ptype!r} is not supported")
    _check(args["posemb_scaling"] in ("absolute", "interpolate"), where, f"posemb_scaling {args['posemb_scaling']!r} is not supported")
    sizes = [int(s) for s in args["max_sizes"]]
    _check(len(sizes) == dims, where, f"max_sizes {sizes} must have {dims} entries here")
    return {"type": ptype, "max_sizes": sizes, "scaling": args["posemb_scaling"]}


# ----------------------------------------------------------------------------- encoder / decoder


def _encoder(node: Any, latent_channels: int) -> dict[str, Any]:
    where = "encoder"
    names: dict[str, str] = {}
    out: dict[str, Any] = {}
    head: dict[str, Any] | None = None
    for name, cls, a in _modules(node, where):
        w = f"{where}.module_dict.{name}"
        if cls == "PerSampleOp":
            op = _callable_name(a["per_sample_op"], w + ".per_sample_op")
            _check(op == "channels_first_to_last", w, f"per_sample_op {op!r} is not supported in the encoder")
        elif cls == "PatchEmbedder":
            _check("patch_emb" not in names, w, "a second PatchEmbedder is not supported")
            _check(int(a["channels_in"]) == latent_channels, w, f"channels_in={a['channels_in']} but the VAE has {latent_channels} latent channels")
            _check(a["dim"] is not None, w, "dim=None (no patch projection) is not supported")
            names["patch_emb"] = name
            out["patch_size"] = [int(p) for p in a["patch_sizes"]]
            _check(len(out["patch_size"]) == 2, w, "only 2D patch sizes are supported")
            out["_dim_patch"] = int(a["dim"])
        elif cls == "PositionalEmbeddingAdder":
            _check("posemb" not in names, w, "a second positional embedding is not supported in the encoder")
            names["posemb"] = name
            p = _posemb(a, w, 2)
            out.update(posemb_type=p["type"], posemb_max_sizes=p["max_sizes"], posemb_scaling=p["scaling"])
        elif cls == "Registers1D":
            names["registers"] = name
            _check(a["ordering_mode"] in ("nested", "avg_pool"), w, f"ordering_mode {a['ordering_mode']!r} is not supported")
            out.update(
                n_registers=int(a["n_max"]), n_eval_registers=None if a["n_eval"] is None else int(a["n_eval"]),
                register_ordering=a["ordering_mode"],
                extra_registers_dim=(int(a["extra_registers_dim"]) if a["extra_registers_write_key"] is not None else None),
            )
        elif cls == "BlockWiseSequencePacker":
            _check(len(a["input_list_read_keys"]) == 2, w, "the encoder must pack exactly [patches, registers]")
            _check(a["mask_mode"] in ("causal_last", "full", "causal"), w, f"mask_mode {a['mask_mode']!r} is not supported")
            out["mask_mode"] = a["mask_mode"]
            out["_pack_keys"] = list(a["input_list_read_keys"])
        elif cls == "FlexTransformer":
            names["transformer"] = name
            t = _transformer(a, w)
            _check(t["adaln_expansion"] == 0, w, "adaLN in the encoder is not supported")
            out["transformer"] = t
        elif cls == "SequenceUnpacker":
            pass
        elif cls == "LinearHead":
            _check("to_latents" not in names, w, "a second LinearHead is not supported")
            _check(not a["use_mup_readout"], w, "use_mup_readout=True is not supported (muP readout rescales outputs)")
            _check(a["adaLN_emb_read_key"] is None, w, "adaLN in the encoder head is not supported")
            names["to_latents"] = name
            norm = _norm(a["norm_layer"], w + ".norm_layer")
            head = {"dim_out": int(a["dim_out"])}
            out.update(
                head_norm=norm is not None, head_norm_eps=(norm or {}).get("eps", 1e-5),
                head_norm_affine=(norm or {}).get("affine", False), head_norm_bias=(norm or {}).get("bias", False),
                head_proj_bias=bool(a["proj_bias"]),
            )
        else:
            raise ConfigError(f"{w}: module class {cls} is not supported in the FlexTok encoder")
    missing = [r for r in ("patch_emb", "registers", "transformer", "to_latents") if r not in names]
    _check(not missing, where, f"no module for {missing}")
    _check(out["_dim_patch"] == out["transformer"]["dim"], where, "patch embedding dim differs from transformer dim")
    out["_latent_dim"] = head["dim_out"] if head else None
    out.pop("_dim_patch")
    out.pop("_pack_keys", None)
    if "posemb" not in names:
        out["posemb_type"] = "none"
        names["posemb"] = "enc_posemb_module"
    out["names"] = names
    return out


def _decoder(node: Any, latent_channels: int) -> dict[str, Any]:
    where = "decoder"
    names: dict[str, str] = {}
    out: dict[str, Any] = {"nested_dropout": False, "nullcond": "none", "registers_posemb_type": "none"}
    adaln_packing_key = None
    per_subseq = False
    for name, cls, a in _modules(node, where):
        w = f"{where}.module_dict.{name}"
        if cls == "LinearLayer":
            _check("from_latents" not in names, w, "a second LinearLayer is not supported")
            names["from_latents"] = name
            out["from_latents_bias"] = bool(a["proj_bias"])
            out["_fsq_dim"] = int(a["dim_in"])
        elif cls == "PositionalEmbeddingAdder":
            if "patch_emb" not in names:  # before the noise patches exist: the register posemb
                _check("registers_posemb" not in names, w, "a second register posemb is not supported")
                names["registers_posemb"] = name
                p = _posemb(a, w, 1)
                _check(p["type"] != "sincos", w, "1D sincos posembs do not exist in the reference")
                out.update(registers_posemb_type=p["type"], registers_posemb_max_sizes=p["max_sizes"])
            else:
                _check("posemb" not in names, w, "a second patch posemb is not supported")
                names["posemb"] = name
                p = _posemb(a, w, 2)
                out.update(posemb_type=p["type"], posemb_max_sizes=p["max_sizes"], posemb_scaling=p["scaling"])
        elif cls == "MaskedNestedDropout":
            names["nested_dropout"] = name
            out["nested_dropout"] = True
        elif cls in ("LearnedNullCond", "ZeroNullCond"):
            names["nullcond"] = name
            out["nullcond"] = "learned" if cls == "LearnedNullCond" else "zero"
            out["nullcond_single_token"] = bool(a.get("replace_with_single_token", False))
        elif cls == "PerSampleOp":
            op = _callable_name(a["per_sample_op"], w + ".per_sample_op")
            _check(op in ("channels_first_to_last", "channels_last_to_first"), w, f"per_sample_op {op!r} is not supported")
        elif cls == "PatchEmbedder":
            _check("patch_emb" not in names, w, "a second PatchEmbedder is not supported")
            _check(int(a["channels_in"]) == latent_channels, w, f"channels_in={a['channels_in']} but the VAE has {latent_channels} latent channels")
            _check(a["dim"] is not None, w, "dim=None is not supported")
            names["patch_emb"] = name
            out["patch_size"] = [int(p) for p in a["patch_sizes"]]
        elif cls == "BlockWiseSequencePacker":
            _check(len(a["input_list_read_keys"]) == 2, w, "the decoder must pack exactly [patches, registers]")
            _check(a["mask_mode"] == "full", w, f"decoder mask_mode {a['mask_mode']!r} is not supported")
            out["mask_mode"] = a["mask_mode"]
            per_subseq = bool(a["per_subseq_embs"])
            adaln_packing_key = a["emb_packing_fn_write_key"]
        elif cls == "TimestepEmbedder":
            _check(not a["temb_as_tokens"], w, "temb_as_tokens=True is not supported")
            names["time_embedder"] = name
            out.update(time_freq_dim=int(a["frequency_embedding_size"]), time_max=float(a["max_timestep"]))
        elif cls == "FlexTransformer":
            names["transformer"] = name
            t = _transformer(a, w)
            _check(t["adaln_expansion"] > 0, w, "a decoder trunk without adaLN time conditioning is not supported")
            _check(a["adaLN_packing_fn_read_key"] is not None and a["adaLN_packing_fn_read_key"] == adaln_packing_key, w,
                   "adaLN_packing_fn_read_key must be the decoder sequence packer's emb_packing_fn_write_key")
            want = 2 if per_subseq else 1
            _check(t["adaln_expansion"] == want, w,
                   f"adaLN_expansion={t['adaln_expansion']} but the packer gives {want} embedding(s) per image")
            out["transformer"] = t
        elif cls == "SequenceUnpacker":
            pass
        elif cls == "ToPatchesLinearHead":
            names["to_patches"] = name
            _check(not a["use_mup_readout"], w, "use_mup_readout=True is not supported")
            _check(int(a["channels_out"]) == latent_channels, w, "channels_out must equal the VAE latent channels")
            _check(a["adaLN_packing_fn_read_key"] is None, w, "a custom adaLN packing function for the head is not supported")
            norm = _norm(a["norm_layer"], w + ".norm_layer")
            out.update(
                head_norm=norm is not None, head_norm_eps=(norm or {}).get("eps", 1e-5),
                head_norm_affine=(norm or {}).get("affine", False), head_norm_bias=(norm or {}).get("bias", False),
                head_adaln=a["adaLN_emb_read_key"] is not None, head_adaln_bias=bool(a["adaLN_bias"]),
                head_proj_bias=bool(a["proj_bias"]),
            )
            _check([int(p) for p in a["patch_sizes"]] == out.get("patch_size"), w, "head patch_sizes differ from the patch embedder's")
        else:
            raise ConfigError(f"{w}: module class {cls} is not supported in the FlexTok decoder")
    missing = [r for r in ("from_latents", "patch_emb", "time_embedder", "transformer", "to_patches") if r not in names]
    _check(not missing, where, f"no module for {missing}")
    for role in ("registers_posemb", "nested_dropout", "nullcond", "posemb"):
        names.setdefault(role, _DEC_DEFAULT_NAMES[role])
    if "posemb_type" not in out:
        out["posemb_type"] = "none"
    out["names"] = names
    return out


_DEC_DEFAULT_NAMES = {  # state-dict names of optional decoder modules a config may leave out
    "registers_posemb": "dec_registers_posemb_module", "nested_dropout": "dec_nested_dropout",
    "nullcond": "dec_latent_dropout", "posemb": "dec_patches_posemb_module",
}


# ----------------------------------------------------------------------------- top level


def config_from_metadata(meta: Mapping[str, Any]) -> dict[str, Any]:
    """Map a parsed FlexTok metadata dict onto :class:`FlexTokConfig` fields (a nested dict).

    Raises :class:`ConfigError` naming any top key, module class or field zoo does not map.
    """
    meta = parse_metadata(meta) if any(isinstance(v, str) and k != "_target_" for k, v in meta.items()) else dict(meta)
    unknown = sorted(k for k in meta if k not in _TOP_KEYS)
    if unknown:
        raise ConfigError(f"FlexTok metadata: unknown top-level key(s) {unknown} (known: {list(_TOP_KEYS)})")
    if "_target_" in meta:
        _check(_cls(meta["_target_"], "_target_") in ("FlexTok", "FlexTokFromHub"), "_target_",
               f"{meta['_target_']!r} is not a FlexTok model")
    for k in _TOP_KEYS[1:]:
        _check(k in meta, "FlexTok metadata", f"missing top-level key {k!r}")

    _, vae = _node(meta["vae"], "vae", ("StableDiffusionVAE",))
    _check(vae["dtype_override"] in (None, "fp32", "float32"), "vae",
           f"dtype_override={vae['dtype_override']!r}: zoo runs the VAE in the model's dtype; only fp32 is mapped")
    lc = int(vae["latent_channels"])
    cfg: dict[str, Any] = {
        "vae": {
            "latent_channels": lc,
            "sample_posterior": bool(vae["sample_posterior"]),
            "learnable_logvar": bool(vae["learnable_logvar"]),
            "hf_hub_path": vae["hf_hub_path"],
        }
    }
    if vae["scaling_factor"] is not None:  # absent: the VAE's config.json (or the card) says
        cfg["vae"]["scaling_factor"] = float(vae["scaling_factor"])
    _, fsq = _node(meta["regularizer"], "regularizer", ("FSQ",))
    levels = [int(x) for x in fsq["levels"]]
    cfg["fsq_levels"] = levels
    _node(meta["flow_matching_noise_module"], "flow_matching_noise_module", ("MinRFNoiseModule",))
    _, pipe = _node(meta["pipeline"], "pipeline", ("MinRFPipeline",))
    _check(pipe["noise_read_key"] is None, "pipeline", "noise_read_key must be None (zoo draws the initial noise)")
    _check(pipe["out_channels"] in (None, lc), "pipeline", f"out_channels={pipe['out_channels']} but the VAE has {lc} latent channels")

    enc = _encoder(meta["encoder"], lc)
    latent_dim = enc.pop("_latent_dim")
    _check(latent_dim == len(levels), "encoder", f"to-latents head outputs {latent_dim} dims but FSQ has {len(levels)} levels")
    dec = _decoder(meta["decoder"], lc)
    _check(dec.pop("_fsq_dim") == len(levels), "decoder", "from-latents input dim differs from the FSQ dim")
    cfg["encoder"] = enc
    cfg["decoder"] = dec
    return cfg
