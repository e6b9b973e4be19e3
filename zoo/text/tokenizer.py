"""Text tokenizers behind zoo's tokenizer interface: ``encode(texts) -> Tokens``,
``decode(tokens) -> list[str]``, byte offsets of every token, round-trip checks.

Two file formats, each run by its own library (zoo never re-implements a tokenizer):
``tokenizer.json`` through HF ``tokenizers`` and SentencePiece ``.model`` files through
``sentencepiece``. :class:`TextTokenizer` is what ``zoo.load`` returns for a text tokenizer card;
:meth:`TextTokenizer.from_file` wraps any such file directly.

Example:
    >>> from tokenizers import Tokenizer, models, pre_tokenizers, decoders, trainers
    >>> tok = Tokenizer(models.BPE()); tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    >>> tok.decoder = decoders.ByteLevel()
    >>> tok.train_from_iterator(["low lower lowest"] * 10, trainers.BpeTrainer(vocab_size=270, show_progress=False,
    ...                         initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    >>> text = TextTokenizer(tok)
    >>> tokens = text.encode(["lower", "low é"], return_offsets=True)
    >>> tokens.lengths.tolist(), text.decode(tokens)
    ([3, 4], ['lower', 'low é'])
    >>> tokens.meta["offsets"][1].tolist()      # byte spans: 'é' is two byte-level tokens of one byte each
    [[0, 3], [3, 4], [4, 5], [5, 6]]
"""

from __future__ import annotations

import json
from functools import cached_property
from itertools import chain
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from zoo.errors import CheckpointError, InputError, InputTypeError, TokenError
from zoo.interfaces import Tokens
from zoo.model import ZooModel

__all__ = ["TextTokenizer", "as_texts", "special_token_names", "PROBE_TEXTS"]

_chain = chain.from_iterable

#: Strings :attr:`TextTokenizer.lossless` round-trips: case, runs of spaces, tabs and newlines,
#: NFKC-sensitive characters (ligature, circled digit, full-width letter), accents, CJK, emoji.
PROBE_TEXTS = ("Hello World", "  two  spaces\tand\ttabs\n\nnewlines ", "ﬁne ① Ａ", "café naïve", "日本語のテキスト", "emoji 🙂!")


def as_texts(texts: str | Sequence[str]) -> list[str]:
    """``texts`` as a list of ``str`` (one string is a batch of one); anything else is refused.

    Example:
        >>> as_texts("a"), as_texts(("a", "b"))
        (['a'], ['a', 'b'])
    """
    if isinstance(texts, str):
        return [texts]
    if isinstance(texts, (bytes, bytearray)):
        raise InputTypeError("texts must be str, not bytes: decode them first (bytes.decode('utf-8'))")
    if not isinstance(texts, Sequence):
        raise InputTypeError(f"texts must be a string or a list of strings, got {type(texts).__name__}")
    out = list(texts)
    if not out:
        raise InputError("no texts given (an empty batch): pass a string or a non-empty list of strings")
    if set(map(type, out)) != {str}:  # one C-level pass; the loop below names the first non-str
        for i, t in enumerate(out):
            if not isinstance(t, str):
                raise InputTypeError(f"text {i} is a {type(t).__name__}, not a str")
    return out


