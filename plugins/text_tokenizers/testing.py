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

__all__ = ["CORPUS", "TARGET_CORPUS", "SPECIALS", "HashVectors", "bpe_on", "seeded_llama", "kl3m_like", "superbpe_like", "sentencepiece_model", "write_release"]

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
TARGET_CORPUS = [  # a second language for tokenizer transfer
    "Das Gericht entschied, dass der Vertrag mangels Gegenleistung nichtig war.",
    "Abschnitt 2(a) des Gesetzes gilt für jede registrierte Investmentgesellschaft.",
    "der schnelle braune Fuchs springt über den faulen Hund; der faule Hund schläft.",
    "Der Umsatz wuchs im Geschäftsjahr 2024 um 12,5 % auf 3.400 Millionen Dollar.",
    "die der das und für von mit auf dem den des",
]
DICTIONARY = [("the", "der"), ("the", "die"), ("court", "gericht"), ("contract", "vertrag"), ("section", "abschnitt"),
              ("quick", "schnelle"), ("brown", "braune"), ("fox", "fuchs"), ("lazy", "faulen"), ("dog", "hund"),
              ("revenue", "umsatz"), ("of", "des"), ("and", "und"), ("for", "für")]


def bpe_on(corpus: list[str], vocab_size: int = 400) -> Any:
    """A KL3M-style ByteLevel BPE trained on ``corpus``."""
    return _bpe(vocab_size, use_regex=True, lowercase=False, corpus=corpus)


class HashVectors:
    """A stand-in fastText model: a word's vector is the mean of seeded random vectors of its
    character 3- to 5-grams (with ``<`` ``>`` boundaries), so words that share pieces are close;
    ``get_word_id`` knows ``words``; the empty string has the zero vector (as in fastText)."""

    def __init__(self, words: list[str], dim: int = 16, seed: int = 0):
        self.words, self.dim, self.seed = list(words), dim, seed
        self._ids = {w: i for i, w in enumerate(self.words)}

    def get_dimension(self) -> int:
        return self.dim

    def get_word_id(self, word: str) -> int:
        return self._ids.get(word, -1)

    def get_words(self, include_freq: bool = False, on_unicode_error: str = "strict"):
        return (self.words, [1] * len(self.words)) if include_freq else self.words

    def get_word_vector(self, word: str):
        import hashlib  # noqa: PLC0415

        import numpy as np  # noqa: PLC0415

        if not word:
            return np.zeros(self.dim, dtype=np.float32)
        w = f"<{word}>"
        grams = [w[i : i + n] for n in (3, 4, 5) for i in range(len(w) - n + 1)] or [w]
        vecs = [np.random.RandomState(int(hashlib.sha1(f"{self.seed}:{g}".encode()).hexdigest()[:8], 16)).randn(self.dim)
                for g in grams]
        return np.mean(vecs, 0).astype(np.float32)


def _bpe(vocab_size: int, *, use_regex: bool, lowercase: bool, corpus: list[str] | None = None) -> Any:
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers  # noqa: PLC0415

    tok = Tokenizer(models.BPE())
    if lowercase:
        tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=use_regex)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIALS, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator((corpus or CORPUS) * 4, trainer)
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
