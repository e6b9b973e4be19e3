"""Small text tokenizers of each published format, trained on the spot (no third-party
vocabulary is ever committed), and release folders laid out like the hub repos.

* :func:`kl3m_like` -- ByteLevel BPE as KL3M publishes it (GPT-2 regex pre-split, ByteLevel
  decoder; ``cased=False`` adds the Lowercase normalizer of the uncased tokenizers);
* :func:`superbpe_like` -- ByteLevel BPE without whitespace pre-splitting, so merges cross spaces
  and tokens span words (SuperBPE's superword tokens);
* :func:`sentencepiece_model` -- a real SentencePiece ``.model`` (Unigram or BPE), by ``sentencepiece``;
* :func:`seeded_llama` -- a tiny transformers Llama with weights regenerated from key names;
* :func:`write_release` -- ``tokenizer.json`` + ``tokenizer_config.json`` + ``special_tokens_map.json``.

The settings follow the tokenizer families' documented designs; the real files' exact
normalizer/pre-tokenizer could not be read here (hub unreachable).

Example:
    >>> tok = kl3m_like(vocab_size=300)
    >>> tok.decode(tok.encode("The Court held").ids)
    'The Court held'
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

__all__ = ["CORPUS", "SPECIALS", "seeded_llama", "kl3m_like", "superbpe_like", "sentencepiece_model", "write_release"]

CORPUS = [
    "The Court held that the agreement was void for lack of consideration.",
    "Section 2(a) of the Act applies to every registered investment company.",
    "By the way, I am a fan of the Milky Way.",
    "the quick brown fox jumps over the lazy dog; the lazy dog sleeps.",
    "Revenue grew 12.5% to $3,400 million in fiscal 2024, net of taxes.",
    "café naïve résumé: déjà vu über straße",
    "of the of the in the to the and the for the on the at the",
]
SPECIALS = ["<|start|>", "<|end|>", "<|pad|>"]


def _bpe(vocab_size: int, *, use_regex: bool, lowercase: bool) -> Any:
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers  # noqa: PLC0415

    tok = Tokenizer(models.BPE())
    if lowercase:
        tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=use_regex)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIALS, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(CORPUS * 4, trainer)
    return tok


def kl3m_like(vocab_size: int = 400, cased: bool = True) -> Any:
    """A ByteLevel BPE ``tokenizers.Tokenizer`` with KL3M's settings (see the module docstring)."""
    return _bpe(vocab_size, use_regex=True, lowercase=not cased)


def superbpe_like(vocab_size: int = 400) -> Any:
    """A ByteLevel BPE whose merges may cross spaces (superword tokens such as ``'Ġof Ġthe'``)."""
    return _bpe(vocab_size, use_regex=False, lowercase=False)


def sentencepiece_model(path: str | Path, vocab_size: int = 320, model_type: str = "unigram", lossless: bool = True) -> Path:
    """Train a SentencePiece ``.model`` on :data:`CORPUS` into ``path`` (byte fallback on).

    ``lossless=True`` keeps text as it is (identity normalisation, spaces kept); ``False`` uses
    SentencePiece's defaults (NFKC, runs of spaces collapsed), as many released models do."""
    import sentencepiece as spm  # noqa: PLC0415

    model = io.BytesIO()
    extra = {"normalization_rule_name": "identity", "remove_extra_whitespaces": False} if lossless else {}
    spm.SentencePieceTrainer.train(sentence_iterator=iter(CORPUS * 4), model_writer=model, vocab_size=vocab_size,
                                   model_type=model_type, byte_fallback=True, character_coverage=1.0, minloglevel=2,
                                   hard_vocab_limit=False, **extra)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(model.getvalue())
    return path


def write_release(folder: str | Path, tokenizer: Any, *, bos: str = "<|start|>", eos: str = "<|end|>", pad: str = "<|pad|>") -> Path:
    """Write a hub-style tokenizer release (the three files KL3M and SuperBPE repos publish).

    Example:
        >>> import tempfile
        >>> d = write_release(tempfile.mkdtemp(), kl3m_like(300))
        >>> sorted(p.name for p in d.iterdir())
        ['special_tokens_map.json', 'tokenizer.json', 'tokenizer_config.json']
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer.save(str(folder / "tokenizer.json"))
    special = {"bos_token": bos, "eos_token": eos, "pad_token": pad}
    (folder / "special_tokens_map.json").write_text(json.dumps(special))
    (folder / "tokenizer_config.json").write_text(json.dumps({**special, "model_max_length": 8192,
                                                              "tokenizer_class": "PreTrainedTokenizerFast"}))
    return folder


def _spread_init(key: str, shape: tuple[int, ...]) -> tuple[float, float]:
    """(mean, std) per weight: norms 1, embeddings and head spread out (next-token distributions far from uniform)."""
    if key.endswith("norm.weight"):
        return 1.0, 0.0
    return 0.0, 0.5 if ("lm_head" in key or "embed" in key) else 0.1


def seeded_llama(config: dict[str, Any]) -> Any:
    """A ``transformers.LlamaForCausalLM`` built from ``config`` (LlamaConfig fields) with weights
    from :func:`zoo.testing.weights.seeded_state_dict` (the same on every machine), in eval mode."""
    from zoo.compat.torchvision import ensure_torchvision  # noqa: PLC0415

    ensure_torchvision()
    from transformers import LlamaConfig, LlamaForCausalLM  # noqa: PLC0415

    from zoo.testing.weights import seeded_state_dict, state_manifest  # noqa: PLC0415

    lm = LlamaForCausalLM(LlamaConfig(**config)).eval()
    lm.load_state_dict(seeded_state_dict(state_manifest(lm), init=_spread_init), strict=True)
    return lm
