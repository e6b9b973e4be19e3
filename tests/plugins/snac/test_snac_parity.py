"""SNAC parity with hubertsiuzdak/snac on random weights (fixtures from scripts/parity/record_snac.py):
latents, ids of every level, and the decode of the reference's ids with the reference's noise
(torch.manual_seed(s) there, a torch.Generator seeded s here), at two small configs and at the
published 24 and 32 kHz configs; manifests of all published configs load strictly."""

from __future__ import annotations

import pytest
import torch

from .conftest import FIXTURES, build_parity_model, config_of, load_fixture, meta_config

CASES = ["attn", "plain", "24khz", "32khz"]
LATENT_ATOL = 1e-5
AUDIO_ATOL = 1e-5


@pytest.mark.parametrize("name", ["24khz", "32khz", "44khz", "attn", "plain"])
def test_reference_manifest_loads_strictly(name):
    """Every key of the reference model at this config maps onto zoo's module (strict=True), and
    zoo's parameter count is the reference's (the README's 19.8 M / 54.5 M at 24 / 32-44 kHz)."""
    import math

    from zoo.testing.weights import load_manifest

    model = build_parity_model(name)
    manifest = load_manifest(FIXTURES / f"manifest_{name}.json")
    ref_params = sum(math.prod(s) for k, (s, _) in manifest.items() if not k.endswith("inv_freq"))
    folded = sum(p.numel() for p in model.parameters())
    g_count = sum(math.prod(s) for k, (s, _) in manifest.items() if k.endswith("original0"))
    assert folded == ref_params - g_count  # each weight-norm gain folds into its weight


@pytest.mark.parametrize("name", CASES)
def test_latents_ids_and_decode_match_reference(name):
    ref, meta = load_fixture(name)
    assert meta_config(meta) == config_of(name)
    model = build_parity_model(name)
    wav = ref["input"]
    with torch.inference_mode():
        z = model.encoder(model.preprocess(wav))
        torch.testing.assert_close(z[:, 0::16], ref["latents"], atol=LATENT_ATOL, rtol=0)
        codes = model.encode_codes(wav)
        levels = sorted(k for k in ref if k.startswith("codes_"))
        assert len(codes) == len(levels)
        for level, c in enumerate(codes):
            assert torch.equal(c, ref[f"codes_{level}"]), f"level {level} ids differ"
        ref_codes = [ref[k] for k in levels]
        for seed in (0, 7):
            out = model.decode_codes(ref_codes, generator=torch.Generator().manual_seed(seed))
            torch.testing.assert_close(out, ref[f"decode_seed{seed}"], atol=AUDIO_ATOL, rtol=0)
        assert not torch.allclose(ref["decode_seed0"], ref["decode_seed7"], atol=1e-3)  # the noise matters


@pytest.mark.parametrize("name", ["attn", "24khz"])
def test_media_interface_gives_reference_ids(name):
    """encode(tensor, sample_rate) -> MultiRateTokens with the reference's ids; decode(tokens,
    generator) -> the reference's audio."""
    from zoo import MultiRateTokens

    ref, _ = load_fixture(name)
    model = build_parity_model(name)
    sr = config_of(name)["sampling_rate"]
    tokens = model.encode(ref["input"], sr)
    assert isinstance(tokens, MultiRateTokens) and tokens.strides == tuple(config_of(name)["vq_strides"])
    for level, ids in enumerate(tokens.levels):
        assert torch.equal(ids, ref[f"codes_{level}"])
    out = model.decode(tokens, generator=torch.Generator().manual_seed(7))
    torch.testing.assert_close(out, ref["decode_seed7"], atol=AUDIO_ATOL, rtol=0)
