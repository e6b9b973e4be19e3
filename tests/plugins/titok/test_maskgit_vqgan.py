"""The MaskGIT-VQGAN tokenizer (bytedance/1d-tokenizer ``maskgit_vqgan``, decoded through the
pixel decoder TiTok's legacy path shares): manifest at the released config and parity.

Fixtures (``vqgan.json``, ``vqgan_tiny.safetensors``) were recorded by
``scripts/parity/record_generators.py --only vqgan`` from the reference on per-key seeded weights.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from zoo.testing.weights import assert_manifest_equal, seeded_state_dict, state_manifest

FIX = Path(__file__).resolve().parents[2] / "fixtures" / "titok"


def test_maskgit_vqgan_manifest_and_parity():
    from safetensors.torch import load_file
    from zoo_plugins.titok.vqgan import MaskGITVQGAN, VQGANConfig

    d = json.loads((FIX / "vqgan.json").read_text())
    f = load_file(str(FIX / "vqgan_tiny.safetensors"))
    with torch.device("meta"):
        full = MaskGITVQGAN()
    assert_manifest_equal(state_manifest(full), {k: (tuple(s), t) for k, (s, t) in d["manifest_released"].items()})
    man = {k: (tuple(s), t) for k, (s, t) in d["manifest"].items()}
    tok = MaskGITVQGAN(VQGANConfig(**d["config"])).eval()
    sd = seeded_state_dict(man)
    sd["quantize.embedding.weight"] = f["codebook"]
    tok.load_state_dict(sd, strict=True)
    with torch.no_grad():
        assert torch.allclose(tok.encoder(f["images"]), f["latents"], atol=1e-5)
    ids = tok.encode(f["images"] * 2 - 1)
    assert torch.equal(ids.ids, f["ids"]) and len(f["ids"].unique()) > 20
    assert torch.allclose((tok.decode(f["ids"]) + 1) / 2, f["decoded"], atol=1e-4)
    with pytest.raises(ValueError, match="256 ids"):
        tok.decode(f["ids"][:, :10])


def test_maskgit_vqgan_is_registered_by_the_titok_family():
    import zoo

    import zoo_plugins.titok
    from zoo.registry import get_registry
    from zoo.testing.plugins import temporary_plugin

    assert zoo.info("maskgit_vqgan")["kind"] == "tokenizer"
    with temporary_plugin(zoo_plugins.titok, "titok-test"):
        builder = get_registry().builder_for(get_registry().find_card("maskgit_vqgan")[0])
    assert type(builder).__module__ == "zoo_plugins.titok.vqgan"