def _padded(ids: list[list[int]], pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Ragged id lists -> right-padded ``[B, N]`` long tensor and ``[B]`` lengths.

    One C-level pass converts the ids (``np.fromiter`` over the chained lists); lengths, total and
    width come from Python's builtins, and padding is one masked store (no padded Python lists).

    Example:
        >>> ids, lengths = _padded([[5, 6, 7], [8]], pad=0)
        >>> ids.tolist(), lengths.tolist()
        ([[5, 6, 7], [8, 0, 0]], [3, 1])
    """
    n = len(ids)
    lens = list(map(len, ids))
    total, width = sum(lens), max(lens, default=0)
    flat = np.fromiter(_chain(ids), dtype=np.int64, count=total)
    lengths = np.array(lens, dtype=np.int64)
    if total == width * n:
        out = flat.reshape(n, width)
    else:
        out = np.full((n, width), pad, dtype=np.int64)
        out[np.arange(width) < lengths[:, None]] = flat
    return torch.from_numpy(out), torch.from_numpy(lengths)


def _byte_offsets(text: str, offsets: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """Character offsets into ``text`` -> byte offsets into its UTF-8 encoding."""
    if text.isascii():
        return list(offsets)
    ends = [0]
    for ch in text:
        ends.append(ends[-1] + len(ch.encode("utf-8")))
    return [(ends[a], ends[b]) for a, b in offsets]


class _HFBackend:
    """A ``tokenizers.Tokenizer`` (``tokenizer.json``)."""

    format = "tokenizer.json"

    def __init__(self, tokenizer: Any, special: dict[str, str | None] | None = None):
        self.tok = tokenizer
        self.vocab_size = tokenizer.get_vocab_size(with_added_tokens=True)
        special = special or {}
        spec = json.loads(tokenizer.to_str())
        self.special_ids = {t["id"] for t in spec.get("added_tokens", []) if t.get("special")}
        self.model_type = (spec.get("model") or {}).get("type", "?")

        def find(role: str, guesses: tuple[str, ...]) -> int | None:
            names = (special.get(role),) if special.get(role) else guesses
            for name in names:
                idx = tokenizer.token_to_id(name) if name else None
                if idx is not None:
                    return idx
            return None

        self.bos_id = find("bos_token", ("<s>", "<|begin_of_text|>", "<|endoftext|>", "<bos>"))
        self.eos_id = find("eos_token", ("</s>", "<|end_of_text|>", "<|endoftext|>", "<eos>"))
        self.pad_id = find("pad_token", ("<pad>", "<|pad|>"))

    def encode(self, texts: list[str], add_special_tokens: bool, offsets: bool) -> tuple[list[list[int]], list[Any] | None]:
        encs = self.tok.encode_batch_fast(texts, add_special_tokens=add_special_tokens) if not offsets else \
            self.tok.encode_batch(texts, add_special_tokens=add_special_tokens)
        ids = [e.ids for e in encs]
        return ids, ([_byte_offsets(t, e.offsets) for t, e in zip(texts, encs)] if offsets else None)

    def decode(self, ids: list[list[int]], skip_special_tokens: bool) -> list[str]:
        return self.tok.decode_batch(ids, skip_special_tokens=skip_special_tokens)

    def token_bytes(self) -> list[bytes | None]:
        from zoo.text.vocab import token_bytes_table

        return token_bytes_table(self.tok)


class _SPBackend:
    """A ``sentencepiece.SentencePieceProcessor`` (``.model`` file)."""

    format = "sentencepiece"

    def __init__(self, processor: Any):
        self.sp = processor
        self.vocab_size = processor.get_piece_size()
        self.special_ids = {i for i in range(self.vocab_size) if processor.is_control(i)}
        self.model_type = "SentencePiece"
        self.bos_id = processor.bos_id() if processor.bos_id() >= 0 else None
        self.eos_id = processor.eos_id() if processor.eos_id() >= 0 else None
        self.pad_id = processor.pad_id() if processor.pad_id() >= 0 else None

    def encode(self, texts: list[str], add_special_tokens: bool, offsets: bool) -> tuple[list[list[int]], list[Any] | None]:
        extra = {"add_bos": True, "add_eos": True} if add_special_tokens else {}
        if not offsets:
            return self.sp.encode(texts, **extra), None
        ids, offs = [], []
        for text in texts:
            proto = self.sp.encode(text, return_type="proto", **extra)
            ids.append([p.id for p in proto.pieces])
            offs.append([(p.begin, p.end) for p in proto.pieces])
        return ids, offs

    def decode(self, ids: list[list[int]], skip_special_tokens: bool) -> list[str]:
        return self.sp.decode(ids)  # control pieces decode to nothing

    def token_bytes(self) -> list[bytes | None]:
        from zoo.text.vocab import sentencepiece_bytes_table

        return sentencepiece_bytes_table(self.sp)


def special_token_names(paths: Mapping[str, Path]) -> dict[str, str | None]:
    """``bos_token`` / ``eos_token`` / ``pad_token`` names from a release's ``tokenizer_config.json``
    (or ``special_tokens_map.json``) among ``paths`` (file name -> path), read as data; a token
    given as ``{"content": ...}`` counts by its content."""
    out: dict[str, str | None] = {}
    for name in ("special_tokens_map.json", "tokenizer_config.json"):
        path = paths.get(name)
        if path is None:
            continue
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise CheckpointError(f"cannot read {path}: {exc}; re-download it") from None
        for role in ("bos_token", "eos_token", "pad_token"):
            value = data.get(role) if isinstance(data, dict) else None
            if isinstance(value, dict):
                value = value.get("content")
            if isinstance(value, str):
                out[role] = value
    return out


def _backend_from_file(path: Path, special: dict[str, str | None] | None = None) -> Any:
    path = Path(path)
    if path.suffix == ".json":
        try:
            from tokenizers import Tokenizer
        except ImportError:
            raise ImportError("text tokenizers need the `tokenizers` package: pip install 'zoo[text]'") from None
        try:
            return _HFBackend(Tokenizer.from_file(str(path)), special)
        except Exception as exc:  # tokenizers raises a bare Exception on a malformed file
            raise CheckpointError(f"{path} is not a tokenizer.json the tokenizers library can read ({exc}); "
                                  "re-download it or pass weights= a valid copy") from None
    if path.suffix == ".model":
        try:
            import sentencepiece
        except ImportError:
            raise ImportError("SentencePiece .model files need the `sentencepiece` package: pip install 'zoo[text]'") from None
        processor = sentencepiece.SentencePieceProcessor()
        try:
            processor.load(str(path))
        except (OSError, RuntimeError) as exc:
            raise CheckpointError(f"{path} is not a SentencePiece model ({exc}); re-download it") from None
        return _SPBackend(processor)
    raise CheckpointError(f"{path.name}: a text tokenizer is a tokenizer.json or a SentencePiece .model file")


class TextTokenizer(ZooModel, torch.nn.Module):
    """A text tokenizer: ``encode(texts) -> Tokens`` and ``decode(tokens) -> list[str]``.

    Built from a ``tokenizers.Tokenizer``, a ``sentencepiece.SentencePieceProcessor`` or a file
    (:meth:`from_file`). ``encode`` returns right-padded ids ``[B, N]`` with per-item ``lengths``
    (ragged batches); ``return_offsets=True`` adds ``meta["offsets"]``: one ``[n, 2]`` tensor of
    UTF-8 byte spans per item. It holds no parameters.
    """

    def __init__(self, tokenizer: Any = None, *, special_tokens: dict[str, str | None] | None = None):
        super().__init__()
        if tokenizer is None:
            self.backend = None
        elif hasattr(tokenizer, "encode_batch"):
            self.backend = _HFBackend(tokenizer, special_tokens)
        elif hasattr(tokenizer, "is_byte"):
            self.backend = _SPBackend(tokenizer)
        else:
            raise InputTypeError(f"TextTokenizer takes a tokenizers.Tokenizer or a sentencepiece.SentencePieceProcessor, "
                                 f"got {type(tokenizer).__name__}")

    @classmethod
    def from_file(cls, path: str | Path, *, special_tokens: dict[str, str | None] | None = None) -> "TextTokenizer":
        """A tokenizer from a ``tokenizer.json`` or a SentencePiece ``.model`` file."""
        out = cls()
        out.backend = _backend_from_file(Path(path), special_tokens)
        return out

    # ------------------------------------------------------------------ facts
    def _backend(self) -> Any:
        if self.backend is None:
            raise InputError(f"{self.name} has no vocabulary: a text tokenizer is its files; load it with "
                             f"zoo.load({self.name!r}) (or weights=PATH to a tokenizer.json / .model), not pretrained=False")
        return self.backend

    @property
    def vocab_size(self) -> int:
        """Ids the tokenizer can produce (added and special tokens included)."""
        return self._backend().vocab_size

    codebook_size = vocab_size

    @property
    def bos_id(self) -> int | None:
        return self._backend().bos_id

    @property
    def eos_id(self) -> int | None:
        return self._backend().eos_id

    @property
    def special_ids(self) -> set[int]:
        return set(self._backend().special_ids)

    @cached_property
    def token_bytes(self) -> list[bytes | None]:
        """The UTF-8 bytes each id decodes to (``None`` for special tokens)."""
        return self._backend().token_bytes()

    def describe_facts(self) -> dict[str, Any]:
        if self.backend is None:
            return {"vocab": "not loaded"}
        return {"vocab": self.backend.vocab_size, "format": f"{self.backend.format} ({self.backend.model_type})"}

    # ------------------------------------------------------------------ interface
    def encode(self, texts: str | Sequence[str], *, add_special_tokens: bool = False, return_offsets: bool = False) -> Tokens:
        """Token ids of each text: :class:`~zoo.interfaces.Tokens` ``[B, N]`` padded, with lengths.

        ``add_special_tokens`` adds what the tokenizer's post-processor adds (BOS/EOS); statistics
        such as bytes per token count without them (the default).
        """
        items = as_texts(texts)
        backend = self._backend()
        ids, offsets = backend.encode(items, add_special_tokens, return_offsets)
        pad = backend.pad_id or 0
        tensor, lengths = _padded(ids, pad)
        meta: dict[str, Any] = {}
        if offsets is not None:
            offsets = [self._exact_spans(t, x, o) for t, x, o in zip(items, ids, offsets)]
            meta["offsets"] = [torch.tensor(o, dtype=torch.long).view(-1, 2) for o in offsets]
        return Tokens(ids=tensor, codebook_size=backend.vocab_size, tokenizer=self.name, lengths=lengths, pad_id=pad, meta=meta)

    def _exact_spans(self, text: str, ids: list[int], offsets: list[tuple[int, int]]) -> list[tuple[int, int]]:
        """Byte spans from the tokens' own bytes when they spell ``text`` exactly (byte-level
        tokens of one character then get their own bytes, not the character's span); else the
        library's offsets."""
        table = self.token_bytes
        pieces = [table[i] for i in ids]
        if any(p is None for p in pieces) or b"".join(pieces) != text.encode("utf-8"):
            return offsets
        spans, start = [], 0
        for p in pieces:
            spans.append((start, start + len(p)))
            start += len(p)
        return spans

    def decode(self, tokens: Tokens | torch.Tensor | Sequence[Any], *, skip_special_tokens: bool = True) -> list[str]:
        """Texts from token ids (:class:`Tokens`, a ``[B, N]`` tensor, or a list of id lists).

        Tokens made by another tokenizer are refused (:class:`~zoo.errors.TokenError`)."""
        from zoo.interfaces import _same_tokenizer

        if isinstance(tokens, Tokens):
            if not _same_tokenizer(tokens.tokenizer, self.name):
                raise TokenError(f"these tokens were made by {tokens.tokenizer!r}; this tokenizer is {self.name!r}. "
                                 f"Decode them with zoo.load({tokens.tokenizer!r})")
            ids = [row[: int(n)].tolist() for row, n in zip(tokens.ids, tokens.lengths)]
        elif isinstance(tokens, torch.Tensor):
            if tokens.is_floating_point() or tokens.dtype == torch.bool:
                raise InputTypeError(f"token ids must be an integer tensor, got {tokens.dtype}")
            ids = (tokens[None] if tokens.dim() == 1 else tokens).tolist()
        elif isinstance(tokens, (list, tuple)):
            ids = [list(x) for x in tokens] if tokens and not isinstance(tokens[0], int) else [list(tokens)]
        else:
            raise InputTypeError(f"expected Tokens, a tensor or a list of id lists, got {type(tokens).__name__}")
        if not ids:
            raise TokenError("no token sequences to decode (an empty batch)")
        size = self.vocab_size
        for b, row in enumerate(ids):
            bad = [i for i in row if not isinstance(i, int) or not 0 <= i < size]
            if bad:
                raise TokenError(f"item {b} holds ids {bad[:5]} outside this vocabulary (0..{size - 1})")
        return self.backend.decode(ids, skip_special_tokens)

    def round_trip(self, texts: str | Sequence[str]) -> list[bool]:
        """Whether ``decode(encode(text)) == text`` for each text."""
        items = as_texts(texts)
        return [a == b for a, b in zip(items, self.decode(self.encode(items)))]

    @cached_property
    def lossless(self) -> bool:
        """True when every :data:`PROBE_TEXTS` string survives encode + decode unchanged (no
        lowercasing, Unicode normalisation, whitespace collapsing or unknown tokens)."""
        return all(self.round_trip(list(PROBE_TEXTS)))

    def canonical_ids(self, text: str) -> list[int]:
        """The ids the tokenizer gives ``text`` without special tokens (one item, as a list)."""
        return self._backend().encode([text], False, False)[0][0]
