"""TokenFlow against ByteFlow-AI/TokenFlow (reference run from a mirror in /tmp, random weights).

Fixtures (``tests/fixtures/tokenflow/{clipb,siglip}.pt``): the reference ``TokenFlow`` at the
released structure with shrunk widths (teacher width 64, 2 layers; conv ch 32, ch_mult [1]*5 so
the 16x downsampling and the teacher grids are the released ones: 16x16 at 256 px for CLIP with
``infer_interpolate``, 27x27 at 384 px for SigLIP with the conv branch at 432 px), run in float64.
No weights are stored: they are :func:`zoo.testing.weights.seeded_state_dict` over the stored
reference key/shape manifest (seed 1; :func:`reference_state`), except the data-driven 512-code
dual codebook (rows of the features of other images at every scale, shared index; stored in
float16). Stored outputs are subsampled (latents and summed codes every 2nd cell, pixels every
8th/12th, semantic features every 8th row/column) plus full sums.
Patched in the reference: the constructors
that download (``clip.load_clip_vision`` -> ``VisionTransformer`` from config, minus ``proj``;
``SiglipVisionModel.from_pretrained`` -> ``SiglipVisionModel(SiglipVisionConfig(...))``), the
default widths (``get_model_default_params`` embed_dim/heads, Encoder/Decoder ``ch`` and blocks),
and ``transformers.modeling_utils.get_parameter_device/dtype`` (gone in transformers 5).

Tolerances (float64): latents atol 1e-9, ids equal (every position), decode of the reference's
ids (pixels and semantic features) atol 1e-9. ``manifests.json``: the reference's key/shape
manifest of both released configs built on the meta device.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from zoo_plugins.tokenflow.builder import DROPPED_KEYS, TokenFlowBuilder, from_reference
from zoo_plugins.tokenflow.config import TokenFlowConfig
from zoo_plugins.tokenflow.model import TokenFlow

import zoo
from zoo.builders import CheckpointFiles
from zoo.errors import CheckpointError, ConfigError, MediaError, TokenError
from zoo.interfaces import Tokens
from zoo.testing.weights import assert_manifest_equal, default_init, seeded_state_dict, state_manifest

FIX = Path(__file__).resolve().parents[2] / "fixtures" / "tokenflow"
ATOL = 1e-9
SMALL = dict(codebook_size=512, z_channels=32, ch=32, num_res_blocks=1, encoder_ch_mult=[1] * 5,
             decoder_ch_mult=[1] * 5, decoder_ch=32, decoder_num_res_blocks=2, teacher_width=64, teacher_layers=2,
             teacher_heads=2, vqkd_decoder_heads=2)
CASES = {
    "clipb": TokenFlowConfig(**SMALL, teacher="clipb_224", enhanced_decoder=True, vqkd_out_dim=512),
    "siglip": TokenFlowConfig(**SMALL, teacher="siglip_384", enhanced_decoder=False, vqkd_out_dim=1152,
                              teacher_patch_size=14, teacher_image_size=384, vqkd_decoder_grid=27, teacher_intermediate_size=128,
                              image_size=384, scales=[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 14, 17, 22, 27]),
}


def _fixture(case: str) -> dict:
    fx = torch.load(FIX / f"{case}.pt", weights_only=True)
    return dict(fx, ids=fx["ids"].long())


def _init(key: str, shape: tuple[int, ...]) -> tuple[float, float]:
    """The recorded weights' init: :func:`default_init`, with SigLIP's input scaling buffers at 0.5."""
    return (0.5, 0.0) if key.startswith("scaling_layer.") else default_init(key, shape)


def reference_state(fx: dict) -> dict[str, torch.Tensor]:
    """The recorded reference state dict (reference key layout, float32): seeded weights over the
    fixture's manifest and its data-driven dual codebook."""
    man = {k: (tuple(shape), dtype) for k, (shape, dtype) in fx["manifest"].items()}
    state = seeded_state_dict(man, seed=1, init=_init)
    book = fx["codebook"].float()
    state["quantize.embedding_vqkd.weight"], state["quantize.embedding_vqgan.weight"] = book[:, :32], book[:, 32:]
    return state


@pytest.fixture(scope="module", params=sorted(CASES))
def recorded(request):
    fx = _fixture(request.param)
    cfg = CASES[request.param]
    model = TokenFlow(cfg).eval()
    model.load_state_dict(TokenFlowBuilder().convert(reference_state(fx), cfg), strict=True)
    model.double()
    x = F.interpolate(fx["low"].double(), size=(fx["size"], fx["size"]), mode="bicubic").clamp(-1, 1)
    return request.param, model, fx, x


# --------------------------------------------------------------------------- parity


