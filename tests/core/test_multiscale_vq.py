"""zoo.nn.multiscale_vq against FoundationVision/VAR's VectorQuantizer2 (fixtures recorded by
scripts/parity/record_var.py): partially shared, shared and per-scale phi convs, cosine search,
no phi at all; plus the schedule helpers and the errors.

Tolerances (float32, CPU): ids equal; f_hat, decode and teacher-forcing inputs atol 1e-5.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from zoo.errors import ConfigError, TokenError
from zoo.nn.multiscale_vq import MultiScaleResidualVQ, as_scales, phi_ticks, scale_lengths
from zoo.testing.weights import assert_manifest_equal, seeded_state_dict, state_manifest

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "var"
SMALL = json.loads((FIX / "small.json").read_text())
DATA = load_file(str(FIX / "small.safetensors"))
PN = SMALL["vae"]["config"]["v_patch_nums"]
ATOL = 1e-5


def _quantizer(name: str) -> MultiScaleResidualVQ:
    kw = SMALL["msvq"]["cases"][name]
    c = SMALL["vae"]["config"]
    q = MultiScaleResidualVQ(c["vocab_size"], c["z_channels"], PN, phi_ratio=kw.get("quant_resi", 0.5),
                             phi_sharing=kw["share_quant_resi"], l2_norm=kw.get("using_znorm", False)).eval()
    man = {k: (tuple(s), d) for k, (s, d) in SMALL["msvq"]["manifests"][name].items()}
    state = seeded_state_dict(man, seed=1)
    state["embedding.weight"] = DATA["codebook"]
    state.pop("ema_vocab_hit_SV")  # training statistics: not part of zoo's quantizer
    q.load_state_dict(state, strict=True)
    return q


@pytest.mark.parametrize("name", sorted(SMALL["msvq"]["cases"]))
def test_parity_with_the_reference_quantizer(name):
    q = _quantizer(name)
    f = DATA[f"msvq.{name}.f"]
    ids, f_hat = q.quantize(f)
    want = DATA[f"msvq.{name}.ids"]
    assert torch.equal(torch.cat(ids, 1), want)
    assert want.unique().numel() > 20  # the data-driven codebook makes ids depend on the input
    torch.testing.assert_close(f_hat, DATA[f"msvq.{name}.fhat"], atol=ATOL, rtol=0)
    ref_ids = list(want.split(scale_lengths(PN), dim=1))
    torch.testing.assert_close(q.decode(ref_ids), DATA[f"msvq.{name}.decoded"], atol=ATOL, rtol=0)
    torch.testing.assert_close(q.teacher_inputs(ref_ids), DATA[f"msvq.{name}.teacher"], atol=ATOL, rtol=0)


@pytest.mark.parametrize("name, keys", [
    ("partial", {"quant_resi.qresi_ls.0.weight", "quant_resi.qresi_ls.3.bias"}),
    ("shared", {"quant_resi.qresi.weight", "quant_resi.qresi.bias"}),
    ("nonshared", {"quant_resi.0.weight", "quant_resi.4.bias"}),
    ("noresi", set()),
])
def test_the_reference_key_layouts(name, keys):
    q = _quantizer(name)
    ours = state_manifest(q)
    ref = {k: (tuple(s), d) for k, (s, d) in SMALL["msvq"]["manifests"][name].items() if k != "ema_vocab_hit_SV"}
    assert_manifest_equal(ours, ref, what=name)
    assert keys <= set(ours)
    assert (name == "noresi") == (not any(k.startswith("quant_resi") for k in ours))


@pytest.mark.parametrize("count, scales, expected", [
    (4, 10, [0, 0, 1, 1, 1, 2, 2, 3, 3, 3]),  # VAR: 4 phis over 10 scales; float-rounded ties (7/9, 2/4) go up, as in the reference
    (4, 5, [0, 1, 2, 2, 3]),
    (2, 4, [0, 0, 1, 1]),
    (1, 3, [0, 0, 0]),
])
def test_phi_assignment_follows_the_ticks(count, scales, expected):
    q = MultiScaleResidualVQ(8, 2, list(range(1, scales + 1)), phi_sharing=count if count > 1 else 0, phi_count=count)
    assert [q.phi_index(k, scales) for k in range(scales)] == expected
    assert len(phi_ticks(count)) == count


def test_prefix_decode_is_the_partial_sum():
    q = _quantizer("partial")
    ids = list(DATA["msvq.partial.ids"].split(scale_lengths(PN), dim=1))
    codes = [q.lookup(i, s) for i, s in zip(ids, as_scales(PN))]
    partial = q.codes_to_fhat(codes, cumulative=True)
    torch.testing.assert_close(q.decode(ids[:3]), partial[2])
    torch.testing.assert_close(partial[-1], q.decode(ids))


def test_non_square_schedules_round_trip():
    q = MultiScaleResidualVQ(32, 4, [(1, 2), (2, 3), (4, 6)], phi_sharing=1).eval()
    f = torch.randn(2, 4, 4, 6)
    ids, f_hat = q.quantize(f)
    assert [i.shape[1] for i in ids] == [2, 6, 24]
    torch.testing.assert_close(q.decode(ids), f_hat)


@pytest.mark.parametrize("call, error, match", [
    (lambda q: q.quantize(torch.zeros(1, 4, 4, 4)), TokenError, "last scale"),
    (lambda q: q.quantize(torch.zeros(1, 3, 6, 6)), TokenError, "channels"),
    (lambda q: q.decode([torch.zeros(1, 2, dtype=torch.long)]), TokenError, "scale 0"),
    (lambda q: q.decode([torch.full((1, 1), 99)]), ValueError, r"in \[0, 16\)"),
    (lambda q: q.decode([torch.zeros(1, 1, dtype=torch.long)] * 5), TokenError, "1..3 scales"),
])
def test_bad_inputs_are_named(call, error, match):
    q = MultiScaleResidualVQ(16, 4, [1, 3, 6]).eval()
    with pytest.raises(error, match=match):
        call(q)


@pytest.mark.parametrize("bad", [[], [0, 2], ["a"], [(1, 2, 3)], "1,2"])
def test_bad_schedules_are_config_errors(bad):
    with pytest.raises(ConfigError, match="scale"):
        as_scales(bad)
