"""GigaTok against the reference (SilentView/GigaTok), stage by stage, on the recorded case.

Tolerances: CNN features and pre-quantisation latents atol 1e-4; ids equal (the recorder
stores the cosine gap between the two nearest codewords per token; every gap in the fixture is
far above the latent error); the Q-Former's 2D map and the decoded images atol 1e-4, both for
the reference's encode -> decode path (its rotation trick returns the codeword up to ~1e-6)
and for its ``decode_code`` of the ids.
"""

from __future__ import annotations

from functools import cache

import pytest
import torch

from .conftest import case_tensors, meta, release_file, release_state, zoo_model


@cache
def _model():
    return zoo_model(release_state())


def test_stages_match_reference():
    t = case_tensors()
    m = _model()
    assert float(t["gap"].min()) > 1e-4 and meta()["distinct_ids"] > 8
    with torch.no_grad():
        feats = m.encoder(t["images"])
        torch.testing.assert_close(feats, t["cnn_features"], atol=1e-4, rtol=0)
        latents = m.encode_latents(t["images"])
        torch.testing.assert_close(latents, t["latents"], atol=1e-4, rtol=0)
        ids = m.quantize_latents(latents)
        assert torch.equal(ids, t["ids"])
        codes = m.ids_to_codes(t["ids"])
        torch.testing.assert_close(codes, t["quant"], atol=1e-5, rtol=0)
        spatial = m.s1to2decoder(m.post_quant_conv(codes))
        torch.testing.assert_close(spatial, t["qformer_2d"], atol=1e-4, rtol=0)
        torch.testing.assert_close(m.decode_codes(codes), t["decode_of_ids"], atol=1e-4, rtol=0)
        torch.testing.assert_close(m.decode_codes(codes), t["reconstruction"], atol=1e-4, rtol=0)


def test_interface_round_trip():
    t = case_tensors()
    m = _model()
    tok = m.encode(t["images"])
    assert torch.equal(tok.ids, t["ids"]) and tok.codebook_size == meta()["config"]["codebook_size"]
    torch.testing.assert_close(m.decode(tok), t["decode_of_ids"].clamp(-1, 1), atol=1e-4, rtol=0)


@pytest.mark.parametrize("with_args", [True, False])
def test_zoo_load_of_a_release_file(tmp_path, with_args):
    """weights=PATH: the EMA weights of a release-style .pt (with an argparse.Namespace) load strictly."""
    import zoo

    path = release_file(tmp_path, with_args=with_args)
    model = zoo.load("gigatok", weights=path, **meta()["config"])
    t = case_tensors()
    assert torch.equal(model.encode(t["images"]).ids, t["ids"])


def test_pickle_allowlist_is_exactly_namespace(tmp_path):
    import argparse
    import fractions
    import pickle

    from zoo.errors import CheckpointError
    from zoo_plugins.gigatok.checkpoint import ALLOWED_GLOBALS, load_release

    assert ALLOWED_GLOBALS == (argparse.Namespace,)
    path = tmp_path / "other.pt"
    torch.save({"model": {"quantize.embedding.weight": torch.zeros(2, 2)}, "x": fractions.Fraction(1, 3)}, path,
               pickle_module=pickle)
    with pytest.raises(CheckpointError, match="weights-only"):
        load_release(path)
