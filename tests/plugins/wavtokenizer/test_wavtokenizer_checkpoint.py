"""Loading official-format Lightning checkpoints: weights_only, key filtering, weight-norm folding,
config pairing, and the cards' pairing against the published manifests."""

from __future__ import annotations

import pathlib
from pathlib import Path

import pytest
import torch

from zoo.builders import CheckpointFiles
from zoo.errors import CheckpointError, ConfigError
from zoo.testing.weights import load_manifest
from zoo_plugins.wavtokenizer.builder import WavTokenizerBuilder
from zoo_plugins.wavtokenizer.checkpoint import convert_state_dict, fold_weight_norm, load_ckpt
from zoo_plugins.wavtokenizer.config import WavTokenizerConfig, config_from_state_dict, config_from_yaml
from zoo_plugins.wavtokenizer.model import WavTokenizer
from zoo_plugins.wavtokenizer.testing import test_signal

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "wavtokenizer"
SMALL = dict(n_filters=4, dimension=16, codebook_size=64, backbone_dim=64, intermediate_dim=96, num_layers=2)
SIDE_EFFECTS: list[str] = []


class FakeAttributeDict(dict):
    """Stands in for Lightning's AttributeDict: a class torch's allowlist does not know."""

    def __setstate__(self, state):  # would run if the checkpoint were unpickled unsafely
        SIDE_EFFECTS.append("setstate")


def to_official(model: WavTokenizer) -> dict[str, torch.Tensor]:
    """zoo state dict -> the release layout (weight-norm pairs, prefixes, codebook EMA state)."""
    out = {}
    for key, value in model.state_dict().items():
        if key.startswith("encoder."):
            base = "feature_extractor.encodec." + key
            if "lstm" in key:
                out[base] = value.clone()
                continue
            head, leaf = base.rsplit(".", 1)
            head = head + ".conv.conv"
            if leaf == "weight":
                out[head + ".weight_v"] = value.clone() * 3.0  # any scale: g restores it
                out[head + ".weight_g"] = value.flatten(1).norm(dim=1).view(-1, 1, 1)
            else:
                out[head + "." + leaf] = value.clone()
        elif key == "quantizer.embed":
            cb = "feature_extractor.encodec.quantizer.vq.layers.0._codebook."
            out[cb + "embed"] = value.clone()
            out[cb + "embed_avg"] = value.clone()
            out[cb + "cluster_size"] = torch.ones(value.shape[0])
            out[cb + "inited"] = torch.ones(1)
        else:
            out[key] = value.clone()
    out["head.istft.window"] = torch.hann_window(model.head.n_fft)
    out["feature_extractor.encodec.decoder.model.0.conv.conv.weight_v"] = torch.zeros(3, 3, 3)
    out["multiperioddisc.discriminators.0.convs.0.weight"] = torch.zeros(2, 2)
    out["dac.something.weight"] = torch.zeros(1)
    return out


@pytest.fixture(scope="module")
def small():
    torch.manual_seed(0)
    model = WavTokenizer(WavTokenizerConfig(**SMALL)).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
        model.quantizer.embed.normal_()
    return model


def save_lightning_ckpt(path: Path, state: dict) -> Path:
    torch.save({
        "epoch": 3, "global_step": 1000, "pytorch-lightning_version": "1.8.6",
        "state_dict": state,
        "hyper_parameters": FakeAttributeDict(sample_rate=24000, resume=False),
        "callbacks": {"ModelCheckpoint": {"dirpath": pathlib.PurePosixPath("/x/ckpt"), "best_model_score": torch.tensor(0.5)}},
        "optimizer_states": [{"state": {}, "param_groups": [{"lr": 2e-4}]}],
    }, path)
    return path


def test_lightning_ckpt_loads_weights_only_without_running_its_classes(small, tmp_path):
    path = save_lightning_ckpt(tmp_path / "wt.ckpt", to_official(small))
    SIDE_EFFECTS.clear()
    ckpt = load_ckpt(path)
    assert SIDE_EFFECTS == [], "a class named by the checkpoint ran code"
    hparams = ckpt["hyper_parameters"]
    assert hparams._zoo_inert.endswith("FakeAttributeDict") and dict(hparams) == {"sample_rate": 24000, "resume": False}
    assert "state_dict" in ckpt


