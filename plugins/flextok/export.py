"""Write a :class:`FlexTokConfig` back in the official format (Hydra config in safetensors metadata).

The inverse of :func:`zoo_plugins.flextok.metadata.config_from_metadata`: used to save zoo
models as official-format files, and by the parity recorder to describe reference models as data.

Example:
    >>> from zoo_plugins.flextok.config import FlexTokConfig
    >>> from zoo_plugins.flextok.metadata import config_from_metadata
    >>> meta = to_metadata(FlexTokConfig())
    >>> config_from_metadata(meta)["decoder"]["transformer"]["depth"]
    28
"""

from __future__ import annotations

import dataclasses
from typing import Any

from .config import FlexTokConfig, TransformerConfig

__all__ = ["PKG", "to_header", "to_metadata"]

PKG = "flextok"  # the reference package's import root, as written in published configs

_ACT = {"silu": {"_target_": "torch.nn.SiLU", "_partial_": True},
        "gelu": {"_target_": "torch.nn.GELU", "_partial_": True},
        "gelu_tanh": {"_target_": "torch.nn.GELU", "_partial_": True, "approximate": "tanh"}}


def _t(path: str) -> str:
    return f"{PKG}.{path}"


def _norm(eps: float, affine: bool, bias: bool) -> dict[str, Any]:
    return {"_target_": _t("model.layers.norm.Fp32LayerNorm"), "_partial_": True, "bias": bool(bias and affine),
            "elementwise_affine": bool(affine), "eps": eps}


def _trunk(t: TransformerConfig, read: str, write: str, **extra: Any) -> dict[str, Any]:
    return {
        "_target_": _t("model.trunks.transformers.FlexTransformer"), "input_seq_read_key": read,
        "output_seq_write_key": write, "dim": t.dim, "depth": t.depth, "head_dim": t.head_dim,
        "mlp_ratio": t.mlp_ratio, "qkv_bias": t.qkv_bias, "proj_bias": t.proj_bias, "mlp_bias": t.mlp_bias,
        "act_layer": dict(_ACT[t.act]), "norm_layer": _norm(t.norm_eps, t.norm_affine, t.norm_bias),
        "gated_mlp": t.gated_mlp, "qk_norm": t.qk_norm, "use_act_checkpoint": False, **extra,
    }


def _op(name: str) -> dict[str, Any]:
    return {"_target_": _t(f"model.utils.dict_ops.{name}"), "_partial_": True}


