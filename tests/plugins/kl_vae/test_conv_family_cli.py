"""`zoo reconstruct` for the fixed-grid conv-core families: LlamaGen VQ (input | reconstruction)
and the KL-VAEs (input | decode | latents picture); --tokens is refused for both."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from zoo.testing.weights import seeded_state_dict

FIX = Path(__file__).resolve().parents[2] / "fixtures"


def _release(family: str, tmp: Path) -> tuple[Path, dict, str]:
    if family == "llamagen_vq":
        meta = json.loads((FIX / "llamagen_vq" / "small.json").read_text())
        state = seeded_state_dict({k: (tuple(s), d) for k, (s, d) in meta["manifest"].items()}, seed=0)
        path = tmp / "vq.pt"
        torch.save({"model": state}, path)
        return path, meta["config"], "llamagen_vq"
    meta = json.loads((FIX / "kl_vae" / "mar_kl16.json").read_text())
    state = seeded_state_dict({k: (tuple(s), d) for k, (s, d) in meta["manifest"].items()}, seed=0)
    path = tmp / "kl16.ckpt"
    torch.save({"model": state}, path)
    return path, meta["config"], "mar_vae"


@pytest.mark.parametrize("family, expect, columns", [
    ("llamagen_vq", "input | reconstruction (8x8 token grid per image)", 2),
    ("mar_vae", "input | reconstruction (8x8 latents of 8 channels per image)", 3),
])
def test_reconstruct_shows_input_and_reconstruction(tmp_path, family, expect, columns):
    from click.testing import CliRunner
    from PIL import Image

    import zoo_plugins.kl_vae
    import zoo_plugins.llamagen_vq
    from zoo.cli import cli
    from zoo.hookspecs import hookimpl
    from zoo.testing.plugins import isolated_registry

    weights, config, builder = _release(family, tmp_path)

    class Cards:
        @hookimpl
        def register_cards(self, register):
            register({"name": "convtest.tiny", "kind": "tokenizer", "plugin": builder, "modality": "image",
                      "hub_repo": "x/y", "files": [weights.name], "license": {"code": "MIT"},
                      "config": {**config, "image_size": 32}})

    img = tmp_path / "in.png"
    Image.fromarray((torch.rand(40, 50, 3) * 255).to(torch.uint8).numpy()).save(img)
    out = tmp_path / "grid.png"
    with isolated_registry(zoo_plugins.llamagen_vq, zoo_plugins.kl_vae, Cards()):
        args = ["reconstruct", str(img), str(img), "--model", "convtest.tiny", "--weights", str(weights), "--out", str(out)]
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 0, result.output
        assert expect in result.output
        bad = CliRunner().invoke(cli, args[:-2] + ["--tokens", "3", "--out", str(tmp_path / "b.png")])
    assert bad.exit_code != 0 and "--tokens does not apply" in bad.output and "fixed-length" in bad.output
    grid = Image.open(out)
    assert grid.width >= columns * 32 and grid.width < (columns + 1) * 32 + 40 and grid.height >= 2 * 32
