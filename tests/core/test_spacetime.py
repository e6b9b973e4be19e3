"""zoo.nn.spacetime against OmniTokenizer's modules/attention.py (recorded by
scripts/parity/record_spacetime.py): key/shape manifests equal, outputs within 1e-5."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from zoo.nn.spacetime import SpaceTimeTransformer, apply_rope_2d, rope_2d, window_partition, window_reverse
from zoo.testing.weights import assert_manifest_equal, seeded_state_dict, state_manifest

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "omnitokenizer"
META = json.loads((FIXTURES / "spacetime.json").read_text())


@pytest.fixture(scope="module")
def data():
    from safetensors.torch import load_file

    return load_file(str(FIXTURES / "spacetime.safetensors"))


@pytest.mark.parametrize("name", sorted(META["cases"]))
def test_transformer_matches_reference(data, name):
    case = META["cases"][name]
    kwargs = dict(case["kwargs"])
    model = SpaceTimeTransformer(kwargs.pop("dim"), **kwargs).eval()
    want = {k: (tuple(s), d) for k, (s, d) in case["manifest"].items()}
    assert_manifest_equal(state_manifest(model), want, what=name)
    own = model.state_dict()
    sd = {k: (own[k] if k.endswith("relative_position_index") else v) for k, v in seeded_state_dict(want, seed=META["seed"]).items()}
    model.load_state_dict(sd, strict=True)
    with torch.no_grad():
        y = model(data[f"{name}.input"], video_shape=tuple(META["video_shape"]), is_spatial=case["kind"] == "spatial")
    torch.testing.assert_close(y, data[f"{name}.output"], atol=1e-5, rtol=0)


def test_causal_temporal_block_never_sees_the_future():
    """Causal attention alone. (With a PEG the reference's temporal reshape mixes positions and frames,
    so OmniTokenizer's temporal encoder is not strictly causal; zoo keeps that layout.)"""
    model = SpaceTimeTransformer(16, depth=2, block="tt", dim_head=4, heads=4, causal=True).eval()
    x = torch.randn(8, 5, 16)  # (B H W) = 2 x 2 x 2 positions, 5 frames
    changed = x.clone()
    changed[:, 3:] += 1.0
    with torch.no_grad():
        a = model(x, video_shape=(2, 5, 2, 2), is_spatial=False)
        b = model(changed, video_shape=(2, 5, 2, 2), is_spatial=False)
    torch.testing.assert_close(a[:, :3], b[:, :3])
    assert not torch.allclose(a[:, 3:], b[:, 3:])


def test_windows_and_rope_helpers():
    x = torch.arange(2 * 4 * 4 * 3.0).view(2, 4, 4, 3)
    w = window_partition(x, 2)
    assert w.shape == (8, 2, 2, 3) and torch.equal(w[1, 0, 0], x[0, 0, 2])
    assert torch.equal(window_reverse(w, 2, 4, 4), x)
    freqs = rope_2d(8, 16)
    q = torch.randn(1, 16, 2, 8)
    rq, rk = apply_rope_2d(q, q, freqs)
    torch.testing.assert_close(rq.norm(dim=-1), q.norm(dim=-1))  # a rotation keeps norms
    torch.testing.assert_close(rq[:, 0], q[:, 0])  # position 0 is not rotated


@pytest.mark.parametrize("kwargs", [{"block": "tx"}, {"block": "t", "spatial_pos": "abs"}])
def test_bad_configs(kwargs):
    from zoo.errors import ConfigError

    with pytest.raises(ConfigError):
        SpaceTimeTransformer(16, depth=len(kwargs["block"]), **kwargs)
