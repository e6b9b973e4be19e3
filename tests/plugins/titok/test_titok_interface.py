"""The zoo Tokenizer interface of TiTok / One-D-Piece: ranges, prefixes, errors, loading."""

from __future__ import annotations

import json

import pytest
import torch

from zoo.interfaces import Latents, Tokens


def _images(tk, name):
    return tk.case_data(name)["images_uint8"].float() / 127.5 - 1  # [-1, 1]


def test_encode_returns_tokens(tk):
    model = tk.case_model("legacy_vq")
    tok = model.encode(_images(tk, "legacy_vq"))
    assert isinstance(tok, Tokens)
    assert tok.ids.shape == (2, 16) and tok.codebook_size == 64 and tok.lengths.tolist() == [16, 16]


def test_decode_accepts_tensor_and_reference_layout(tk):
    model, data = tk.case_model("legacy_vq"), tk.case_data("legacy_vq")
    a = model.decode(data["ids"])
    b = model.decode(data["ids"][:, None])  # the reference's [B, 1, N]
    c = model.decode([data["ids"][0:1], data["ids"][1:2]])
    assert a.shape == (2, 3, 48, 48) and a.min() >= -1 and a.max() <= 1
    assert torch.equal(a, b) and torch.equal(a, c)
    raw = model.decode(data["ids"], clamp=False)
    torch.testing.assert_close(raw, data["decoded"] * 2 - 1, atol=2e-4, rtol=0)


def test_one_d_piece_per_image_prefixes(tk):
    """Each image decodes from its own prefix; equal to the reference's one-length decodes."""
    model, data = tk.case_model("one_d_piece"), tk.case_data("one_d_piece")
    tok = model.encode(_images(tk, "one_d_piece"), num_tokens=[7, 24])
    assert tok.lengths.tolist() == [7, 24] and tok.ids.shape == (2, 24)
    out = model.decode(tok, clamp=False)
    torch.testing.assert_close(out[0], data["decoded_7"][0] * 2 - 1, atol=2e-4, rtol=0)
    torch.testing.assert_close(out[1], data["decoded_24"][1] * 2 - 1, atol=2e-4, rtol=0)
    ragged = model.decode([data["ids"][0, :1], data["ids"][1, :7]], clamp=False)
    torch.testing.assert_close(ragged[0], data["decoded_1"][0] * 2 - 1, atol=2e-4, rtol=0)
    torch.testing.assert_close(ragged[1], data["decoded_7"][1] * 2 - 1, atol=2e-4, rtol=0)
    same = model.decode(data["ids"], num_tokens=1, clamp=False)
    torch.testing.assert_close(same, data["decoded_1"] * 2 - 1, atol=2e-4, rtol=0)


def test_vae_encode_returns_latents_that_decode(tk):
    """VAE models return zoo Latents (posterior mean); decode takes them or their raw values."""
    model = tk.case_model("vae")
    z = model.encode(_images(tk, "vae"))
    assert isinstance(z, Latents) and z.values.shape == (2, 16, 16) and z.values.dtype == torch.float32
    assert z.lengths.tolist() == [16, 16] and z.max_length == 16 and z.dim == 16
    out = model.decode(z)
    assert out.shape == (2, 3, 48, 48) and torch.equal(out, model.decode(z.values))
    assert torch.equal(out, model.decode(z.to_list()))  # per-image [1, N, C] tensors