def test_builder_end_to_end_matches_source_model(small, tmp_path):
    path = save_lightning_ckpt(tmp_path / "WavTokenizer_small.ckpt", to_official(small))
    builder = WavTokenizerBuilder()
    ckpt = builder.read_checkpoint(CheckpointFiles({"WavTokenizer_small.ckpt": path}))
    assert "ratios" not in ckpt.config and ckpt.extra["sniffed"]["ratios"] == [8, 5, 4, 2]
    assert ckpt.config["n_filters"] == SMALL["n_filters"] and ckpt.config["backbone_dim"] == SMALL["backbone_dim"]
    config = WavTokenizerConfig(**{**SMALL, **ckpt.config})
    model = builder.build(config).eval()
    state = builder.convert(ckpt.state_dict, config)
    model.load_state_dict(state, strict=True)  # decoder, discriminators, EMA state, window dropped
    wav = test_signal(4000, seed=1)
    assert torch.equal(model.encode_ids(wav), small.encode_ids(wav))
    ids = small.encode_ids(wav)
    assert torch.allclose(model.decode_ids(ids), small.decode_ids(ids), atol=1e-5)


def test_weight_norm_fold_new_style_names(small):
    official = to_official(small)
    renamed = {}
    for k, v in official.items():
        k = k.replace(".weight_g", ".parametrizations.weight.original0").replace(".weight_v", ".parametrizations.weight.original1")
        renamed[k] = v
    a, b = convert_state_dict(official), convert_state_dict(renamed)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    g, v = torch.rand(5, 1, 1), torch.randn(5, 3, 7)
    assert torch.allclose(fold_weight_norm(g, v), torch._weight_norm(v, g, 0), atol=1e-6)


@pytest.mark.parametrize("mutate, message", [
    (lambda sd: sd.__setitem__("feature_extractor.encodec.quantizer.vq.layers.0._codebook.inited", torch.zeros(1)), "never initialised"),
    (lambda sd: sd.pop("feature_extractor.encodec.quantizer.vq.layers.0._codebook.embed"), "missing codebook"),
    (lambda sd: sd.__setitem__("feature_extractor.encodec.quantizer.vq.layers.1._codebook.embed", torch.zeros(2, 2)), "single-codebook"),
    (lambda sd: sd.__setitem__("head.istft.window", torch.ones(1280)), "Hann"),
    (lambda sd: sd.pop("feature_extractor.encodec.encoder.model.0.conv.conv.weight_g"), "incomplete"),
])
def test_converter_errors_name_the_problem(small, mutate, message):
    sd = to_official(small)
    mutate(sd)
    with pytest.raises(CheckpointError, match=message):
        convert_state_dict(sd)


def test_wrong_yaml_pairing_is_refused(small, tmp_path):
    path = save_lightning_ckpt(tmp_path / "wt_320.ckpt", to_official(small))
    frame40 = {"model": {"init_args": {
        "feature_extractor": {"init_args": {"dowmsamples": [6, 5, 5, 4], "vq_bins": 4096, "num_quantizers": 1}},
        "head": {"init_args": {"n_fft": 2400, "hop_length": 600, "padding": "same"}}}}}
    import yaml

    (tmp_path / "frame40.yaml").write_text(yaml.safe_dump(frame40))
    files = CheckpointFiles({"wt_320.ckpt": path, "frame40.yaml": tmp_path / "frame40.yaml"})
    with pytest.raises(ConfigError, match="frame40"):
        WavTokenizerBuilder().read_checkpoint(files)
    # a user override that contradicts the weights fails before any shape error
    config = WavTokenizerConfig(**{**SMALL, "ratios": [6, 5, 5, 4], "n_fft": 2400, "hop_length": 600})
    with pytest.raises(ConfigError, match="does not fit"):
        WavTokenizerBuilder().convert(to_official(small), config)


