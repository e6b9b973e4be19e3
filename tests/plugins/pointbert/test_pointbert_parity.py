"""Parity with lulutang0608/Point-BERT's dVAE (random weights, small config of the same classes).

The reference ran with its CUDA ops (pointnet2 FPS, KNN_CUDA) replaced by zoo's pure-torch
FPS / kNN, which tests/core/test_points.py checks against a literal transcription of the CUDA
kernels. Stages: centres (equal), logits (atol 1e-5), ids (equal except top-2 gaps < 1e-5),
decode of the reference's ids (coarse and fine points, atol 1e-5), the public encode / decode.
"""

from __future__ import annotations

import torch

from zoo.testing.weights import assert_manifest_equal, state_manifest


def test_released_checkpoint_layout_loads_strictly(pb):
    import zoo
    from zoo_plugins.pointbert.config import PointBERTConfig, from_reference_config
    from zoo_plugins.pointbert.model import PointBERTdVAE

    pub = pb.published()
    card = zoo.get_card("point_bert.dvae_shapenet")
    assert {k: card.config[k] for k in from_reference_config(pub["config"])} == from_reference_config(pub["config"])
    with torch.device("meta"):
        model = PointBERTdVAE(PointBERTConfig(**card.config))
    want = {k: (tuple(s), d) for k, (s, d) in pub["point_bert.dvae_shapenet"].items()}
    assert_manifest_equal(state_manifest(model), want, what="point_bert.dvae_shapenet")


def test_case_manifest(pb):
    from zoo_plugins.pointbert.model import PointBERTdVAE

    with torch.device("meta"):
        model = PointBERTdVAE(pb.case_config())
    assert_manifest_equal(state_manifest(model), pb.case_manifest(), what="parity case")


def test_centres_logits_and_ids(pb):
    model, data = pb.case_model(), pb.data()
    with torch.no_grad():
        patches, centers = model.group(data["clouds"])
        logits = model.logits(patches, centers)
    assert torch.equal(centers, data["centers"])
    torch.testing.assert_close(logits, data["logits"], atol=1e-5, rtol=0)
    ids = logits.argmax(-1)
    differ = ids != data["ids"]
    assert not (differ & (data["gap"] >= 1e-5)).any()
    assert len(set(data["ids"].flatten().tolist())) > 4


def test_decode_of_reference_ids(pb):
    model, data = pb.case_model(), pb.data()
    with torch.no_grad():
        coarse, fine = model.decode_codes(model.codebook[data["ids"]], data["centers"])
    torch.testing.assert_close(coarse, data["coarse"], atol=1e-5, rtol=0)
    torch.testing.assert_close(fine, data["fine"], atol=1e-5, rtol=0)


def test_public_encode_decode(pb):
    model, data = pb.case_model(), pb.data()
    tokens = model.encode(data["clouds"])
    assert torch.equal(tokens.ids, data["ids"]) and torch.equal(tokens.meta["centers"], data["centers"])
    torch.testing.assert_close(model.decode(tokens), data["fine"], atol=1e-5, rtol=0)
    torch.testing.assert_close(model.decode(tokens, coarse=True), data["coarse"], atol=1e-5, rtol=0)
    torch.testing.assert_close(model.decode(tokens.ids, centers=data["centers"]), data["fine"], atol=1e-5, rtol=0)
    one = model.encode(data["clouds"][1:2])  # batch items are independent
    assert torch.equal(one.ids, data["ids"][1:2])