def test_latents_match_the_reference(recorded):
    _, model, fx, x = recorded
    torch.testing.assert_close(model.encode_latents(x)[:, :, ::2, ::2].float(), fx["latents"], atol=1e-6, rtol=0)
    torch.testing.assert_close(model.encode_latents(x), _latents64(model, x), atol=0, rtol=0)


def _latents64(model, x):  # the stages by hand: the public method is the composition
    sem = model.semantic_features(x)
    return torch.cat([sem, model.pixel_features(x, sem.shape[-1])], 1)


def test_ids_equal_the_reference(recorded):
    _, model, fx, x = recorded
    tok = model.encode(x)
    assert tok.ids.shape == fx["ids"].shape
    assert torch.equal(tok.ids, fx["ids"]), f"{int((tok.ids != fx['ids']).sum())} ids differ"
    assert tok.meta["scales"] == model.scales
    assert fx["ids"].unique().numel() > 50  # the codebook is data-driven: many codes in use


def test_summed_codes_match_the_reference(recorded):
    _, model, fx, _ = recorded
    torch.testing.assert_close(model.codes(fx["ids"])[:, :, ::2, ::2].float(), fx["quant"], atol=1e-6, rtol=0)


def test_decode_of_the_reference_ids(recorded):
    _, model, fx, _ = recorded
    pix = model.decode(fx["ids"], clamp=False)
    assert pix.shape[-1] == fx["size"]
    st = pix.shape[-1] // fx["pixels_sub"].shape[-1]
    torch.testing.assert_close(pix[:, :, ::st, ::st], fx["pixels_sub"].double(), atol=1e-6, rtol=0)
    torch.testing.assert_close(pix.sum(dim=(1, 2, 3)), fx["pixels_sum"], atol=ATOL * pix[0].numel(), rtol=0)
    sem = model.decode_semantic(fx["ids"])
    torch.testing.assert_close(sem[:, ::8, ::8], fx["semantic_sub"].double(), atol=1e-6, rtol=0)
    torch.testing.assert_close(sem.sum(dim=(1, 2)), fx["semantic_sum"], atol=ATOL * sem[0].numel(), rtol=0)


def test_prefix_of_whole_scales_decodes(recorded):
    _, model, fx, _ = recorded
    n = sum(s * s for s in model.scales[:3])
    full = model.quantize.decode([fx["ids"][:, :1], fx["ids"][:, 1:1 + model.scales[1] ** 2],
                                  fx["ids"][:, 1 + model.scales[1] ** 2:n]])
    torch.testing.assert_close(model.codes(fx["ids"][:, :n]), full)
    assert model.decode(fx["ids"][:, :n]).shape[-1] == fx["size"]
    with pytest.raises(TokenError, match="whole scales"):
        model.decode(fx["ids"][:, :n + 1])


def test_truncated_tokens_decode_their_prefix(recorded):
    """``Tokens.truncate`` (what ``zoo reconstruct --tokens`` does) decodes the coarse scales only."""
    _, model, fx, _ = recorded
    tok = Tokens(ids=fx["ids"], codebook_size=512, tokenizer="tokenflow")
    n = model.prefix_lengths[2]
    assert model.prefix_lengths[-1] == model.num_tokens == fx["ids"].shape[1]
    torch.testing.assert_close(model.decode(tok.truncate(n)), model.decode(fx["ids"][:, :n]))
    with pytest.raises(TokenError, match="one prefix length"):
        model.decode(tok.truncate(torch.tensor([n, model.prefix_lengths[3]])))


# --------------------------------------------------------------------------- manifests


@pytest.mark.parametrize("card, teacher", [("tokenflow.clipb_32k", "clipb_224"), ("tokenflow.siglip_32k", "siglip_384")])
def test_published_configs_load_the_reference_keys_strictly(card, teacher):
    ref = json.loads((FIX / "manifests.json").read_text())[teacher]
    expected = {k: (tuple(s), "float32") for k, s in ref.items()}
    model = zoo.load(card, pretrained=False, device="meta")
    converted = from_reference({k: v for k, v in expected.items()}, model.config)
    assert_manifest_equal(converted, state_manifest(model), what=card)
    assert model.num_tokens == int(str(zoo.get_card(card).tokens.length).split()[0])  # the card's token count
    assert set(DROPPED_KEYS) <= set(expected)


# --------------------------------------------------------------------------- loading


def _tiny() -> TokenFlow:
    return TokenFlow(CASES["clipb"]).eval()


