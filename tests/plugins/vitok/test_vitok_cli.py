"""ViTok-v2 through the CLI and the dataset format: ``zoo reconstruct`` writes input | reconstruction |
latents, and ``zoo tokenize`` stores latents that ``zoo.read_tokens`` gives back and the model decodes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

import zoo
from zoo.testing.weights import seeded_state_dict

FIX = Path(__file__).resolve().parents[2] / "fixtures" / "vitok"
META = json.loads((FIX / "small.json").read_text())


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> Path:
    state = seeded_state_dict({k: (tuple(s), d) for k, (s, d) in META["manifest"].items()}, seed=0)
    folder = tmp_path_factory.mktemp("vitok")
    enc = {k: v for k, v in state.items() if k.startswith(("patch_embed.", "to_code.", "encoder_blocks."))}
    save_file(enc, str(folder / "encoder.safetensors"))
    save_file({k: v for k, v in state.items() if k not in enc}, str(folder / "decoder.safetensors"))
    return folder


@pytest.fixture(scope="module")
def pictures(tmp_path_factory) -> Path:
    from PIL import Image

    folder = tmp_path_factory.mktemp("pictures")
    g = torch.Generator().manual_seed(0)
    for i in range(3):
        Image.fromarray((torch.rand(40, 50, 3, generator=g) * 255).to(torch.uint8).numpy()).save(folder / f"p{i}.png")
    return folder


def test_reconstruct_writes_input_reconstruction_and_latents(release, pictures, tmp_path):
    from click.testing import CliRunner
    from PIL import Image

    import zoo_plugins.vitok
    from zoo.cli import cli
    from zoo.hookspecs import hookimpl
    from zoo.testing.plugins import isolated_registry

    class Cards:
        @hookimpl
        def register_cards(self, register):
            register({"name": "vitoktest.tiny", "kind": "tokenizer", "plugin": "vitok_v2", "modality": "image",
                      "hub_repo": "x/y", "files": ["encoder.safetensors", "decoder.safetensors"],
                      "license": {"code": "Apache-2.0"}, "config": {"variant": META["variant"], "image_size": 32}})

    out = tmp_path / "grid.png"
    with isolated_registry(zoo_plugins.vitok, Cards()):
        args = ["reconstruct", str(pictures / "p0.png"), str(pictures / "p1.png"), "--model", "vitoktest.tiny",
                "--weights", str(release), "--out", str(out)]
        result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "input | reconstruction (4x4 latents of 16 channels per image)" in result.output
    grid = Image.open(out)
    assert grid.width >= 3 * 32 and grid.height >= 2 * 32


def test_tokenized_latents_read_back_and_decode(release, pictures, tmp_path):
    from zoo.media.image import load_images

    vae = zoo.load("vitok_v2.350m_f16x16", weights=release, variant=META["variant"], image_size=32)
    zoo.tokenize(vae, [pictures], tmp_path / "z", workers=0, progress=False)
    (batch,) = zoo.read_tokens(tmp_path / "z")
    with torch.inference_mode():
        expected = vae.encode(load_images([pictures / k for k in batch.keys], size=32))
    assert batch.tokens.tokenizer == "vitok_v2.350m_f16x16" and batch.tokens.meta["grid"] == (4, 4)
    torch.testing.assert_close(batch.tokens.values, expected.values)
    torch.testing.assert_close(vae.decode(batch.tokens), vae.decode(expected))
