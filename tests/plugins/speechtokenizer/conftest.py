"""Zoo SpeechTokenizer models rebuilt from the committed reference manifests with the recorder's
seeded weights and calibrated codebooks (release key layout, converted, loaded strictly)."""

from __future__ import annotations

from pathlib import Path

import torch

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "speechtokenizer"


def load_fixture(name: str) -> tuple[dict[str, torch.Tensor], dict]:
    from safetensors import safe_open

    with safe_open(str(FIXTURES / f"{name}.safetensors"), framework="pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}, dict(f.metadata() or {})


def config_of(name: str) -> dict:
    from zoo_plugins.speechtokenizer.testing import PUBLISHED, SMALL

    return {**SMALL, **PUBLISHED}[name]


def release_state_dict(name: str) -> dict[str, torch.Tensor]:
    """The recorder's release-layout weights: seeded, codebooks calibrated with zoo's encoder."""
    from zoo_plugins.speechtokenizer.builder import SpeechTokenizerBuilder
    from zoo_plugins.speechtokenizer.config import SpeechTokenizerConfig
    from zoo_plugins.speechtokenizer.testing import calibrated_codebooks, codebook_key, parity_state_dict

    from zoo.testing.weights import load_manifest

    cfg = config_of(name)
    sd = parity_state_dict(load_manifest(FIXTURES / f"manifest_{name}.json"), seed=0)
    builder = SpeechTokenizerBuilder()
    config = SpeechTokenizerConfig(**cfg)
    model = builder.build(config).eval()
    model.load_state_dict(builder.convert(sd, config), strict=True)
    with torch.inference_mode():
        books = calibrated_codebooks(lambda w: model.latents(w, chunk_seconds=0), cfg["codebook_size"], cfg["n_q"], seed=0)
    for level, book in enumerate(books):
        sd[codebook_key(level)] = book
    return sd


def build_parity_model(name: str, **overrides):
    from zoo_plugins.speechtokenizer.builder import SpeechTokenizerBuilder
    from zoo_plugins.speechtokenizer.config import SpeechTokenizerConfig

    builder = SpeechTokenizerBuilder()
    config = SpeechTokenizerConfig(**{**config_of(name), **overrides})
    model = builder.build(config).eval()
    model.load_state_dict(builder.convert(release_state_dict(name), config), strict=True)
    return model