def test_checkpoint_entries_and_dropped_keys(tmp_path):
    fx = _fixture("clipb")
    state = reference_state(fx)
    state["quantize.codebook_used"] = torch.zeros(131072)
    b = TokenFlowBuilder()
    for entry in ("ema", "model", "state_dict"):
        torch.save({entry: state, "args": "unused"}, tmp_path / "w.pt")
        ck = b.read_checkpoint(CheckpointFiles(paths={"w.pt": tmp_path / "w.pt"}))
        model = _tiny()
        model.load_state_dict(b.convert(ck.state_dict, CASES["clipb"]), strict=True)
    torch.save({"encoder.conv_in.weight": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a TokenFlow checkpoint"):
        b.read_checkpoint(CheckpointFiles(paths={"other.pt": tmp_path / "other.pt"}))


def test_unknown_teacher_is_a_config_error():
    with pytest.raises(ConfigError, match="vitamin_xlarge_256"):
        TokenFlowConfig(teacher="vitamin_xlarge_256")


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("bad, error, match", [
    (torch.zeros(1, 3, 128, 128), MediaError, "256"),
    (torch.full((1, 3, 256, 256), float("nan")), MediaError, "NaN|finite"),
    (torch.zeros(3, 256, 256), MediaError, r"\[B, 3, H, W\]|4-D|rank|dimensions"),
    (torch.zeros(0, 3, 256, 256), MediaError, "no images"),
])
def test_bad_images_are_refused(bad, error, match):
    with pytest.raises(error, match=match):
        _tiny().encode(bad)


def test_bad_tokens_are_refused():
    model = _tiny()
    with pytest.raises(TokenError):
        model.decode(torch.full((1, 5), 10_000))  # out of range (codebook 512), 5 = 1 + 4
    with pytest.raises(TokenError, match="made by"):
        model.decode(Tokens(ids=torch.zeros(1, 5, dtype=torch.long), codebook_size=512, tokenizer="llamagen_vq"))
    with pytest.raises(TokenError, match="codebook of 1024"):
        model.decode(Tokens(ids=torch.zeros(1, 5, dtype=torch.long), codebook_size=1024, tokenizer="tokenflow"))
    with pytest.raises(TokenError):
        model.decode("not tokens")


# --------------------------------------------------------------------------- CLI


def test_zoo_reconstruct_writes_a_coarse_to_fine_grid(tmp_path, monkeypatch):
    """``zoo reconstruct --tokens`` on TokenFlow: one column per whole-scale prefix (the small
    fixture model stands in for the released one; the command path is the same)."""
    from click.testing import CliRunner
    from PIL import Image

    from zoo.cli import cli

    fx = _fixture("clipb")
    model = TokenFlow(CASES["clipb"]).eval()
    model.load_state_dict(TokenFlowBuilder().convert(reference_state(fx), CASES["clipb"]), strict=True)
    monkeypatch.setattr(zoo, "load", lambda *a, **k: model)
    src = tmp_path / "in.png"
    Image.fromarray((torch.rand(64, 80, 3) * 255).byte().numpy()).save(src)
    out = tmp_path / "grid.png"
    counts = ",".join(map(str, model.prefix_lengths[:2] + [model.num_tokens]))
    result = CliRunner().invoke(cli, ["reconstruct", str(src), "--model", "tokenflow.clipb_32k", "--tokens", counts,
                                      "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert Image.open(out).width >= 4 * 256
    bad = CliRunner().invoke(cli, ["reconstruct", str(src), "--model", "tokenflow.clipb_32k", "--tokens", "3",
                                   "--out", str(tmp_path / "bad.png")])
    assert bad.exit_code != 0 and "whole scales" in bad.output


def test_zoo_tokenize_writes_tokenflow_ids_and_prefixes(tmp_path):
    """The dataset path (zoo tokenize / zoo.read_tokens): full ids, and ``tokens=K`` keeps a whole-scale prefix
    that decodes."""
    from PIL import Image

    from zoo.media.image import load_images

    model = _tiny()
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    for i in range(2):
        low = torch.rand(8, 8, 3, generator=torch.Generator().manual_seed(i))
        Image.fromarray((low * 255).byte().numpy()).resize((256, 256)).save(imgs / f"{i}.png")
    want = model.encode(load_images(sorted(imgs.glob("*.png")), size=256)).ids
    k = model.prefix_lengths[2]
    for tokens, out in ((None, "full"), (k, "prefix")):
        summary = zoo.tokenize(model, [imgs], tmp_path / out, workers=0, progress=False, tokens=tokens)
        assert summary.failed == 0
        got = [b.tokens for b in zoo.read_tokens(tmp_path / out)]
        ids = torch.cat([t.ids[:, :int(t.lengths.max())] for t in got])
        assert torch.equal(ids, want[:, :tokens] if tokens else want)
    assert model.decode(ids).shape == (2, 3, 256, 256)