def to_metadata(cfg: FlexTokConfig) -> dict[str, Any]:
    """The nested config dict (``_target_`` strings as data) the reference would store."""
    e, d, v = cfg.encoder, cfg.decoder, cfg.vae
    te, td = e.transformer, d.transformer
    lc = v.latent_channels
    en, dn = e.names, d.names
    fsq_dim = len(cfg.fsq_levels)

    enc: dict[str, Any] = {
        "enc_channels_to_last": {"_target_": _t("model.utils.dict_ops.PerSampleOp"), "read_key": "vae_latents",
                                 "write_key": "vae_latents_channels_last", "per_sample_op": _op("channels_first_to_last")},
        en["patch_emb"]: {"_target_": _t("model.preprocessors.patching.PatchEmbedder"),
                          "input_tensor_list_read_key": "vae_latents_channels_last",
                          "patches_list_write_key": "enc_patches", "n_patches_write_key": "enc_n_patches",
                          "patch_sizes": list(e.patch_size), "channels_in": lc, "dim": te.dim, "flatten_patches": False},
    }
    if e.posemb_type != "none":
        enc[en["posemb"]] = {"_target_": _t("model.utils.posembs.PositionalEmbeddingAdder"), "read_key": "enc_patches",
                             "write_key": "enc_patches", "dim": te.dim, "max_sizes": list(e.posemb_max_sizes),
                             "posemb_type": e.posemb_type, "posemb_scaling": e.posemb_scaling}
    reg = {"_target_": _t("model.preprocessors.registers.Registers1D"), "input_tensor_list_read_key": "enc_patches",
           "register_sizes_read_write_key": "register_sizes", "registers_write_key": "enc_registers", "dim": te.dim,
           "n_min": e.n_registers, "n_max": e.n_registers, "n_eval": e.n_eval_registers,
           "size_sampling_mode": "uniform", "ordering_mode": e.register_ordering}
    if e.extra_registers_dim is not None:
        reg.update(extra_registers_write_key="enc_extra_registers", extra_registers_dim=e.extra_registers_dim)
    enc[en["registers"]] = reg
    enc["enc_seq_packer"] = {"_target_": _t("model.preprocessors.flex_seq_packing.BlockWiseSequencePacker"),
                             "input_list_read_keys": ["enc_patches", "enc_registers"], "packed_seq_write_key": "enc_packed_seq",
                             "block_mask_write_key": "enc_block_mask", "inner_packed_shapes_write_key": "enc_ps_inner",
                             "outer_packed_shapes_write_key": "enc_ps_outer", "mask_mode": e.mask_mode, "pad_to_multiple": 128}
    enc[en["transformer"]] = _trunk(te, "enc_packed_seq", "enc_packed_seq", block_mask_read_key="enc_block_mask")
    enc["enc_unpacker"] = {"_target_": _t("model.postprocessors.seq_unpacking.SequenceUnpacker"),
                           "packed_seq_read_key": "enc_packed_seq", "inner_seq_write_keys": ["enc_patches", "enc_registers"],
                           "inner_packed_shapes_read_key": "enc_ps_inner", "outer_packed_shapes_read_key": "enc_ps_outer"}
    enc[en["to_latents"]] = {"_target_": _t("model.postprocessors.heads.LinearHead"), "read_key": "enc_registers",
                             "write_key": "enc_registers", "dim": te.dim, "dim_out": fsq_dim, "use_mup_readout": False,
                             "weight_init_style": "zero", "proj_bias": e.head_proj_bias,
                             "norm_layer": _norm(e.head_norm_eps, e.head_norm_affine, e.head_norm_bias) if e.head_norm else None}

    dec: dict[str, Any] = {
        dn["from_latents"]: {"_target_": _t("model.preprocessors.linear.LinearLayer"), "read_key": "enc_registers_quant",
                             "write_key": "dec_registers", "dim_in": fsq_dim, "dim": td.dim, "proj_bias": d.from_latents_bias},
    }
    if d.registers_posemb_type != "none":
        dec[dn["registers_posemb"]] = {"_target_": _t("model.utils.posembs.PositionalEmbeddingAdder"), "read_key": "dec_registers",
                                       "write_key": "dec_registers", "dim": td.dim, "max_sizes": list(d.registers_posemb_max_sizes),
                                       "posemb_type": d.registers_posemb_type, "posemb_scaling": "absolute"}
    if d.nested_dropout:
        dec[dn["nested_dropout"]] = {"_target_": _t("model.preprocessors.token_dropout.MaskedNestedDropout"),
                                     "read_write_key": "dec_registers", "dim": td.dim}
    if d.nullcond == "learned":
        dec[dn["nullcond"]] = {"_target_": _t("model.preprocessors.nullcond.LearnedNullCond"), "read_write_key": "dec_registers",
                               "dim": td.dim, "dropout_prob": 0.1, "replace_with_single_token": d.nullcond_single_token}
    elif d.nullcond == "zero":
        dec[dn["nullcond"]] = {"_target_": _t("model.preprocessors.nullcond.ZeroNullCond"), "read_write_key": "dec_registers",
                               "dropout_prob": 0.1}
    dec["dec_noise_channels_to_last"] = {"_target_": _t("model.utils.dict_ops.PerSampleOp"), "read_key": "vae_latents_noised",
                                         "write_key": "vae_latents_noised_channels_last", "per_sample_op": _op("channels_first_to_last")}
    dec[dn["patch_emb"]] = {"_target_": _t("model.preprocessors.patching.PatchEmbedder"),
                            "input_tensor_list_read_key": "vae_latents_noised_channels_last", "patches_list_write_key": "dec_patches",
                            "n_patches_write_key": "dec_n_patches", "patch_sizes": list(d.patch_size), "channels_in": lc,
                            "dim": td.dim, "flatten_patches": False}
    if d.posemb_type != "none":
        dec[dn["posemb"]] = {"_target_": _t("model.utils.posembs.PositionalEmbeddingAdder"), "read_key": "dec_patches",
                             "write_key": "dec_patches", "dim": td.dim, "max_sizes": list(d.posemb_max_sizes),
                             "posemb_type": d.posemb_type, "posemb_scaling": d.posemb_scaling}
    dec["dec_seq_packer"] = {"_target_": _t("model.preprocessors.flex_seq_packing.BlockWiseSequencePacker"),
                             "input_list_read_keys": ["dec_patches", "dec_registers"], "packed_seq_write_key": "dec_packed_seq",
                             "block_mask_write_key": "dec_block_mask", "inner_packed_shapes_write_key": "dec_ps_inner",
                             "outer_packed_shapes_write_key": "dec_ps_outer", "mask_mode": d.mask_mode, "pad_to_multiple": 128,
                             "emb_packing_fn_write_key": "dec_emb_packing_fn", "per_subseq_embs": td.adaln_expansion == 2}
    dec[dn["time_embedder"]] = {"_target_": _t("model.preprocessors.time_embedding.TimestepEmbedder"), "timesteps_read_key": "timesteps",
                                "time_embedding_write_key": "dec_temb", "dim": td.dim, "frequency_embedding_size": d.time_freq_dim,
                                "max_timestep": d.time_max}
    dec[dn["transformer"]] = _trunk(td, "dec_packed_seq", "dec_packed_seq", block_mask_read_key="dec_block_mask",
                                    adaLN_emb_read_key="dec_temb", adaLN_packing_fn_read_key="dec_emb_packing_fn",
                                    adaLN_expansion=td.adaln_expansion)
    dec["dec_unpacker"] = {"_target_": _t("model.postprocessors.seq_unpacking.SequenceUnpacker"),
                           "packed_seq_read_key": "dec_packed_seq", "inner_seq_write_keys": ["dec_patches", "dec_registers"],
                           "inner_packed_shapes_read_key": "dec_ps_inner", "outer_packed_shapes_read_key": "dec_ps_outer"}
    dec[dn["to_patches"]] = {"_target_": _t("model.postprocessors.heads.ToPatchesLinearHead"), "read_key": "dec_patches",
                             "write_key": "vae_latents_reconst_channels_last", "dim": td.dim, "channels_out": lc,
                             "patch_sizes": list(d.patch_size), "use_mup_readout": False, "weight_init_style": "zero",
                             "norm_layer": _norm(d.head_norm_eps, d.head_norm_affine, d.head_norm_bias) if d.head_norm else None,
                             "adaLN_emb_read_key": "dec_temb" if d.head_adaln else None, "adaLN_bias": d.head_adaln_bias,
                             "proj_bias": d.head_proj_bias}
    dec["dec_channels_to_first"] = {"_target_": _t("model.utils.dict_ops.PerSampleOp"), "read_key": "vae_latents_reconst_channels_last",
                                    "write_key": "vae_latents_reconst", "per_sample_op": _op("channels_last_to_first")}

    return {
        "_target_": _t("flextok_wrapper.FlexTok"),
        "vae": {"_target_": _t("vae_wrapper.StableDiffusionVAE"), "images_read_key": "rgb",
                "vae_latents_read_key": "vae_latents_reconst", "vae_latents_write_key": "vae_latents",
                "images_reconst_write_key": "rgb_reconst", "vae_kl_loss_write_key": "kl_loss", "latent_channels": lc,
                "scaling_factor": v.scaling_factor, "hf_hub_path": v.hf_hub_path, "sample_posterior": v.sample_posterior,
                "learnable_logvar": v.learnable_logvar, "frozen": True},
        "encoder": {"_target_": _t("model.utils.wrappers.SequentialModuleDictWrapper"), "module_dict": enc},
        "decoder": {"_target_": _t("model.utils.wrappers.SequentialModuleDictWrapper"), "module_dict": dec},
        "regularizer": {"_target_": _t("regularizers.quantize_fsq.FSQ"), "latents_read_key": "enc_registers",
                        "quants_write_key": "enc_registers_quant", "tokens_write_key": "tokens", "levels": list(cfg.fsq_levels)},
        "flow_matching_noise_module": {"_target_": _t("flow_matching.noise_modules.MinRFNoiseModule"),
                                       "clean_images_read_key": "vae_latents", "noised_images_write_key": "vae_latents_noised",
                                       "timesteps_write_key": "timesteps", "sigmas_write_key": "sigmas"},
        "pipeline": {"_target_": _t("flow_matching.pipelines.MinRFPipeline"), "_partial_": True,
                     "target_sizes_read_key": "vae_latents_sizes", "latents_read_key": "enc_registers_quant",
                     "timesteps_read_key": "timesteps", "noised_images_read_key": "vae_latents_noised",
                     "reconst_write_key": "vae_latents_reconst", "out_channels": lc},
    }


def to_header(meta: dict[str, Any]) -> dict[str, str]:
    """``{top_key: str(value)}``, exactly as the reference's ``save_safetensors`` writes it."""
    return {k: str(v) for k, v in meta.items()}


def asdict(cfg: FlexTokConfig) -> dict[str, Any]:
    """Plain nested dict of a config (for comparisons / JSON)."""
    return dataclasses.asdict(cfg)
