"""Hita against CVMI-Lab/Hita (reference run from a mirror in /tmp, random weights).

Fixture ``tests/fixtures/hita/hita.pt``: the reference ``VQModel`` (``hita/tokenizer/tokenizer_image/
vq_model.py`` with ``hita.core.layers.Encoder/Decoder`` from an OmegaConf config like
``configs/hita_vqgan{,_ultra}.yaml``) at the released structure with shrunk widths: 336 px, 16x
downsampling (conv ch 32, the released ch_mult [1, 1, 2, 2, 4], 1 ResNet block), a 21x21 patch grid, transformer width 64,
2 blocks, 2 heads of 32, 16 holistic tokens, ``shift_k`` 4, DINOv2-reg4 backbone of width 48 and 2
blocks (released 37x37 position grid), 256-entry codebooks of the released widths 8 and 12;
``vanilla`` and ``ultra`` (with the VFM-reconstruction head). No weights are stored: they are
:func:`zoo.testing.weights.seeded_state_dict` over the stored manifests (model seed 1, DINOv2
seed 2; position/carrier/class tokens std 0.5), except the data-driven codebooks (features of
other images + noise, float16). Run in float64.

Patched in the reference: ``dinov2_vitl14_reg`` (``pretrained=True`` downloads) -> the same class
built at width 48 and loaded from a file by the reference's own ``load_pretrained_dino_v2``;
``Tensor.cuda`` / ``Module.cuda`` -> identity; the conv ``Encoder``/``Decoder`` widths; ``refile``
and ``cv2`` stubbed (imported, unused); ``XFORMERS_DISABLED=1`` (so ``transformer1`` runs the
reference's ``CrossAttention``); kornia 0.9.0 for its ``resize``.

Tolerances (float64): patch and holistic latents atol 1e-6 (float32 record), DINOv2 features atol
1e-6, ids equal, decode of the reference's ids atol 1e-6 (subsampled) and the pixel sums.
``manifests.json``: the reference's key/shape manifest of both released configs (without the
frozen DINOv2, which the release does not hold either).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from zoo_plugins.hita.builder import BACKBONE_PREFIX, DROPPED_KEYS, HitaBuilder, from_reference
from zoo_plugins.hita.config import HitaConfig
from zoo_plugins.hita.model import Hita

import zoo
from zoo.builders import CheckpointFiles
from zoo.errors import CheckpointError, ConfigError, MediaError, TokenError
from zoo.interfaces import Tokens
from zoo.testing.weights import assert_manifest_equal, default_init, seeded_state_dict, state_manifest

FIX = Path(__file__).resolve().parents[2] / "fixtures" / "hita"
SMALL = dict(codebook_size=256, ch=32, ch_mult=[1, 1, 2, 2, 4], num_res_blocks=1, dim=64, depth=2, num_head=2, dim_head=32,
             mlp_dim=128, n_carrier=16, shift_k=4, backbone_embed_dim=48, backbone_depth=2, backbone_heads=2)


def _init(key, shape):
    if key.endswith(("carrier_tokens", "pos_embed", "position_embedding", "slot_position_embedding", "cls_token",
                     "register_tokens", "mask_token", "mask_embedding")):
        return 0.0, 0.5
    return default_init(key, shape)


@pytest.fixture(scope="module")
def fixture():
    return torch.load(FIX / "hita.pt", weights_only=True)


def release_state(fx: dict, case: str) -> dict:
    """The recorded reference release (reference layout, no backbone) of ``case``, float32."""
    c = fx[case]
    state = seeded_state_dict({k: (tuple(s), d) for k, (s, d) in c["manifest"].items()}, seed=1, init=_init)
    state["quantize.embedding.weight"] = c["codebook"].float()
    state["slot_quantize.embedding.weight"] = c["slot_codebook"].float()
    return state


def dino_state(fx: dict) -> dict:
    return seeded_state_dict({k: (tuple(s), d) for k, (s, d) in fx["dino_manifest"].items()}, seed=2, init=_init)


def _config(case: str) -> HitaConfig:
    return HitaConfig(**SMALL, enable_vfm_recon=case == "ultra")


@pytest.fixture(scope="module", params=["vanilla", "ultra"])
def recorded(request, fixture):
    case = request.param
    state = release_state(fixture, case) | {BACKBONE_PREFIX + k: v for k, v in dino_state(fixture).items()}
    model = Hita(_config(case)).eval()
    model.load_state_dict(HitaBuilder().convert(state, model.config), strict=True)
    model.double()
    fx = fixture[case]
    x = F.interpolate(fx["low"].double(), size=(336, 336), mode="bicubic").clamp(-1, 1)
    return model, dict(fx, ids=fx["ids"].long()), x


# --------------------------------------------------------------------------- parity


def test_backbone_features_match_the_reference(recorded):
    model, fx, x = recorded
    feats = model.encode_transformer.backbone_features(x)
    assert feats.shape[1] == 1 + 16 * 16
    torch.testing.assert_close(feats[:, ::8, ::4].float(), fx["dino_feats_sub"], atol=1e-6, rtol=0)


def test_latents_match_the_reference(recorded):
    model, fx, x = recorded
    z, q = model.encode_latents(x)
    torch.testing.assert_close(z.float(), fx["latents"], atol=1e-6, rtol=0)
    torch.testing.assert_close(q.float(), fx["slot_latents"], atol=1e-6, rtol=0)


def test_ids_equal_the_reference(recorded):
    model, fx, x = recorded
    tok = model.encode(x)  # the full path once (latents are checked above)
    assert tok.ids.shape == (2, 16 + 441) and tok.meta == {"split": 16, "grid": (21, 21)}
    assert torch.equal(tok.ids, fx["ids"]), f"{int((tok.ids != fx['ids']).sum())} ids differ"
    assert fx["ids"][:, 16:].unique().numel() > 50 and fx["ids"][:, :16].unique().numel() > 8  # data-driven codebooks


def test_decode_of_the_reference_ids(recorded):
    model, fx, _ = recorded
    pix = model.decode(fx["ids"][:1], clamp=False)  # one image: the decoder is the slow part at 336 px
    assert pix.shape == (1, 3, 336, 336)
    torch.testing.assert_close(pix[:, :, ::12, ::12], fx["pixels_sub"][:1].double(), atol=1e-6, rtol=0)
    torch.testing.assert_close(pix.sum(dim=(1, 2, 3)), fx["pixels_sum"][:1], atol=1e-9 * pix[0].numel(), rtol=0)


@pytest.mark.parametrize(("card", "case"), [("hita.vanilla", "vanilla"), ("hita.ultra", "ultra")])
def test_released_configs_load_the_reference_keys_strictly(card, case):
    ref = json.loads((FIX / "manifests.json").read_text())[case]
    ref |= {"quantize.codebook_used": [65536], "slot_quantize.codebook_used": [65536]}
    model = zoo.load(card, pretrained=False, device="meta")
    ours = {k: v for k, v in state_manifest(model).items() if not k.startswith(BACKBONE_PREFIX)}
    assert_manifest_equal(from_reference({k: (tuple(s), "float32") for k, s in ref.items()}, model.config), ours, what=card)
    assert model.num_tokens == 569 and model.config.enable_vfm_recon == (case == "ultra")
    assert zoo.get_card(card).dependencies == {"backbone": "dinov2.vitl14_reg4"}


# --------------------------------------------------------------------------- files


def _release(tmp_path: Path, fixture: dict, case: str = "vanilla", with_backbone: bool = True) -> Path:
    folder = tmp_path / case
    folder.mkdir()
    state = release_state(fixture, case) | {k: torch.zeros(65536) for k in DROPPED_KEYS}
    torch.save({"model": state, "args": "unused"}, folder / "hita-tok.pt")
    if with_backbone:
        torch.save(dino_state(fixture), folder / "dinov2_vitl14_reg4_pretrain.pth")
    return folder


def test_a_release_folder_loads_offline_and_detects_the_vfm_head(tmp_path, fixture, hub_stand_in, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    small = {k: v for k, v in SMALL.items()}
    for case in ("vanilla", "ultra"):
        model = zoo.load("hita.vanilla", weights=_release(tmp_path, fixture, case), **small)
        assert model.config.enable_vfm_recon == (case == "ultra")  # read from the file's keys
    assert hub_stand_in.requests == []


def test_without_dinov2_the_dependency_card_is_asked_for(tmp_path, fixture, hub_stand_in, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(zoo.ZooError, match="off the Hugging Face Hub|dinov2_vitl14_reg4_pretrain.pth"):
        zoo.load("hita.vanilla", weights=_release(tmp_path, fixture, with_backbone=False) / "hita-tok.pt", **SMALL)


def test_a_file_that_is_not_hita_is_named(tmp_path):
    torch.save({"model": {"encoder.conv_in.weight": torch.zeros(1)}}, tmp_path / "x.pt")
    with pytest.raises(CheckpointError, match="not a Hita tokenizer checkpoint"):
        HitaBuilder().read_checkpoint(CheckpointFiles({"x.pt": tmp_path / "x.pt"}))


# --------------------------------------------------------------------------- interface and bad input


@pytest.fixture(scope="module")
def tiny():
    c = HitaConfig(codebook_size=32, ch=32, ch_mult=[1, 1], num_res_blocks=1, image_size=8, patch_size=2, dim=32, depth=1,
                   num_head=2, dim_head=16, mlp_dim=48, n_carrier=6, shift_k=2, backbone_embed_dim=32, backbone_depth=1,
                   backbone_heads=2, backbone_size=14)
    return Hita(c).eval()


@pytest.mark.parametrize(("images", "err", "match"), [
    (torch.zeros(1, 3, 16, 16), MediaError, "8x8"),
    (torch.zeros(3, 8, 8), MediaError, r"\[B, 3, H, W\]"),
    (torch.zeros(0, 3, 8, 8), MediaError, "no images"),
    (torch.full((1, 3, 8, 8), float("nan")), MediaError, "NaN|finite"),
])
def test_bad_images_are_refused(tiny, images, err, match):
    with pytest.raises(err, match=match):
        tiny.encode(images)


def test_bad_tokens_are_refused(tiny):
    n = tiny.num_tokens
    for bad, match in [(torch.zeros(1, n - 1, dtype=torch.long), f"all {n} ids"),
                       (torch.full((1, n), 32), "codebook has 32 entries"),
                       (Tokens(ids=torch.zeros(1, n, dtype=torch.long), codebook_size=32, tokenizer="tokenflow.x"), "made by"),
                       ("ids", "decodes Tokens")]:
        with pytest.raises(TokenError, match=match):
            tiny.decode(bad)


@pytest.mark.parametrize(("kw", "match"), [
    (dict(image_size=330), "divisible by patch_size"),
    (dict(ch_mult=[1, 1, 2]), "downsamples by 4"),
    (dict(shift_k=128), "shift_k"),
])
def test_bad_configs(kw, match):
    with pytest.raises(ConfigError, match=match):
        HitaConfig(**kw)


def test_kornia_antialias_resize_matches_kornia_formula():
    """336 -> 224: sigma 0.25, 3 taps, reflect padding, then bicubic with align_corners=True."""
    from zoo_plugins.hita.model import kornia_antialias_resize

    x = torch.rand(1, 2, 12, 12, dtype=torch.float64)
    t = torch.tensor([-1.0, 0.0, 1.0], dtype=torch.float64)
    k = torch.exp(-t ** 2 / (2 * 0.25 ** 2))
    k = k / k.sum()
    pad = F.pad(x, (1, 1, 1, 1), mode="reflect")
    blurred = torch.zeros_like(x)
    for i in range(3):
        for j in range(3):
            blurred += k[i] * k[j] * pad[:, :, i:i + 12, j:j + 12]
    want = F.interpolate(blurred, size=(8, 8), mode="bicubic", align_corners=True)
    torch.testing.assert_close(kornia_antialias_resize(x, 8), want)


def test_zoo_reconstruct_writes_a_grid(tmp_path, monkeypatch, tiny):
    from click.testing import CliRunner
    from PIL import Image

    from zoo.cli import cli

    monkeypatch.setattr(zoo, "load", lambda *a, **k: tiny)
    src = tmp_path / "in.png"
    Image.fromarray((torch.rand(20, 24, 3) * 255).byte().numpy()).save(src)
    out = tmp_path / "grid.png"
    result = CliRunner().invoke(cli, ["reconstruct", str(src), "--model", "hita.vanilla", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.exists()


def test_zoo_tokenize_writes_hita_ids_read_tokens_gives_back(tmp_path, tiny):
    from PIL import Image

    imgs = tmp_path / "imgs"
    imgs.mkdir()
    for i in range(2):
        Image.fromarray((torch.rand(8, 8, 3, generator=torch.Generator().manual_seed(i)) * 255).byte().numpy()).save(imgs / f"{i}.png")
    summary = zoo.tokenize(tiny, [imgs], tmp_path / "out", workers=0, progress=False)
    assert summary.failed == 0
    ids = torch.cat([b.tokens.ids for b in zoo.read_tokens(tmp_path / "out")])
    from zoo.media.image import load_images

    assert ids.shape == (2, tiny.num_tokens)
    assert torch.equal(ids, tiny.encode(load_images(sorted(imgs.glob("*.png")), size=8)).ids)
