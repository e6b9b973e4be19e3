"""Parity of MMTok, HiPrune and DyMU with their official code on the same seeded tensors.

Fixtures were recorded by ``scripts/parity/record_reducers.py --mmtok/--hiprune/--dymu`` running
the references' own selection / merging functions (MMTok ``SemanticTokenSelector.
mm_coverage_selection``, HiPrune's LLaVA ``encode_images``, DyMU's ``bipartite_soft_matching`` /
``batch_level_bipartite_soft_matching`` + merges + ``threshold_running_avg``); the inputs are
regenerated from ``post_encoder_cases.py``.
"""

import json

import post_encoder_cases as pec
import pytest
import torch
from conftest import FIXTURES
from zoo_plugins.reducers.policies.dymu import (
    ThresholdMeter,
    batch_threshold,
    calibrate_threshold,
)
from zoo_plugins.reducers.policies.hiprune import attention_scores
from zoo_plugins.reducers.reducers import DyMU, HiPrune, MMTok


def _fixture(name):
    path = FIXTURES / f"{name}.json"
    if not path.exists():
        pytest.skip(f"{path} not recorded")
    return json.loads(path.read_text())["cases"]


@pytest.mark.parametrize("case", pec.MMTOK_CASES, ids=[c["id"] for c in pec.MMTOK_CASES])
def test_mmtok_kept_indices_equal_reference(case):
    want = _fixture("mmtok")[case["id"]]
    x = pec.mmtok_inputs(case)
    opts = {k: case[k] for k in ("alpha", "text_temperature", "vision_temperature") if k in case}
    out = MMTok().reduce(x["tokens"], keep=case["keep"], text=x["text"], text_mask=x["text_mask"], vision=x["vision"],
                         exclude=x["exclude"], **opts)
    assert out.indices.tolist() == want["kept"]  # one batched call == the reference one sample at a time


@pytest.mark.parametrize("case", pec.HIPRUNE_CASES, ids=[c["id"] for c in pec.HIPRUNE_CASES])
def test_hiprune_kept_indices_equal_reference(case):
    want = _fixture("hiprune")[case["id"]]
    obj, deep = pec.hiprune_maps(case)
    tokens = torch.randn(obj.shape[0], obj.shape[-1] - 1, 8)
    out = HiPrune(alpha=case["alpha"]).reduce(tokens, keep=case["keep"], object_attn=attention_scores(obj),
                                              deep_attn=attention_scores(deep), grid=pec.HIPRUNE_GRID)
    assert out.indices.tolist() == want["kept"]
    if case["edge"]:  # anchors on row ends: the in-grid neighbour rule differs from the official wrap
        grid = HiPrune(alpha=case["alpha"], buffer="grid").reduce(
            tokens, keep=case["keep"], object_attn=attention_scores(obj), deep_attn=attention_scores(deep))
        assert grid.indices.tolist() != want["kept"]


@pytest.mark.parametrize("case", pec.DYMU_CASES, ids=[c["id"] for c in pec.DYMU_CASES])
def test_dymu_merges_equal_reference(case):
    want = _fixture("dymu")[case["id"]]
    x = pec.dymu_tokens(case)
    keep = x.shape[1] - case["r"] if "r" in case else None
    out = DyMU().reduce(x, keep=keep, threshold=case.get("threshold"), num_prefix=case["prefix"])
    assert out.lengths.tolist() == want["lengths"]
    for i, n in enumerate(want["lengths"]):
        first, size, sums = out.indices[i, :n], out.sizes[i, :n, 0], out.tokens[i, :n].sum(dim=-1)
        ref_first, ref_size, ref_sums = torch.tensor(want["first_source"][i]), torch.tensor(want["sizes"][i]), torch.tensor(want["token_sums"][i])
        if case["b"] > 1:  # the reference's batch path scrambles the order (unstable argsort): compare as sets
            ours, theirs = first.argsort(), ref_first.argsort()
            first, size, sums = first[ours], size[ours], sums[ours]
            ref_first, ref_size, ref_sums = ref_first[theirs], ref_size[theirs], ref_sums[theirs]
        assert first.tolist() == ref_first.tolist()            # the same tokens merged together
        assert size.round().int().tolist() == ref_size.tolist()
        # the reference divides by (size + 1e-4), zoo by size: relative 1e-4 on merged tokens
        assert torch.allclose(sums, ref_sums, rtol=2e-4, atol=1e-4), (sums - ref_sums).abs().max()
    if case["b"] == 1:
        assert torch.allclose(out.tokens[0, :4].flatten(), torch.tensor(want["head"][0]), rtol=2e-4, atol=1e-5)
    if "r" in case:
        assert out.threshold.item() == pytest.approx(want["threshold"], abs=1e-6)
    else:
        assert out.threshold is None


def test_dymu_calibrated_threshold_equals_reference_running_average():
    cal = pec.DYMU_CALIBRATION
    want = _fixture("dymu")[cal["id"]]
    batches = pec.dymu_calibration_batches(cal)
    got = [float(batch_threshold(x, cal["r"], cal["prefix"])) for x in batches]
    assert got == pytest.approx(want["batch_thresholds"], abs=1e-6)
    assert calibrate_threshold(batches, cal["r"], cal["prefix"]) == pytest.approx(want["threshold"], abs=1e-6)
    meter = ThresholdMeter(1)
    for x in batches:
        meter.update(0, batch_threshold(x, cal["r"], cal["prefix"]))
    assert meter.thresholds[0] == pytest.approx(want["threshold"], abs=1e-6)
