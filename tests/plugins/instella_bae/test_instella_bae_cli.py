"""Instella-T2I's BAE through the CLI and the dataset format: ``zoo reconstruct`` writes input |
reconstruction, and ``zoo tokenize`` stores the bit tokens that ``zoo.read_tokens`` gives back."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

import zoo
from zoo.testing.weights import seeded_state_dict

FIX = Path(__file__).resolve().parents[2] / "fixtures" / "instella_bae"
META = json.loads((FIX / "small.json").read_text())


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("bae") / "model.safetensors"
    save_file(seeded_state_dict({k: (tuple(s), d) for k, (s, d) in META["manifest"].items()}, seed=0), str(path))
    return path


@pytest.fixture(scope="module")
def pictures(tmp_path_factory) -> Path:
    from PIL import Image

    folder = tmp_path_factory.mktemp("pictures")
    g = torch.Generator().manual_seed(0)
    for i in range(3):
        Image.fromarray((torch.rand(40, 50, 3, generator=g) * 255).to(torch.uint8).numpy()).save(folder / f"p{i}.png")
    return folder


def test_reconstruct_writes_input_and_reconstruction(release, pictures, tmp_path):
    from click.testing import CliRunner
    from PIL import Image

    import zoo_plugins.instella_bae
    from zoo.cli import cli
    from zoo.hookspecs import hookimpl
    from zoo.testing.plugins import isolated_registry

    class Cards:
        @hookimpl
        def register_cards(self, register):
            register({"name": "baetest.tiny", "kind": "tokenizer", "plugin": "instella_bae", "modality": "image",
                      "hub_repo": "x/y", "files": ["model.safetensors"], "license": {"code": "research"},
                      "config": {**META["config"], "scale": 64.0, "image_size": 32}})

    out = tmp_path / "grid.png"
    with isolated_registry(zoo_plugins.instella_bae, Cards()):
        args = ["reconstruct", str(pictures / "p0.png"), str(pictures / "p1.png"), "--model", "baetest.tiny",
                "--weights", str(release), "--out", str(out)]
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 0, result.output
        assert "2 image(s) x 1 token counts (8)" in result.output
        short = CliRunner().invoke(cli, args[:-2] + ["--tokens", "4", "--out", str(tmp_path / "b.png")])
    assert short.exit_code != 0 and "all 8 tokens" in short.output
    grid = Image.open(out)
    assert grid.width >= 2 * 32 and grid.height >= 2 * 32


def test_tokenized_bits_read_back_and_decode(release, pictures, tmp_path):
    from zoo.media.image import load_images

    bae = zoo.load("instella_bae.1024", weights=release, **META["config"], scale=64.0, image_size=32)
    zoo.tokenize(bae, [pictures], tmp_path / "t", workers=0, progress=False)
    (batch,) = zoo.read_tokens(tmp_path / "t")
    with torch.inference_mode():
        expected = bae.encode(load_images([pictures / k for k in batch.keys], size=32))
    assert batch.tokens.tokenizer == "instella_bae.1024" and batch.tokens.codebook_size == 2
    assert torch.equal(batch.tokens.ids.long(), expected.ids.long())
    torch.testing.assert_close(bae.decode(batch.tokens), bae.decode(expected))