def test_config_validation_names_the_fix():
    with pytest.raises(ConfigError, match="hop"):
        WavTokenizerConfig(ratios=[6, 5, 5, 4], n_fft=1280, hop_length=320).validate()
    assert config_from_yaml({"model": {"init_args": {"head": {"init_args": {"n_fft": 2400, "hop_length": 600}}}}}) == {
        "n_fft": 2400, "hop_length": 600}


def _card_config(card) -> WavTokenizerConfig:
    return WavTokenizerConfig(**card.config)


@pytest.mark.parametrize("manifest", ["frame75", "frame40"])
def test_cards_pair_with_published_manifests(manifest):
    """Every card's config builds a model whose keys/shapes take the published checkpoint strictly."""
    from zoo.catalogue import load_catalogue
    from zoo.testing.weights import assert_manifest_equal, state_manifest

    shapes = load_manifest(FIXTURES / f"manifest_{manifest}.json")
    meta_sd = {k: torch.empty(s, device="meta") for k, (s, _) in shapes.items()}
    sniffed = config_from_state_dict(meta_sd)
    rate = {"frame75": "75/s", "frame40": "40/s"}[manifest]
    cards = [c for c in load_catalogue() if c.family == "wavtokenizer" and c.tokens.length == rate]
    assert cards, f"no wavtokenizer card for {rate}"
    for card in cards:
        config = _card_config(card).validate()
        assert {k: getattr(config, k) for k in sniffed} == sniffed, card.name
        assert manifest in config.yaml, f"{card.name} names yaml {config.yaml!r}"
        with torch.device("meta"):
            model = WavTokenizer(config)
        zeros = {k: torch.zeros(s) if k.endswith(("inited", "window")) else torch.empty(s, device="meta") for k, (s, _) in shapes.items()}
        zeros["feature_extractor.encodec.quantizer.vq.layers.0._codebook.inited"] = torch.ones(1)
        zeros["head.istft.window"] = torch.hann_window(shapes["head.istft.window"][0][0])
        converted = convert_state_dict(zeros)
        assert_manifest_equal(state_manifest(converted), state_manifest(model), what=card.name)


def test_zoo_load_from_a_local_release_file(small, tmp_path):
    """zoo.load(card, weights=ckpt): card pairing + widths from the weights; wrong card is refused."""
    import zoo

    path = save_lightning_ckpt(tmp_path / "WavTokenizer_small_320_24k_4096.ckpt", to_official(small))
    model = zoo.load("wavtokenizer.small_75", weights=path, attn_backend="math")
    assert model.card.name == "wavtokenizer.small_75" and model.sample_rate == 24000 and model.frame_rate == 75
    wav = test_signal(3000, seed=4)
    tokens = model.encode(wav, 24000)
    assert torch.equal(tokens.ids, small.encode_ids(wav)) and tokens.codebook_size == 64
    assert tokens.tokenizer == "wavtokenizer.small_75"
    assert torch.allclose(model.decode(tokens), small.decode_ids(tokens.ids), atol=1e-5)
    with pytest.raises(ConfigError, match="does not fit"):
        zoo.load("wavtokenizer.small_40", weights=path)


def test_cli_reconstruct_writes_24khz_audio(small, tmp_path):
    """`zoo reconstruct in.wav --model wavtokenizer.small_75 --weights CKPT --out out.wav` (stereo 16 kHz in)."""
    from click.testing import CliRunner

    from zoo.cli import cli
    from zoo.media.audio import load_audio, save_audio

    ckpt = save_lightning_ckpt(tmp_path / "WavTokenizer_small_320_24k_4096.ckpt", to_official(small))
    save_audio(tmp_path / "in.wav", test_signal(8000, seed=9, sample_rate=16000, channels=2), 16000)
    result = CliRunner().invoke(cli, ["reconstruct", str(tmp_path / "in.wav"), "--model", "wavtokenizer.small_75",
                                      "--weights", str(ckpt), "--out", str(tmp_path / "out.wav")])
    assert result.exit_code == 0, result.output
    wav, sr = load_audio(tmp_path / "out.wav")
    assert sr == 24000 and wav.shape[0] == 1 and abs(wav.shape[-1] - 12000) < 320
