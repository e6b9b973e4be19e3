"""A second, independent reference: zoo's WavTokenizer against transformers' port (WavTokenizerModel).

zoo's random weights (with a codebook calibrated on its own encoder frames, so ids depend on the
input) are converted to transformers' layout -- weight norm re-split as ``g = |w|``, ``v = w``,
``head.out`` -> ``head.linear``, the codebook into the EMA codebook's buffers -- and loaded
strictly; both then encode and decode the same audio. Needs the ``zoo[transformers]`` extra
(part of ``dev``; CI installs it).
"""

from __future__ import annotations

import re

import pytest
import torch

pytest.importorskip("transformers", reason="the transformers cross-check needs the zoo[transformers] extra (in dev)")

from zoo.compat.torchvision import ensure_torchvision  # noqa: E402
from zoo_plugins.wavtokenizer.config import WavTokenizerConfig  # noqa: E402
from zoo_plugins.wavtokenizer.model import WavTokenizer  # noqa: E402
from zoo_plugins.wavtokenizer.testing import calibrated_codebook  # noqa: E402
from zoo_plugins.wavtokenizer.testing import test_signal as make_signal  # noqa: E402

ensure_torchvision()
transformers = pytest.importorskip("transformers")
if not hasattr(transformers, "WavTokenizerModel"):
    pytest.skip(f"transformers {transformers.__version__} has no WavTokenizerModel (added in 5.24.0)", allow_module_level=True)

TINY = {"n_filters": 4, "dimension": 16, "codebook_size": 64, "backbone_dim": 64, "intermediate_dim": 96, "num_layers": 2}
RATES = {"frame75": {"ratios": [8, 5, 4, 2], "n_fft": 1280, "hop_length": 320},
         "frame40": {"ratios": [6, 5, 5, 4], "n_fft": 2400, "hop_length": 600}}


def to_transformers(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """zoo WavTokenizer state (weight norm folded) -> transformers WavTokenizerModel state."""
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        m = re.fullmatch(r"encoder\.model\.(\d+)\.(.*)", key)
        if m:
            layer, rest = m.groups()
            if rest.startswith("lstm."):
                out[f"encoder_model.encoder.layers.{layer}.{rest}"] = value
                continue
            sub, leaf = rest.rsplit(".", 1) if "." in rest else ("", rest)
            base = f"encoder_model.encoder.layers.{layer}.{sub + '.' if sub else ''}conv"
            if leaf == "bias":
                out[f"{base}.bias"] = value
            else:
                out[f"{base}.parametrizations.weight.original0"] = value.flatten(1).norm(dim=1).view(-1, 1, 1)
                out[f"{base}.parametrizations.weight.original1"] = value
        elif key == "quantizer.embed":
            prefix = "encoder_model.quantizer.codebook."
            out[prefix + "embed"] = value
            out[prefix + "embed_avg"] = value.clone()
            out[prefix + "cluster_size"] = torch.ones(value.shape[0])
            out[prefix + "inited"] = torch.ones(1)
        elif key.startswith("head.out."):
            out[key.replace("head.out.", "head.linear.")] = value
        else:
            out[key] = value
    return out


def build_pair(rate: str, seed: int = 0):
    torch.manual_seed(seed)
    cfg = WavTokenizerConfig(**TINY, **RATES[rate])
    zoo_model = WavTokenizer(cfg).eval()
    with torch.no_grad():
        for p in zoo_model.parameters():  # bigger than the default init, so every stage moves the signal
            p.add_(torch.randn_like(p) * 0.02)
        zoo_model.quantizer.embed.copy_(calibrated_codebook(lambda w: zoo_model.latents(w), cfg.codebook_size, seed=seed))
    hf_cfg = transformers.WavTokenizerConfig(
        sampling_rate=cfg.sample_rate, num_filters=cfg.n_filters, upsampling_ratios=list(cfg.ratios),
        num_lstm_layers=cfg.lstm_layers, hidden_size=cfg.dimension, codebook_dim=cfg.dimension,
        codebook_size=cfg.codebook_size, decoder_hidden_size=cfg.backbone_dim,
        decoder_intermediate_size=cfg.intermediate_dim, decoder_num_layers=cfg.num_layers,
        adanorm_num_embeddings=cfg.adanorm_num_embeddings)
    hf_model = transformers.WavTokenizerModel(hf_cfg).eval()
    assert hf_cfg.n_fft == cfg.n_fft and hf_cfg.hop_length == cfg.hop_length
    missing, unexpected = hf_model.load_state_dict(to_transformers(zoo_model.state_dict()), strict=True), []
    assert not unexpected and not missing.missing_keys and not missing.unexpected_keys
    return zoo_model, hf_model


@pytest.mark.parametrize("rate", sorted(RATES))
def test_zoo_and_transformers_agree_on_converted_random_weights(rate):
    zoo_model, hf_model = build_pair(rate)
    wav = make_signal(3 * zoo_model.hop * 7 + 11, seed=3)  # [1, L], not a multiple of the hop
    tokens = zoo_model.encode(wav, 24000)
    with torch.no_grad():
        ref_codes = hf_model.encode(wav[None]).audio_codes  # [1, 1, T]
    assert ref_codes.unique().numel() > 4, "ids must depend on the input (calibrated codebook)"
    assert torch.equal(tokens.ids, ref_codes[:, 0])
    with torch.no_grad():
        ref_audio = hf_model.decode(ref_codes).audio_values
    audio = zoo_model.decode(tokens)
    assert audio.shape[-1] == ref_audio.shape[-1]
    scale = float(ref_audio.abs().max())
    torch.testing.assert_close(audio.reshape(ref_audio.shape), ref_audio, atol=1e-6 * max(scale, 1.0), rtol=0)  # observed ~7e-8


def test_zoo_latents_feed_transformers_decoder_identically():
    """Decode of arbitrary ids (not only the encoder's): the Vocos backbone and ISTFT head agree."""
    zoo_model, hf_model = build_pair("frame75", seed=1)
    ids = torch.randint(0, zoo_model.codebook_size, (2, 40), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ref = hf_model.decode(ids[:, None]).audio_values
    out = zoo_model.decode(ids)
    torch.testing.assert_close(out.reshape(ref.shape), ref, atol=1e-6, rtol=0)
