"""ViTok-v2 against Na-VAE/vitok-release (fixtures recorded by scripts/parity/record_vitok.py on
regenerated random weights, the reference's SDPA path).

Tolerances (float32, CPU): latents atol 1e-5 on the valid patches, the decode of the reference's
latents atol 1e-4 (both agree to 0 here: same operations in the same order); ragged batches are
compared image by image after the reference's own unpatchify + unpack.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from zoo_plugins.vitok.builder import from_reference, to_reference
from zoo_plugins.vitok.config import ViTokConfig, parse_variant
from zoo_plugins.vitok.model import ViTokV2

import zoo
from zoo.errors import CheckpointError, ConfigError, InputError, InputTypeError, MediaError, TokenError
from zoo.interfaces import Latents
from zoo.testing.weights import assert_manifest_equal, seeded_state_dict, state_manifest

FIX = Path(__file__).resolve().parents[2] / "fixtures" / "vitok"
LATENT_ATOL, IMAGE_ATOL = 1e-5, 1e-4
META = json.loads((FIX / "small.json").read_text())
MANIFESTS = json.loads((FIX / "manifests.json").read_text())


def _manifest(raw: dict) -> dict:
    return {k: (tuple(s), d) for k, (s, d) in raw.items()}


@pytest.fixture(scope="module")
def data() -> dict:
    return load_file(str(FIX / "small.safetensors"))


@pytest.fixture(scope="module")
def reference_state() -> dict:
    return seeded_state_dict(_manifest(META["manifest"]), seed=0)


@pytest.fixture(scope="module")
def model(reference_state) -> ViTokV2:
    m = ViTokV2(ViTokConfig(variant=META["variant"])).eval()
    m.load_state_dict(from_reference(reference_state), strict=True)
    return m


def _inputs(data: dict, case: str):
    xs = [data[f"{case}.x{i}"] for i in range(len(META["cases"][case]))]
    return torch.stack(xs) if len({tuple(x.shape) for x in xs}) == 1 else xs


# --------------------------------------------------------------------------- variants and manifests


@pytest.mark.parametrize("variant, enc, dec, patch, channels", [
    ("Ld4-Ld24/1x16x64", (1024, 4, 16, 2736), (1024, 24, 16, 2736), 16, 64),
    ("Td4-T/1x32x128", (3072, 4, 24, 8208), (3072, 40, 24, 8208), 32, 128),
    ("B/16x8", (768, 12, 12, 2048), (768, 12, 12, 2048), 16, 8),
    ("w64_d2_h4-w96_d3_h4_m4/1x8x16", (64, 2, 4, 256), (96, 3, 4, 384), 8, 16),  # the larger MLP factor wins
    ("Lw512h8/1x16x4", (512, 24, 8, 1360), (512, 24, 8, 1360), 16, 4),
])
def test_variant_strings_parse_as_data(variant, enc, dec, patch, channels):
    a = parse_variant(variant)
    assert (a.encoder.width, a.encoder.depth, a.encoder.heads, a.encoder.mlp_hidden) == enc
    assert (a.decoder.width, a.decoder.depth, a.decoder.heads, a.decoder.mlp_hidden) == dec
    assert (a.patch, a.channels, a.pixels_per_token) == (patch, channels, 3 * patch * patch)


@pytest.mark.parametrize("variant, message", [
    ("L", "must read"), ("Q/1x16x8", "unknown size 'Q'"), ("L/1xAx8", "integers"), ("L/1x16x8x2", "TxPxC"),
    ("w30_d1_h4/16x8", "divisible by 4"), ("L/2x16x8", "temporal stride 2"), (__import__("os"), "must read"),
])
def test_bad_variants_are_config_errors(variant, message):
    with pytest.raises(ConfigError, match=message):
        ViTokConfig(variant=variant).arch()


def test_every_card_is_a_published_variant():
    cards = {zoo.get_card(n).config["variant"]: zoo.get_card(n) for n in zoo.list_models("vitok_v2.*")}
    assert set(cards) == set(MANIFESTS)
    for variant, card in cards.items():
        assert card.hub_repo == MANIFESTS[variant]["repo"] and list(card.files) == MANIFESTS[variant]["files"]


@pytest.mark.parametrize("variant", sorted(MANIFESTS))
def test_published_variants_load_the_reference_keys_strictly(variant):
    rec = MANIFESTS[variant]
    expected = {**_manifest(rec["encoder"]), **_manifest(rec["decoder"])}
    assert not set(rec["encoder"]) & set(rec["decoder"])
    with torch.device("meta"):
        ours = state_manifest(ViTokV2(ViTokConfig(variant=variant)))
    assert_manifest_equal(to_reference(ours), expected, what=variant)
    assert_manifest_equal(from_reference(expected), ours, what=f"{variant} (zoo names)")


# --------------------------------------------------------------------------- parity


@pytest.mark.parametrize("case", sorted(META["cases"]))
def test_latents_match_the_reference(model, data, case):
    z = model.encode(_inputs(data, case))
    ref, mask = data[f"{case}.z"], data[f"{case}.mask"]
    assert z.lengths.tolist() == mask.sum(1).tolist()
    torch.testing.assert_close(z.values[mask], ref[mask], atol=LATENT_ATOL, rtol=0)
    assert not z.values[~mask].any()  # padding is zero


@pytest.mark.parametrize("case", sorted(META["cases"]))
def test_decoding_the_reference_latents_matches(model, data, case):
    sizes = [tuple(s) for s in META["cases"][case]]
    mask = data[f"{case}.mask"]
    grids = [(-(-h // 8), -(-w // 8)) for h, w in sizes]
    meta = {"grid": grids[0], "size": sizes[0]} if len(set(sizes)) == 1 else {"grids": grids, "sizes": sizes}
    lat = Latents(values=data[f"{case}.z"] * mask[..., None], lengths=mask.sum(1), meta=meta)
    out = model.decode(lat, clamp=False)
    assert isinstance(out, torch.Tensor) == (len(set(sizes)) == 1)
    for i, size in enumerate(sizes):
        assert tuple(out[i].shape) == (3, *size)
        torch.testing.assert_close(out[i], data[f"{case}.decoded{i}"], atol=IMAGE_ATOL, rtol=0)
    clamped = model.decode(lat)
    assert all(float(c.abs().max()) <= 1.0 for c in clamped)


def test_a_ragged_batch_equals_its_images_one_by_one(model, data):
    xs = _inputs(data, "ragged")
    batch = model.encode(xs)
    decoded = model.decode(batch)
    for i, x in enumerate(xs):
        alone = model.encode(x[None])
        n = int(batch.lengths[i])
        torch.testing.assert_close(batch.values[i, :n], alone.values[0], atol=1e-5, rtol=0)
        item = batch[i]  # per-image grids and sizes are sliced with the batch
        assert item.meta["sizes"] == [tuple(x.shape[1:])]
        torch.testing.assert_close(model.decode(item)[0], decoded[i], atol=1e-5, rtol=0)


def test_raw_square_latents_decode_and_non_square_need_a_grid(model, data):
    z = model.encode(_inputs(data, "square"))  # 4x4 grid
    torch.testing.assert_close(model.decode(z.values), model.decode(z))
    wide = model.encode(torch.zeros(1, 3, 8, 24))
    with pytest.raises(TokenError, match="not a square grid"):
        model.decode(wide.values)
    assert tuple(model.decode(wide.values, grid=(1, 3)).shape) == (1, 3, 8, 24)


# --------------------------------------------------------------------------- loading the release files


def _write_release(folder: Path, reference_state: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    enc = {k: v for k, v in reference_state.items() if k.startswith(("patch_embed.", "to_code.", "encoder_blocks."))}
    dec = {k: v for k, v in reference_state.items() if k not in enc}
    save_file(enc, str(folder / "encoder.safetensors"))
    save_file(dec, str(folder / "decoder.safetensors"))
    return folder


def test_the_two_release_files_load_strictly(tmp_path, reference_state, model, data):
    folder = _write_release(tmp_path / "vitok", reference_state)
    loaded = zoo.load("vitok_v2.350m_f16x16", weights=folder, variant=META["variant"])
    x = _inputs(data, "square")
    torch.testing.assert_close(loaded.encode(x).values, model.encode(x).values)
    z = loaded.encode(x)
    assert z.tokenizer == "vitok_v2.350m_f16x16"
    with pytest.raises(TokenError, match="made by"):
        loaded.decode(Latents(values=z.values, tokenizer="other.vae", meta=z.meta))


def test_a_missing_or_wrong_file_is_a_checkpoint_error(tmp_path, reference_state):
    folder = _write_release(tmp_path / "v", reference_state)
    (folder / "decoder.safetensors").unlink()
    with pytest.raises(CheckpointError, match=r"lacks \['decoder.safetensors'\]"):
        zoo.load("vitok_v2.350m_f16x16", weights=folder, variant=META["variant"])
    save_file({"w": torch.zeros(1)}, str(folder / "decoder.safetensors"))
    with pytest.raises(CheckpointError, match="not a ViTok-v2 decoder file"):
        zoo.load("vitok_v2.350m_f16x16", weights=folder, variant=META["variant"])


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("bad, error, message", [
    (torch.zeros(3, 16, 16), MediaError, "add the batch dimension"),
    (torch.zeros(1, 3, 16, 16, dtype=torch.uint8), InputTypeError, "float images"),
    (torch.full((1, 3, 16, 16), float("nan")), MediaError, "NaN"),
    (torch.full((1, 3, 16, 16), 3.0), MediaError, r"\[-1, 1\]"),
    (torch.zeros(0, 3, 16, 16), MediaError, "no images"),
    ([], InputError, "non-empty list"),
    ([torch.zeros(1, 3, 8, 8)], InputError, r"\[3, H, W\]"),
])
def test_bad_images_fail_before_compute(model, bad, error, message):
    with pytest.raises(error, match=message):
        model.encode(bad)


def test_bad_latents_fail_clearly(model, data):
    z = model.encode(_inputs(data, "square"))
    with pytest.raises(TokenError, match="16"):
        model.decode(torch.zeros(1, 16, 8))
    with pytest.raises(TokenError, match="finite"):
        model.decode(torch.full((1, 16, 16), float("inf")))
    with pytest.raises(TokenError, match="whole patch grids"):
        model.decode(z.truncate(10))
