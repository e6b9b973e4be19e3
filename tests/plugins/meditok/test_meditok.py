"""MedITok against Masaaki-75/meditok (reference run from a mirror in /tmp, random weights).

Fixture ``tests/fixtures/meditok/meditok.pt``: the reference ``MedITok`` (``models/meditok.py``,
``get_meditok_args(64)``) with timm 1.0.8 (its ``requirements.txt`` pin; timm >= 1.0.20 passes
``device``/``dtype`` to the reference's ``HybridEmbed`` and ``GeGluMlp``, which do not take them).
Patched in the reference (configuration only, no reference code changed): ``timm.create_model`` gets
``depth=2`` (encoder and decoder ViT); ``vitamin_large`` re-registered from the reference's own
``MbConvStages``/``VitCfg``/``_create_vision_transformer_hybrid`` with stage widths (32, 64, 1024)
and depths (2, 2); ``ViTaminDecoder``'s default conv depths (4, 2) -> (2, 2); ``vocab_size`` 512
(8 sub-codebooks of 64), ``embed_dim`` (alignment) 32. The ViT width (1024, 16 heads), the decoder
conv widths (320, 160) and the quantiser width (64 = 8 x 8) are the released ones. No weights are
stored: they are :func:`zoo.testing.weights.seeded_state_dict` over the stored manifest (seed 1;
``pos_embed`` and ``zero_k_bias`` std 0.5, so the paths that add them are exercised), except the
data-driven codebooks (``quant_proj`` features of other images, l2-normalised per group, + noise
0.05). The reference's quantiser computes in float32 (``.float()``), so the record is float32.

Tolerances (float32): encoder features and ``quant_proj`` latents atol 1e-4 (values ~1), ids equal
(the smallest top-2 cosine gap of the record is 8e-4), decode of the reference's ids atol 1e-5
(every other pixel; zoo computes nearest-2x + conv3x3 at the low resolution with summed taps,
:func:`upsample_conv3x3`: max |diff| 3e-6 here) and the pixel sums, alignment features atol 1e-5.
Encoder features, latents and alignment features are bitwise equal on this machine.
``manifests.json``: the reference's key/shape manifest at ``get_meditok_args()`` (the released
config, built on the meta device, nothing patched).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from zoo_plugins.meditok.builder import MedITokBuilder, from_reference
from zoo_plugins.meditok.config import MedITokConfig
from zoo_plugins.meditok.model import MedITok, upsample_conv3x3

import zoo
from zoo.builders import CheckpointFiles
from zoo.errors import CheckpointError, ConfigError, MediaError, TokenError
from zoo.interfaces import Tokens
from zoo.testing.weights import assert_manifest_equal, default_init, seeded_state_dict, state_manifest

FIX = Path(__file__).resolve().parents[2] / "fixtures" / "meditok"
SMALL = dict(image_size=64, stem_width=32, stage_dims=[32, 64], stage_depths=[2, 2], depth=2, decoder_conv_depths=[2, 2],
             codebook_size=64, align_dim=32)


def _init(key, shape):
    if key.endswith(("pos_embed", "zero_k_bias")):
        return 0.0, 0.5
    if key == "logit_scale":
        return 2.0, 0.1
    return default_init(key, shape)


@pytest.fixture(scope="module")
def fixture():
    return torch.load(FIX / "meditok.pt", weights_only=True)


def release_state(fx: dict) -> dict:
    """The recorded reference state (reference layout), float32, with its data-driven codebooks."""
    state = seeded_state_dict({k: (tuple(s), d) for k, (s, d) in fx["manifest"].items()}, seed=1, init=_init)
    for g, book in enumerate(fx["codebooks"]):
        state[f"quantizer.codebooks.{g}.codebook.weight"] = book.float()
    return state


@pytest.fixture(scope="module")
def recorded(fixture):
    model = MedITok(MedITokConfig(**SMALL)).eval()
    model.load_state_dict(MedITokBuilder().convert(release_state(fixture), model.config), strict=True)
    x = F.interpolate(fixture["low"], size=(64, 64), mode="bicubic").clamp(-1, 1)
    return model, dict(fixture, ids=fixture["ids"].long()), x


# --------------------------------------------------------------------------- parity


def test_encoder_and_latents_match_the_reference(recorded):
    model, fx, x = recorded
    with torch.no_grad():
        feats = model.encoder(x)
    assert feats.shape == (2, 16, 1024)
    torch.testing.assert_close(feats[:, :, ::16], fx["encoder_sub"], atol=1e-5, rtol=0)
    torch.testing.assert_close(model.encode_latents(x), fx["latents"], atol=1e-5, rtol=0)


def test_ids_equal_the_reference(recorded):
    model, fx, x = recorded
    tok = model.encode(x)
    assert tok.ids.shape == (2, 8, 16) and tok.codebook_size == 64 and tok.meta == {"grid": (4, 4)}
    assert torch.equal(tok.ids, fx["ids"]), f"{int((tok.ids != fx['ids']).sum())} ids differ"
    assert all(fx["ids"][:, g].unique().numel() > 12 for g in range(8))  # data-driven codebooks
    assert float(fx["min_gap"]) > 1e-4


def test_decode_of_the_reference_ids(recorded):
    model, fx, _ = recorded
    pix = model.decode(fx["ids"])
    assert pix.shape == (2, 3, 64, 64)
    torch.testing.assert_close(pix[:, :, ::2, ::2], fx["pixels_sub"], atol=1e-5, rtol=0)
    torch.testing.assert_close(pix.double().sum(dim=(1, 2, 3)), fx["pixels_sum"], atol=1e-6 * pix[0].numel(), rtol=0)


def test_reconstruct_and_embed_match_the_reference(recorded):
    model, fx, x = recorded
    torch.testing.assert_close(model.reconstruct(x).double().sum(dim=(1, 2, 3)), fx["recon_sum"], atol=1e-6 * 3 * 64 * 64, rtol=0)
    torch.testing.assert_close(model.embed(x), fx["features"], atol=1e-5, rtol=0)
    torch.testing.assert_close(model.embed(x, normalize=True), F.normalize(fx["features"], dim=-1), atol=1e-5, rtol=0)


def test_released_config_loads_the_reference_keys_strictly():
    ref = json.loads((FIX / "manifests.json").read_text())["simple_v1"]
    model = zoo.load("meditok.simple_v1", pretrained=False, device="meta")
    assert_manifest_equal(from_reference({k: (tuple(s), "float32") for k, s in ref.items()}, model.config),
                          state_manifest(model), what="meditok.simple_v1")
    assert model.num_tokens == 256 and model.codebook_size == 4096 and model.config.num_codebooks == 8
    assert sum(p.numel() for p in model.parameters()) > 6e8  # ViTamin-L encoder + decoder


@pytest.mark.parametrize(("batch", "cin", "cout", "h", "w"), [(1, 3, 2, 5, 4), (64, 3, 2, 5, 4), (4, 16, 8, 16, 12),
                                                               (2, 8, 8, 32, 32)])
def test_upsample_conv3x3_is_the_upsampled_conv(batch, cin, cout, h, w):
    g = torch.Generator().manual_seed(batch + h)
    x, wt, b = torch.randn(batch, cin, h, w, generator=g), torch.randn(cout, cin, 3, 3, generator=g) / (9 * cin) ** 0.5, torch.randn(cout, generator=g)
    want = F.conv2d(F.interpolate(x.double(), scale_factor=2.0, mode="nearest"), wt.double(), b.double(), padding=1)
    got = upsample_conv3x3(x, wt, b)
    assert got.shape == (batch, cout, 2 * h, 2 * w)
    torch.testing.assert_close(got.double(), want, atol=2e-5, rtol=0)
    torch.testing.assert_close(upsample_conv3x3(x.double(), wt.double(), b.double()), want, atol=1e-12, rtol=0)
    last = upsample_conv3x3(x.contiguous(memory_format=torch.channels_last), wt, b)  # the layout timm's LayerNorm2d leaves
    torch.testing.assert_close(last.double(), want, atol=2e-5, rtol=0)
    assert last.is_contiguous(memory_format=torch.channels_last) or batch * h * w < 1024 or cin == 1


# --------------------------------------------------------------------------- files


def test_the_release_file_loads_offline(tmp_path, fixture, hub_stand_in, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    state = release_state(fixture)
    torch.save(state, tmp_path / "meditok_simple_v1.pth")
    model = zoo.load("meditok.simple_v1", weights=tmp_path / "meditok_simple_v1.pth", **SMALL)
    torch.testing.assert_close(model.quantizer.codebooks[3].weight, fixture["codebooks"][3].float())
    assert model.config.drop_alignment is False
    no_head = {k: v for k, v in state.items() if not k.startswith(("fc_norm.", "projection.", "logit_scale"))}
    torch.save({"model": no_head}, tmp_path / "no_head.pth")
    model = zoo.load("meditok.simple_v1", weights=tmp_path / "no_head.pth", **SMALL)
    assert model.config.drop_alignment is True and not hasattr(model, "projection")
    with pytest.raises(ConfigError, match="no alignment head"):
        model.embed(torch.zeros(1, 3, 64, 64))
    assert hub_stand_in.requests == []


def test_a_file_that_is_not_meditok_is_named(tmp_path):
    torch.save({"encoder.norm.weight": torch.zeros(1)}, tmp_path / "x.pth")
    with pytest.raises(CheckpointError, match="not a MedITok checkpoint"):
        MedITokBuilder().read_checkpoint(CheckpointFiles({"x.pth": tmp_path / "x.pth"}))


# --------------------------------------------------------------------------- interface and bad input

TINY = dict(image_size=32, stem_width=8, stage_dims=[8, 16], stage_depths=[1, 1], embed_dim=32, depth=1, num_heads=2,
            decoder_dims=[16, 8], decoder_conv_depths=[1, 1], codebook_size=16, num_codebooks=2, vocab_width=8, align_dim=8)


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return MedITok(MedITokConfig(**TINY)).eval()


@pytest.mark.parametrize(("images", "err", "match"), [
    (torch.zeros(1, 3, 64, 64), MediaError, "32x32"),
    (torch.zeros(3, 32, 32), MediaError, r"\[B, 3, H, W\]"),
    (torch.zeros(0, 3, 32, 32), MediaError, "no images"),
    (torch.full((1, 3, 32, 32), float("nan")), MediaError, "NaN|finite"),
])
def test_bad_images_are_refused(tiny, images, err, match):
    with pytest.raises(err, match=match):
        tiny.encode(images)


def test_bad_tokens_are_refused(tiny):
    for bad, match in [(torch.zeros(1, 4, dtype=torch.long), r"ids \[B, 2, 4\]"),
                       (torch.zeros(1, 3, 4, dtype=torch.long), r"ids \[B, 2, 4\]"),
                       (torch.full((1, 2, 4), 16), "codebook has 16 entries"),
                       (Tokens(ids=torch.zeros(1, 2, 4, dtype=torch.long), codebook_size=16, tokenizer="hita.vanilla"), "made by"),
                       ("ids", "decodes Tokens")]:
        with pytest.raises(TokenError, match=match):
            tiny.decode(bad)


@pytest.mark.parametrize(("kw", "match"), [
    (dict(image_size=250), "multiple of 16"),
    (dict(stage_dims=[8]), "two entries"),
    (dict(decoder_conv_depths=[0, 1]), "two entries"),
    (dict(num_heads=3), "divisible by num_heads"),
    (dict(num_codebooks=3), "divisible by num_codebooks"),
    (dict(vocab_width=48, num_codebooks=8), "multiple of vocab_width"),
])
def test_bad_configs(kw, match):
    with pytest.raises(ConfigError, match=match):
        MedITokConfig(**kw)


def test_encode_decode_round_trip_shapes_and_range(tiny):
    x = torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(1)) * 2 - 1
    tok = tiny.encode(x)
    assert tok.ids.shape == (3, 2, 4) and tok.ids.dtype == torch.int64 and int(tok.ids.max()) < 16
    assert torch.equal(tiny.encode(x[1:2]).ids, tok.ids[1:2])  # items are independent
    out = tiny.decode(tok)
    assert out.shape == (3, 3, 32, 32) and float(out.abs().max()) <= 1.0
    assert torch.equal(tiny.decode(tok.ids), out)


def test_zoo_reconstruct_writes_a_grid(tmp_path, monkeypatch, tiny):
    from click.testing import CliRunner
    from PIL import Image

    from zoo.cli import cli

    monkeypatch.setattr(zoo, "load", lambda *a, **k: tiny)
    src = tmp_path / "in.png"
    Image.fromarray((torch.rand(20, 24, 3) * 255).byte().numpy()).save(src)
    out = tmp_path / "grid.png"
    result = CliRunner().invoke(cli, ["reconstruct", str(src), "--model", "meditok.simple_v1", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.exists()


def test_zoo_tokenize_writes_meditok_ids_read_tokens_gives_back(tmp_path, tiny):
    from PIL import Image

    from zoo.media.image import load_images

    imgs = tmp_path / "imgs"
    imgs.mkdir()
    for i in range(2):
        Image.fromarray((torch.rand(32, 32, 3, generator=torch.Generator().manual_seed(i)) * 255).byte().numpy()).save(imgs / f"{i}.png")
    summary = zoo.tokenize(tiny, [imgs], tmp_path / "out", workers=0, progress=False)
    assert summary.failed == 0
    ids = torch.cat([b.tokens.ids for b in zoo.read_tokens(tmp_path / "out")])
    assert ids.shape == (2, 2, 4)
    assert torch.equal(ids, tiny.encode(load_images(sorted(imgs.glob("*.png")), size=32)).ids)
