"""Mapping the official config tree (hub config.json / repo yaml) onto TiTokConfig."""

from __future__ import annotations

import pytest
from zoo_plugins.titok.config import from_reference_config, vit_dims

from zoo.errors import ConfigError

BASE = {
    "codebook_size": 4096, "token_size": 12, "use_l2_norm": True, "commitment_cost": 0.25,
    "vit_enc_model_size": "large", "vit_dec_model_size": "large",
    "vit_enc_patch_size": 16, "vit_dec_patch_size": 16, "num_latent_tokens": 32,
}


def tree(**vq):
    return {"experiment": {"tokenizer_checkpoint": "x.bin"}, "model": {"vq_model": {**BASE, **vq}},
            "dataset": {"preprocessing": {"crop_size": 256}}}


@pytest.mark.parametrize(
    "vq, expect",
    [
        ({}, {"is_legacy": True, "finetune_decoder": True, "quantize_mode": "vq", "strict_length_assertion": True}),
        ({"finetune_decoder": False, "is_legacy": False}, {"is_legacy": False, "finetune_decoder": False}),
        ({"strict_length_assertion": False}, {"strict_length_assertion": False}),
        ({"quantize_mode": "vae", "finetune_decoder": False, "is_legacy": False}, {"quantize_mode": "vae"}),
        ({"pretrained_tokenizer_weight": "maskgit.bin"}, {"num_latent_tokens": 32}),  # training-only field dropped
    ],
)
def test_mapping(vq, expect):
    out = from_reference_config(tree(**vq))
    for key, value in expect.items():
        assert out[key] == value
    assert out["crop_size"] == 256 and "commitment_cost" not in out


@pytest.mark.parametrize(
    "raw, match",
    [
        (tree(num_latent_tokenz=32), "num_latent_tokenz"),
        (tree(quantize_mode="fsq"), "quantize_mode"),
        (tree(quantize_mode="vae"), "finetune_decoder=False"),
        (tree(is_legacy=False), "needs is_legacy=True"),
        (tree(vit_enc_model_size="huge"), "unknown ViT size 'huge'"),
        ({"model": {}}, "model.vq_model"),
        ([1, 2], "mapping"),
    ],
)
def test_bad_configs_name_the_problem(raw, match):
    with pytest.raises(ConfigError, match=match):
        from_reference_config(raw)


def test_vit_sizes():
    assert [vit_dims(s) for s in ("small", "base", "large")] == [(512, 8, 8), (768, 12, 12), (1024, 24, 16)]


def test_reference_layout_round_trip():
    from dataclasses import asdict

    from zoo_plugins.titok.config import TiTokConfig, to_reference_config

    cfg = TiTokConfig(vit_enc_model_size="base", num_latent_tokens=64, quantize_mode="vae", token_size=16,
                      finetune_decoder=False, is_legacy=False, crop_size=128)
    assert TiTokConfig(**from_reference_config(to_reference_config(cfg))) == cfg
    assert to_reference_config(asdict(cfg))["dataset"]["preprocessing"]["crop_size"] == 128


def test_plugin_import_does_not_import_torch():
    import os
    import subprocess
    import sys

    code = "import sys, zoo_plugins.titok; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], env=dict(os.environ)).returncode == 0
