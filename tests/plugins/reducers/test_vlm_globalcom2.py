"""GlobalCom²: parity with the reference functions, the tensor-level reduce(), and the card.

The fixture was recorded by ``scripts/parity/record_globalcom2.py`` running the reference's
``compress_thumbnail``, ``generate_scale_for_crop_features`` and ``compress_crops`` (which calls
``interpolate_and_split_cls_attn_scores`` and ``select_topk_crop_features``) on the seeded scores
of ``vlm_cases.py``; features name their (view, token), so the compressed output tells which
tokens were kept, in which order, and where the newline tokens sit.
"""

import json

import pytest
import torch
import vlm_cases
from conftest import FIXTURES
from zoo_plugins.reducers.policies.globalcom2 import crop_scales, globalcom2_select, unpadded_region
from zoo_plugins.reducers.reducers import GlobalCom2

import zoo
from zoo.errors import ReducerError

CASES = vlm_cases.GLOBALCOM2_CASES


def _want(case):
    path = FIXTURES / "globalcom2.json"
    if not path.exists():
        pytest.skip(f"{path} not recorded")
    return json.loads(path.read_text())["cases"][case["id"]]


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_selection_equals_reference(case):
    want = _want(case)
    s = vlm_cases.scores(case)
    sel = globalcom2_select(s, case["grid"], keep=case["keep"], image_size=case["size"])
    assert sel.thumbnail.tolist() == want["thumbnail"]
    assert sel.scales.tolist() == pytest.approx(want["scales"], rel=1e-12)
    # kept crop tokens: the same (view, token) set as the reference, in the same order unless columns
    # were unpadded (the reference writes a crop's top-k, which index its *unpadded* token list, at
    # those indices of the *padded* crop: rows shift whole, columns scramble; zoo keeps each token at
    # its own position, as the paper describes)
    n = case["side"] ** 2
    out = GlobalCom2().reduce(torch.randn(s.shape[0], n, 3), keep=case["keep"], cls_attn=s, grid=case["grid"],
                              image_size=case["size"])
    crop = [[int(i // n), int(i % n)] for i in out.indices[0, len(want["thumbnail"]):]]
    assert sorted(crop) == sorted(want["crop_tokens"])
    top, left, h, w = sel.region
    if left == 0:
        assert crop == want["crop_tokens"]
    # rows: the reference ends every row of the *padded* grid with a newline; transformers (and zoo)
    # pack only the unpadded rows, so the padded rows' newlines (which hold no token) are absent here
    rows_ref, count = [], 0
    for is_token in want["order"]:
        if is_token:
            count += 1
        else:
            rows_ref.append(count)
            count = 0
    assert len(rows_ref) == want["newlines"] == case["grid"][0] * case["side"]
    assert sum(rows_ref) == int(sel.crop_mask.sum())
    if (top, left, h, w) == (0, 0, *sel.crop_mask.shape) == (0, 0, case["grid"][0] * case["side"], case["grid"][1] * case["side"]):
        assert rows_ref == sel.crop_mask.sum(1).tolist()

def test_crop_scales_follow_the_thumbnail():
    thumb = torch.zeros(16)
    thumb[:2] = 50.0                                    # the top-left crop's region is hot
    scales = crop_scales(thumb, (2, 2), keep=0.25)
    assert scales[0] > 0.25 > scales[3]
    assert float(scales.mean()) == pytest.approx(0.25)  # the budget is shifted between crops, not changed
    assert float(crop_scales(torch.full((16,), 1e4), (2, 2), keep=0.9).max()) <= 1.0


@pytest.mark.parametrize("grid, size, region", [((1, 2), (300, 800), (3, 0, 18, 48)), ((2, 2), (672, 672), (0, 0, 48, 48)),
                                                ((2, 1), (700, 100), (0, 9, 48, 6))])
def test_unpadded_region(grid, size, region):
    assert unpadded_region(*grid, 24, size) == region


def test_reduce_refuses_missing_signals():
    views = torch.randn(5, 16, 4)
    with pytest.raises(ReducerError, match="grid"):
        GlobalCom2().reduce(views, keep=0.25)
    with pytest.raises(ReducerError, match="1 \\+ rows\\*cols"):
        globalcom2_select(torch.randn(4, 16), (2, 2))
    with pytest.raises(ReducerError):
        globalcom2_select(torch.randn(5, 16), (2, 2), keep=1.5)


def test_card_loads_and_describes_itself():
    red = zoo.load("globalcom2")
    assert isinstance(red, GlobalCom2) and red.post_encoder and not red.in_model
    card = zoo.info("globalcom2") if hasattr(zoo, "info") else None
    if card is not None:
        assert "Apache-2.0" in str(card)
