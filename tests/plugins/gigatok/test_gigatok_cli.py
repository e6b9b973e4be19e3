"""`zoo reconstruct` on a GigaTok release file: input next to its reconstruction (all 256 tokens)."""

from __future__ import annotations

import torch

from .conftest import meta, release_file


def test_cli_reconstruct_writes_input_and_reconstruction(tmp_path):
    from click.testing import CliRunner
    from PIL import Image

    import zoo_plugins.gigatok
    from zoo.cli import cli
    from zoo.hookspecs import hookimpl
    from zoo.testing.plugins import isolated_registry
    from zoo_plugins.gigatok.testing import test_images

    class Cards:
        @hookimpl
        def register_cards(self, register):
            register({"name": "gigatok_test.tiny", "kind": "tokenizer", "plugin": "gigatok", "modality": "image",
                      "files": ["VQ_test.pt"], "weights_url": "https://example.org/VQ_test.pt",
                      "license": {"code": "MIT"}, "config": meta()["config"]})

    weights = release_file(tmp_path)
    img = tmp_path / "in.png"
    x = ((test_images(1, 48, seed=5)[0] + 1) * 127.5).round().to(torch.uint8)
    Image.fromarray(x.permute(1, 2, 0).numpy()).save(img)
    out = tmp_path / "grid.png"
    with isolated_registry(zoo_plugins.gigatok, Cards()):
        args = ["reconstruct", str(img), "--model", "gigatok_test.tiny", "--weights", str(weights), "--out", str(out)]
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 0, result.output
        bad = CliRunner().invoke(cli, args[:-2] + ["--tokens", "3", "--out", str(out)])
        missing = CliRunner().invoke(cli, args[:4] + ["--out", str(out)])
    assert bad.exit_code != 0 and "exactly 16 tokens" in bad.output
    assert missing.exit_code != 0 and "https://example.org/VQ_test.pt" in missing.output
    grid = Image.open(out)
    assert grid.width >= 2 * 32 and grid.height >= 32