@pytest.mark.parametrize(
    "case, call, error, match",
    [
        ("legacy_vq", lambda m: m.encode(torch.zeros(1, 3, 32, 32)), ValueError, r"\[B, 3, 48, 48\]"),
        ("legacy_vq", lambda m: m.encode(torch.full((1, 3, 48, 48), 255.0)), ValueError, r"\[-1, 1\]"),
        ("legacy_vq", lambda m: m.encode(torch.zeros(1, 3, 48, 48, dtype=torch.uint8)), TypeError, "float"),
        ("legacy_vq", lambda m: m.encode("cat.png"), TypeError, "to_tensor"),
        ("legacy_vq", lambda m: m.decode(torch.full((1, 16), 64)), ValueError, "codebook has 64"),
        ("legacy_vq", lambda m: m.decode(torch.zeros(1, 8, dtype=torch.long)), ValueError, "exactly 16"),
        ("legacy_vq", lambda m: m.encode(torch.zeros(1, 3, 48, 48), num_tokens=4), ValueError, "One-D-Piece"),
        ("one_d_piece", lambda m: m.decode(torch.zeros(1, 25, dtype=torch.long)), ValueError, "at most 24"),
        ("one_d_piece", lambda m: m.decode(torch.zeros(2, 24, dtype=torch.long), num_tokens=[0, 3]), ValueError, "1..24"),
        ("vae", lambda m: m.decode(torch.zeros(1, 16, dtype=torch.long)), ValueError, r"\[B, 16, 16\]"),
        ("vae", lambda m: m.decode(torch.zeros(1, 16, 8)), ValueError, r"\[B, 16, 16\]"),
        ("vae", lambda m: m.decode(Latents(torch.zeros(2, 16, 16)).truncate([16, 8])), ValueError, "exactly 16 continuous"),
        ("vae", lambda m: m.decode(torch.zeros(1, 8, 16)), ValueError, "exactly 16 continuous"),
        ("vae", lambda m: m.decode(torch.zeros(1, 16, 16), num_tokens=8), ValueError, "One-D-Piece"),
        ("vae", lambda m: m.encode(torch.zeros(1, 3, 48, 48), num_tokens=8), ValueError, "One-D-Piece"),
    ],
)
def test_errors_name_the_problem(tk, case, call, error, match):
    from zoo.errors import ZooError

    with pytest.raises(error, match=match) as info:
        call(tk.case_model(case))
    if error is ValueError and "codebook" not in match:  # zoo errors, so the CLI reports them cleanly
        assert isinstance(info.value, ZooError)


@pytest.fixture(scope="module")
def release(tk, tmp_path_factory):
    """The legacy (TiTok hub layout: model.safetensors + config.json), VAE (same layout) and
    One-D-Piece (hub layout: pytorch_model.bin, config on the card) cases written as released,
    and a registry holding a card for each: ``titok_test.hub``, ``titok_test.vae``, ``titok_test.odp``."""
    from safetensors.torch import save_file
    from zoo_plugins.titok.config import from_reference_config

    from zoo.hookspecs import hookimpl

    hub = tmp_path_factory.mktemp("titok_hub")
    sd = tk.case_state_dict("legacy_vq")
    save_file({k: v.contiguous() for k, v in sd.items()}, str(hub / "model.safetensors"))
    (hub / "config.json").write_text(json.dumps(tk.cases()["legacy_vq"]["config"]))
    vae = tmp_path_factory.mktemp("titok_vae")
    save_file({k: v.contiguous() for k, v in tk.case_state_dict("vae").items()}, str(vae / "model.safetensors"))
    (vae / "config.json").write_text(json.dumps(tk.cases()["vae"]["config"]))
    odp = tmp_path_factory.mktemp("titok_odp")
    torch.save(tk.case_state_dict("one_d_piece"), odp / "pytorch_model.bin")

    class Cards:
        @hookimpl
        def register_cards(self, register):
            base = {"kind": "tokenizer", "plugin": "titok", "modality": "image", "license": {"code": "Apache-2.0"}}
            register({**base, "name": "titok_test.hub", "hub_repo": "x/hub", "files": ["model.safetensors", "config.json"]})
            register({**base, "name": "titok_test.vae", "hub_repo": "x/vae", "files": ["model.safetensors", "config.json"]})
            register({**base, "name": "titok_test.odp", "hub_repo": "x/odp", "files": ["pytorch_model.bin"],
                      "config": from_reference_config(tk.cases()["one_d_piece"]["config"])})

    return {"titok_test.hub": (hub, "legacy_vq"), "titok_test.vae": (vae, "vae"), "titok_test.odp": (odp, "one_d_piece"),
            "cards": Cards()}


def _registry(release):
    import zoo_plugins.titok

    from zoo.testing.plugins import isolated_registry

    return isolated_registry(zoo_plugins.titok, release["cards"])


@pytest.mark.parametrize("name", ["titok_test.hub", "titok_test.odp"])
def test_zoo_load_official_release_format(tk, release, name):
    """zoo.load reads the release files unchanged, strictly, and reproduces the reference."""
    import zoo

    path, case = release[name]
    with _registry(release):
        model = zoo.load(name, weights=path)
    data = tk.case_data(case)
    tok = model.encode(data["images_uint8"].float() / 127.5 - 1)
    assert torch.equal(tok.ids, data["ids"]) and tok.tokenizer == name
    want = data["decoded"] if case == "legacy_vq" else data["decoded_24"]
    torch.testing.assert_close(model.decode(tok, clamp=False), want * 2 - 1, atol=2e-4, rtol=0)


