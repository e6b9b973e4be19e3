"""scripts/docs/figures.py: the pictures of the gallery are made by a script, not by hand."""

from __future__ import annotations

import pytest

import zoo
from tests.docs.conftest import ROOT, load_script


@pytest.mark.parametrize("n, counts", [(1, [1]), (2, [1, 2]), (24, [1, 2, 4, 8, 16, 24]), (32, [1, 2, 4, 8, 16, 32])])
def test_token_counts_double_up_to_n(n, counts):
    assert load_script("figures")._token_counts(n) == counts


def test_missing_demo_model_is_a_clear_error(tmp_path):
    figures = load_script("figures")
    with pytest.raises(SystemExit, match="not registered"):
        figures.reconstruction(out=tmp_path / "grid.png", model="no_such.model")


@pytest.mark.slow
def test_reconstruction_grid_of_the_demo_model(tmp_path):
    figures = load_script("figures")
    if figures.DEMO not in zoo.list_models():
        pytest.skip(f"{figures.DEMO} is not registered in this checkout")
    images = ROOT / "examples" / "images"
    if not images.is_dir():
        pytest.skip("examples/images (the demo's example photographs) is absent")
    out = figures.reconstruction(out=tmp_path / "grid.png", images=images, max_images=1)
    from PIL import Image

    with Image.open(out) as grid:
        assert grid.width > grid.height  # input + one column per prefix length
