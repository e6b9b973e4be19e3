"""MingTok through the CLI and the dataset format: ``zoo reconstruct`` writes input | reconstruction,
and ``zoo tokenize`` stores latents that ``zoo.read_tokens`` gives back and the model decodes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

import zoo
from zoo.testing.weights import seeded_state_dict

FIX = Path(__file__).resolve().parents[2] / "fixtures" / "mingtok"
META = json.loads((FIX / "small.json").read_text())


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("mingtok")
    (folder / "config.json").write_text(json.dumps(META["config"]))
    save_file(seeded_state_dict({k: (tuple(s), d) for k, (s, d) in META["manifest"].items()}, seed=0),
              str(folder / "model.safetensors"))
    return folder


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

    import zoo_plugins.mingtok
    from zoo.cli import cli
    from zoo.hookspecs import hookimpl
    from zoo.testing.plugins import isolated_registry

    class Cards:
        @hookimpl
        def register_cards(self, register):
            register({"name": "mingtest.tiny", "kind": "tokenizer", "plugin": "mingtok", "modality": "image",
                      "hub_repo": "x/y", "files": ["config.json", "model.safetensors"], "license": {"code": "MIT"},
                      "config": {"image_size": 64}})

    out = tmp_path / "grid.png"
    with isolated_registry(zoo_plugins.mingtok, Cards()):
        args = ["reconstruct", str(pictures / "p0.png"), "--model", "mingtest.tiny", "--weights", str(release), "--out", str(out)]
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 0, result.output
        assert "1 image(s) x 1 token counts (17)" in result.output
        short = CliRunner().invoke(cli, args[:-2] + ["--tokens", "5", "--out", str(tmp_path / "b.png")])
    assert short.exit_code != 0 and "whole latent sequences" in short.output
    assert out.stat().st_size > 0


def test_tokenized_latents_read_back_and_decode(release, pictures, tmp_path):
    from zoo.media.image import load_images

    tok = zoo.load("mingtok.vision", weights=release, image_size=64)
    zoo.tokenize(tok, [pictures], tmp_path / "z", workers=0, progress=False)
    (batch,) = zoo.read_tokens(tmp_path / "z")
    with torch.inference_mode():
        expected = tok.encode(load_images([pictures / k for k in batch.keys], size=64))
    assert batch.tokens.tokenizer == "mingtok.vision" and batch.tokens.meta["grid_side"] == 4
    torch.testing.assert_close(batch.tokens.values, expected.values)
    torch.testing.assert_close(tok.decode(batch.tokens), tok.decode(expected))
