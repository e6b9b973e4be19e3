"""FlexTok's config comes from the checkpoint's metadata, as data, onto a typed config."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from zoo_plugins.flextok.config import FlexTokConfig
from zoo_plugins.flextok.export import to_header, to_metadata
from zoo_plugins.flextok.metadata import (
    SPECS,
    config_from_metadata,
    parse_metadata,
    read_header_metadata,
)
from zoo_plugins.flextok.testing import PUBLISHED, published_config, tiny_variant

from zoo.config import merge_config
from zoo.errors import ConfigError

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "flextok"


def _cfg(meta) -> FlexTokConfig:
    return merge_config(FlexTokConfig, [("metadata", config_from_metadata(meta))])


@pytest.mark.parametrize("variant", ["base", "single_null"])
def test_recorded_metadata_maps_to_the_config_it_was_recorded_from(variant):
    header = json.loads((FIXTURES / f"tiny_{variant}.json").read_text())["metadata"]
    assert all(isinstance(v, str) for v in header.values())  # str(python repr), as published
    want = tiny_variant(variant)
    got = merge_config(FlexTokConfig, [("card", {"vae": {k: getattr(want.vae, k) for k in ("block_out_channels", "layers_per_block", "norm_num_groups")}}),
                                       ("metadata", config_from_metadata(header))])
    assert got == want


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_round_trip_published(name):
    cfg = published_config(name)
    cfg.vae.scaling_factor = 0.5
    assert _cfg(to_header(to_metadata(cfg))) == cfg


def test_header_is_read_from_the_file(tmp_path):
    import torch
    from safetensors.torch import save_file

    header = to_header(to_metadata(tiny_variant("base")))
    save_file({"x": torch.zeros(1)}, str(tmp_path / "m.safetensors"), metadata=header)
    assert read_header_metadata(tmp_path / "m.safetensors") == header


def test_literal_eval_only():
    # a string that is not a Python literal stays a string; nothing is evaluated
    assert parse_metadata({"a": "__import__('os').system('false')", "b": "[1, 2]"}) == {
        "a": "__import__('os').system('false')",
        "b": [1, 2],
    }


def _meta():
    return to_metadata(tiny_variant("base"))


def _set(meta, path, value):
    node = meta
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return meta


ENC = ("encoder", "module_dict")
DEC = ("decoder", "module_dict")
BAD = [
    # (what is changed, path, value, words the error must contain)
    ("unknown top key", ("extra_module",), {"_target_": "x.Y"}, ["extra_module"]),
    ("unknown field", ENC + ("enc_transformer", "n_experts"), 8, ["n_experts", "FlexTransformer"]),
    ("unknown class", ENC + ("enc_transformer", "_target_"), "flextok.model.trunks.transformers.MoETransformer", ["MoETransformer"]),
    ("import path as data", DEC + ("dec_to_patches", "_target_"), "os.system", ["os.system"]),
    ("cross-attention trunk", DEC + ("dec_transformer", "_target_"), "flextok.model.trunks.transformers.FlexTransformerDecoder", ["FlexTransformerDecoder"]),
    ("muP readout", ENC + ("enc_to_latents", "use_mup_readout"), True, ["use_mup_readout"]),
    ("RoPE", ENC + ("enc_transformer", "rope_forward_read_key"), "rope", ["rope_forward_read_key"]),
    ("bf16 VAE", ("vae", "dtype_override"), "bf16", ["dtype_override"]),
    ("FSQ dims", ("regularizer", "levels"), [8, 8, 8, 5, 5], ["FSQ"]),
    ("activation", ENC + ("enc_transformer", "act_layer"), {"_target_": "torch.nn.ReLU", "_partial_": True}, ["ReLU"]),
    ("decoder mask", DEC + ("dec_seq_packer", "mask_mode"), "causal", ["mask_mode"]),
    ("adaLN expansion", DEC + ("dec_transformer", "adaLN_expansion"), 1, ["adaLN_expansion"]),
    ("noise from dict", ("pipeline", "noise_read_key"), "noise", ["noise_read_key"]),
    ("missing field", ENC + ("enc_patch_emb", "patch_sizes"), None, ["patch_sizes"]),
]


@pytest.mark.parametrize("what,path,value,words", BAD, ids=[b[0] for b in BAD])
def test_rejects_by_name(what, path, value, words):
    meta = _meta()
    if value is None:
        node = meta
        for key in path[:-1]:
            node = node[key]
        del node[path[-1]]
    else:
        _set(meta, path, value)
    with pytest.raises(ConfigError) as exc:
        config_from_metadata(to_header(meta))
    for w in words:
        assert w in str(exc.value)


def test_every_spec_field_is_accepted():
    """Training-only reference arguments are accepted (they do not change inference)."""
    meta = _meta()
    tr = meta["encoder"]["module_dict"]["enc_transformer"]
    assert set(tr) - {"_target_"} <= set(SPECS["FlexTransformer"])
    tr.update(drop=0.1, drop_path_rate=0.1, weight_init_style="trunc_normal", zero_init_query_proj=True,
              use_act_checkpoint=True, intermediate_layer_write_key="feats", intermediate_layers=[1])
    meta["vae"].update(compile_encode_fn=True, force_vae_encode=False, logvar_init=1.0)
    meta["regularizer"].update(drop_quant_p=0.5, corrupt_tokens_p=0.1, packed_call=False)
    cfg = _cfg(to_header(copy.deepcopy(meta)))
    assert cfg.encoder.transformer.depth == 2


def test_published_defaults_are_the_reconstruction():
    cfg = FlexTokConfig()
    assert cfg.codebook_size == 64000
    assert (cfg.encoder.transformer.dim, cfg.decoder.transformer.dim) == (1152, 1792)
