"""DiGIT against DAMO-NLP-SG/DiGIT (reference run from a mirror in /tmp, random weights).

Fixture ``tests/fixtures/digit/digit.pt``: the reference's ``DinoVisionTransformer``
(``fairseq_user/pretrained_enc/dino/vits.py``: patch 14, 4 registers, LayerScale 1, the released
37x37 position grid, MLP FFN) at shrunk widths (``base``: width 48, 4 blocks; ``large_shape``: width
32, 6 blocks; ``layer`` 3 in both), weights from :func:`zoo.testing.weights.seeded_state_dict`
(seed 1; position/class/register tokens std 0.5), run in float64; centroids = features of 4 other
images plus 1e-3 noise (64 / 48 of them, stored float32). Tokens come from the reference's own
``STTransformerLanguageModel.prepare_semantic`` source (fairseq is not importable here, so the
function is exec'd alone) minus fairseq's 4 special symbols, on 256 px and 224 px inputs in [0, 1].
Patched in the reference: ``Tensor.cuda`` -> identity (it hard-codes ``.cuda()``), the xFormers
``SwiGLU`` base class stubbed (the fused SwiGLU FFN is unused), ``XFORMERS_DISABLED=1``.

Tolerances (float64): latents atol 1e-6 (recorded float32), ids equal (the smallest top-2 distance
gap in the fixture is 7e-4). ``manifests.json``: the reference's key/shape manifest of ViT-B/14-reg4
and ViT-L/14-reg4 as DiGIT builds them (``vit_base(14, 4, block_chunks=0, init_values=1)``, img_size 518).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from zoo_plugins.digit.builder import DiGITBuilder
from zoo_plugins.digit.config import DiGITConfig
from zoo_plugins.digit.model import DiGIT

import zoo
from zoo.builders import CheckpointFiles
from zoo.errors import CheckpointError, ConfigError, MediaError, TokenError
from zoo.interfaces import Tokens
from zoo.nn.backbones import DINOV2_CONFIGS
from zoo.testing.weights import assert_manifest_equal, default_init, seeded_state_dict, state_manifest

FIX = Path(__file__).resolve().parents[2] / "fixtures" / "digit"


def _init(key, shape):
    if key in ("pos_embed", "cls_token", "register_tokens", "mask_token"):
        return 0.0, 0.5
    return default_init(key, shape)


def _config(c: dict) -> DiGITConfig:
    return DiGITConfig(embed_dim=c["embed_dim"], depth=c["depth"], heads=c["num_heads"], layer=c["layer"],
                       num_centroids=c["k"])


def _model(fx_case: dict) -> DiGIT:
    model = DiGIT(_config(fx_case["config"])).eval()
    enc = seeded_state_dict(state_manifest(model.encoder), seed=1, init=_init)
    state = {f"encoder.{k}": v for k, v in enc.items()} | {"kmeans.centroids": fx_case["centroids"]}
    model.load_state_dict(DiGITBuilder().convert(state, model.config), strict=True)
    return model.double()


@pytest.fixture(scope="module")
def fixture():
    return torch.load(FIX / "digit.pt", weights_only=True)


@pytest.fixture(scope="module", params=["base", "large_shape"])
def recorded(request, fixture):
    fx = fixture[request.param]
    x01 = F.interpolate(fx["low"].double(), size=(256, 256), mode="bicubic").clamp(0, 1)
    return _model(fx), fx, x01


# --------------------------------------------------------------------------- parity


def test_latents_match_the_reference(recorded):
    model, fx, x01 = recorded
    lat = model.encode_latents(x01[:2] * 2 - 1)
    torch.testing.assert_close(lat.float(), fx["latents"], atol=1e-6, rtol=0)


@pytest.mark.parametrize("size", [256, 224])
def test_ids_equal_the_reference_at_both_input_sizes(recorded, size):
    model, fx, x01 = recorded
    x = x01 if size == 256 else F.interpolate(x01, size=(224, 224), mode="bicubic").clamp(0, 1)
    tok = model.encode(x * 2 - 1)
    want = fx[f"ids{size}"].long()
    assert tok.ids.shape == (4, 256) and tok.meta["grid"] == (16, 16)
    assert torch.equal(tok.ids, want)
    assert want.unique().numel() > 30  # the codebook is data-driven: ids depend on the input


def test_ids_are_the_nearest_centroid_of_the_latents(recorded):
    model, _, x01 = recorded
    lat = model.encode_latents(x01[:1] * 2 - 1)[0]
    brute = torch.cdist(lat, model.kmeans.centroids).argmin(-1)
    assert torch.equal(model.encode(x01[:1] * 2 - 1).ids[0], brute)


@pytest.mark.parametrize("name", ["vitb14_reg4", "vitl14_reg4"])
def test_released_dinov2_manifests_load_strictly(name):
    """DiGIT's DINOv2 (and zoo's dinov2 cards) at the released configs: keys and shapes equal."""
    from zoo.nn.backbones import DINOv2

    expected = {k: (tuple(s), d) for k, (s, d) in json.loads((FIX / "manifests.json").read_text())[name].items()}
    with torch.device("meta"):
        ours = DINOv2(**DINOV2_CONFIGS[name])
    assert_manifest_equal(state_manifest(ours), expected, what=name)


@pytest.mark.parametrize(("card", "backbone", "k"), [("digit.base_8k", "vitb14_reg4", 8192),
                                                      ("digit.large_16k", "vitl14_reg4", 16384)])
def test_cards_build_the_released_shapes(card, backbone, k):
    model = zoo.load(card, pretrained=False, device="meta")
    assert model.codebook_size == k and model.config.block == model.config.depth - 3
    enc = {k_[len("encoder."):]: v for k_, v in state_manifest(model).items() if k_.startswith("encoder.")}
    want = json.loads((FIX / "manifests.json").read_text())[backbone]
    assert_manifest_equal(enc, {k_: (tuple(s), d) for k_, (s, d) in want.items()})
    assert zoo.get_card(card).dependencies == {"backbone": f"dinov2.{backbone}"}


# --------------------------------------------------------------------------- files


def _release(tmp_path: Path, fx_case: dict, with_backbone: bool = True) -> Path:
    model = _model(fx_case).float()
    folder = tmp_path / "digit"
    folder.mkdir()
    np.save(folder / "km_8k.npy", fx_case["centroids"].numpy())
    if with_backbone:
        torch.save({k[len("encoder."):]: v for k, v in model.state_dict().items() if k.startswith("encoder.")},
                   folder / "dinov2_vitb14_reg4_pretrain.pth")
    return folder


def test_a_folder_with_centroids_and_backbone_loads_and_tokenizes(tmp_path, fixture, hub_stand_in, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    fx = fixture["base"]
    c = fx["config"]
    model = zoo.load("digit.base_8k", weights=_release(tmp_path, fx), embed_dim=c["embed_dim"], depth=c["depth"],
                     heads=c["num_heads"])
    assert model.codebook_size == c["k"]  # num_centroids comes from the .npy
    x01 = F.interpolate(fx["low"].double(), size=(256, 256), mode="bicubic").clamp(0, 1)
    ids = model.encode((x01 * 2 - 1).float()).ids
    assert (ids == fx["ids256"].long()).float().mean() > 0.97  # float32 vs the float64 record: near-ties only
    assert hub_stand_in.requests == []


def test_without_the_backbone_file_the_dependency_card_is_asked_for(tmp_path, fixture, hub_stand_in, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(zoo.ZooError, match="dinov2_vitb14_reg4_pretrain.pth.*weights=PATH|off the Hugging Face Hub"):
        zoo.load("digit.base_8k", weights=_release(tmp_path, fixture["base"], with_backbone=False))


@pytest.mark.parametrize(("content", "match"), [
    (lambda p: np.save(p, np.zeros((4,), np.float32)), r"\[K, D\] float centroids"),
    (lambda p: np.save(p, np.zeros((4, 3), np.int64)), r"\[K, D\] float centroids"),
    (lambda p: p.write_bytes(b"not numpy"), "not a readable .npy"),
])
def test_bad_centroid_files_are_named(tmp_path, content, match):
    p = tmp_path / "km_8k.npy"
    content(p)
    torch.save({"cls_token": torch.zeros(1)}, tmp_path / "d.pth")
    with pytest.raises(CheckpointError, match=match):
        DiGITBuilder().read_checkpoint(CheckpointFiles({"km_8k.npy": p, "d.pth": tmp_path / "d.pth"}))


def test_a_backbone_file_that_is_not_dinov2_is_named(tmp_path):
    np.save(tmp_path / "km_8k.npy", np.zeros((4, 3), np.float32))
    torch.save({"encoder.weight": torch.zeros(1)}, tmp_path / "x.pth")
    with pytest.raises(CheckpointError, match="not a DINOv2 checkpoint"):
        DiGITBuilder().read_checkpoint(CheckpointFiles({"km_8k.npy": tmp_path / "km_8k.npy", "x.pth": tmp_path / "x.pth"}))


# --------------------------------------------------------------------------- interface and bad input


@pytest.fixture(scope="module")
def tiny():
    return DiGIT(DiGITConfig(embed_dim=32, depth=3, heads=2, pos_grid=4, layer=1, num_centroids=16,
                             image_size=56, backbone_size=56)).eval()


def test_decode_refuses_and_says_why(tiny):
    tok = tiny.encode(torch.zeros(1, 3, 56, 56))
    with pytest.raises(TokenError, match="understanding-only.*no pixel decoder"):
        tiny.decode(tok)


def test_centroids_of_tokens(tiny):
    tok = tiny.encode(torch.rand(2, 3, 56, 56) * 2 - 1)
    assert torch.equal(tiny.centroids(tok), tiny.kmeans.centroids[tok.ids])
    with pytest.raises(TokenError, match=r"\[0, 16\)"):
        tiny.centroids(torch.tensor([[16]]))


@pytest.mark.parametrize(("images", "err", "match"), [
    (torch.zeros(1, 3, 60, 60), MediaError, "takes 56x56"),
    (torch.zeros(3, 56, 56), MediaError, r"\[B, 3, H, W\]"),
    (torch.zeros(0, 3, 56, 56), MediaError, "no images"),
    (torch.full((1, 3, 56, 56), float("nan")), MediaError, "NaN|finite"),
    (torch.zeros(1, 3, 56, 56, dtype=torch.uint8), zoo.errors.InputTypeError, "float"),
])
def test_bad_images_are_refused_before_compute(tiny, images, err, match):
    with pytest.raises(err, match=match):
        tiny.encode(images)


@pytest.mark.parametrize(("kw", "match"), [
    (dict(layer=0), "layer counts blocks"),
    (dict(layer=13), "layer counts blocks"),
    (dict(image_size=300), "image_size must be"),
    (dict(backbone_size=225), "multiple of patch_size"),
])
def test_bad_configs(kw, match):
    with pytest.raises(ConfigError, match=match):
        DiGITConfig(**kw)


def test_tokens_round_trip_through_zoo_tokenize_format(tiny, tmp_path):
    tok = tiny.encode(torch.rand(2, 3, 56, 56) * 2 - 1)
    assert isinstance(tok, Tokens) and tok.codebook_size == 16 and tok.ids.dtype == torch.long


def test_zoo_tokenize_writes_ids_read_tokens_gives_back(tmp_path, fixture, hub_stand_in, monkeypatch):
    """The dataset path (zoo tokenize / zoo.read_tokens) on a release folder: the ids encode() gives."""
    from PIL import Image

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    fx = fixture["base"]
    c = fx["config"]
    kwargs = dict(weights=str(_release(tmp_path, fx)), embed_dim=c["embed_dim"], depth=c["depth"], heads=c["num_heads"])
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    x01 = F.interpolate(fx["low"][:2], size=(256, 256), mode="bicubic").clamp(0, 1)
    for i, im in enumerate(x01):
        Image.fromarray((im.permute(1, 2, 0).numpy() * 255).round().astype("uint8")).save(imgs / f"{i}.png")
    summary = zoo.tokenize("digit.base_8k", [imgs], tmp_path / "out", workers=0, progress=False, load_kwargs=kwargs)
    assert summary.failed == 0
    batches = list(zoo.read_tokens(tmp_path / "out"))
    ids = torch.cat([b.tokens.ids for b in batches])
    model = zoo.load("digit.base_8k", **kwargs)
    from zoo.media.image import load_images

    want = model.encode(load_images(sorted(imgs.glob("*.png")), size=256)).ids
    assert ids.shape == (2, 256) and torch.equal(ids, want)
