"""`zoo reconstruct` on a WeTok release file: input next to its reconstruction (fixed length)."""

from __future__ import annotations

import torch

from .conftest import case_config, release_file


def test_cli_reconstruct_writes_input_and_reconstruction(tmp_path):
    from click.testing import CliRunner
    from PIL import Image

    import zoo_plugins.wetok
    from zoo.cli import cli
    from zoo.hookspecs import hookimpl
    from zoo.testing.plugins import isolated_registry
    from zoo_plugins.wetok.testing import test_images

    class Cards:
        @hookimpl
        def register_cards(self, register):
            register({"name": "wetok_test.tiny", "kind": "tokenizer", "plugin": "wetok", "modality": "image",
                      "hub_repo": "x/wetok", "files": ["WeTok.ckpt"], "license": {"code": "Apache-2.0"},
                      "config": {**case_config("f4_g2"), "image_size": 32}})

    weights = release_file("f4_g2", tmp_path)
    img = tmp_path / "in.png"
    x = ((test_images(1, 40, seed=3)[0] + 1) * 127.5).round().to(torch.uint8)
    Image.fromarray(x.permute(1, 2, 0).numpy()).save(img)
    out = tmp_path / "grid.png"
    with isolated_registry(zoo_plugins.wetok, Cards()):
        args = ["reconstruct", str(img), "--model", "wetok_test.tiny", "--weights", str(weights), "--out", str(out)]
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 0, result.output
        assert "input | reconstruction (8x8 token grid x 2 ids" in result.output  # 8x8 positions, 2 groups at 32x32
        bad = CliRunner().invoke(cli, args[:-2] + ["--tokens", "3", "--out", str(out)])
    assert bad.exit_code != 0 and "fixed-length" in bad.output
    grid = Image.open(out)
    assert grid.width >= 2 * 32 and grid.height >= 32