def test_cli_reconstruct_prefix_grid(tk, release, tmp_path):
    """`zoo reconstruct --tokens 1,7,24` on a One-D-Piece model writes the prefix grid."""
    from click.testing import CliRunner
    from PIL import Image

    from zoo.cli import cli

    img = tmp_path / "in.png"
    Image.fromarray(tk.case_data("one_d_piece")["images_uint8"][0].permute(1, 2, 0).numpy()).save(img)
    out = tmp_path / "grid.png"
    with _registry(release):
        args = ["reconstruct", str(img), "--model", "titok_test.odp", "--weights", str(release["titok_test.odp"][0]),
                "--tokens", "1,7,24", "--out", str(out)]
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 0, result.output
        bad = CliRunner().invoke(cli, args[:-4] + ["--tokens", "1,25", "--out", str(out)])
    assert bad.exit_code != 0 and "out of range" in bad.output
    grid = Image.open(out)
    assert grid.width > 4 * 48 and grid.height >= 48



def test_cli_reconstruct_continuous_tokens(tk, release, tmp_path):
    """`zoo reconstruct` on a TiTok VAE model (Latents): the full length works and matches the
    reference's decode; a shorter prefix is refused with a clear error, not a traceback."""
    import numpy as np
    from click.testing import CliRunner
    from PIL import Image

    from zoo.cli import cli

    data = tk.case_data("vae")
    img = tmp_path / "in.png"
    Image.fromarray(data["images_uint8"][0].permute(1, 2, 0).numpy()).save(img)
    out = tmp_path / "grid.png"
    with _registry(release):
        args = ["reconstruct", str(img), "--model", "titok_test.vae", "--weights", str(release["titok_test.vae"][0]),
                "--out", str(out)]
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 0, result.output
        assert "1 image(s) x 1 token counts (16)" in result.output
        full = CliRunner().invoke(cli, args + ["--tokens", "16"])
        short = CliRunner().invoke(cli, args + ["--tokens", "8,16"])
    assert full.exit_code == 0, full.output
    assert short.exit_code != 0 and "exactly 16 continuous tokens" in short.output and "Traceback" not in short.output
    grid = np.asarray(Image.open(out).convert("RGB"))
    assert grid.shape[0] >= 48 and grid.shape[1] > 2 * 48
    want = (data["decoded"][0].clamp(0, 1) * 255).round().permute(1, 2, 0).numpy()
    cells = [grid[y : y + 48, x : x + 48].astype(float) for y in range(grid.shape[0] - 47) for x in range(grid.shape[1] - 47)]
    assert min(np.abs(c - want).max() for c in cells) <= 2  # the decoded cell is in the grid

def test_unknown_checkpoint_key_is_reported(tk, tmp_path):
    from zoo_plugins.titok.builder import TiTokBuilder
    from zoo_plugins.titok.model import TiTok

    from zoo.builders import CheckpointFiles
    from zoo.errors import CheckpointError
    from zoo.weights import load_state_dict_strict

    sd = dict(tk.case_state_dict("vq8k"))
    sd["quantize.embed_prob"] = torch.zeros(96)
    torch.save(sd, tmp_path / "pytorch_model.bin")
    ckpt = TiTokBuilder().read_checkpoint(CheckpointFiles({"pytorch_model.bin": tmp_path / "pytorch_model.bin"}))
    with pytest.raises(CheckpointError, match="quantize.embed_prob"):
        load_state_dict_strict(TiTok(tk.case_config("vq8k")), ckpt.state_dict)


def test_stages_are_differentiable_and_match_no_grad(tk):
    """Caches and in-place ops are off while autograd records (test-time optimisation works)."""
    model, data = tk.case_model("legacy_vq"), tk.case_data("legacy_vq")
    z = model.ids_to_latents(data["ids"]).detach().clone().requires_grad_(True)
    out = model.decode_latents(z)
    out.square().mean().backward()
    assert z.grad is not None and z.grad.abs().sum() > 0
    with torch.inference_mode():
        again = model.decode_latents(z.detach())
    torch.testing.assert_close(out.detach(), again, atol=1e-5, rtol=0)
    torch.testing.assert_close(again, data["decoded"], atol=1e-4, rtol=0)
