"""The bytes every token of a text tokenizer stands for, whatever its format.

A ``tokenizer.json`` stores tokens in the alphabet of its decoder: GPT-2's byte-to-unicode map
for ByteLevel BPE (``Ġ`` is a space), ``▁`` for a space in SentencePiece-style (Metaspace)
vocabularies, ``<0xE2>`` for byte-fallback pieces. :func:`token_bytes_table` turns each id into
the raw bytes it decodes to (``None`` for special tokens, which stand for no text), the basis of
bytes-per-token statistics and of exact byte-level probabilities (:mod:`zoo.text.byte_lm`).

Example:
    >>> table = byte_level_alphabet()
    >>> table["Ġ"], table["a"], len(table)
    (32, 97, 256)
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import Any

__all__ = ["byte_level_alphabet", "token_bytes_table", "sentencepiece_bytes_table", "BYTE_PIECE"]

#: A byte-fallback piece: ``<0x0A>`` stands for the byte 0x0A.
BYTE_PIECE = re.compile(r"^<0x([0-9A-Fa-f]{2})>$")
_SPACE_MARK = "\u2581"  # ▁


@lru_cache(maxsize=1)
def byte_level_alphabet() -> dict[str, int]:
    """GPT-2's printable stand-in character for each byte, inverted: character -> byte.

    Printable Latin-1 bytes stand for themselves; the others are shifted to ``chr(256 + k)``.
    """
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    chars = {b: chr(b) for b in printable}
    shift = 0
    for b in range(256):
        if b not in chars:
            chars[b] = chr(256 + shift)
            shift += 1
    return {c: b for b, c in chars.items()}


def _decoder_kinds(decoder: dict[str, Any] | None) -> set[str]:
    """The decoder types of a ``tokenizer.json`` decoder (a Sequence is flattened)."""
    if not decoder:
        return set()
    if decoder.get("type") == "Sequence":
        out: set[str] = set()
        for d in decoder.get("decoders", []):
            out |= _decoder_kinds(d)
        return out
    kinds = {decoder.get("type", "")}
    if decoder.get("type") == "Replace" and decoder.get("content") == " ":
        kinds.add("ReplaceMetaspace")
    return kinds


def token_bytes_table(tokenizer: Any) -> list[bytes | None]:
    """The bytes of every id of a ``tokenizers.Tokenizer`` (``None`` for special tokens).

    ByteLevel decoders map characters back through :func:`byte_level_alphabet`; Metaspace (or a
    ``Replace("▁", " ")`` decoder) turns ``▁`` into a space; ``<0xNN>`` pieces are single bytes
    when the model has ``byte_fallback``; otherwise a token is its UTF-8 text.

    Example:
        >>> from tokenizers import Tokenizer, models, pre_tokenizers, decoders
        >>> tok = Tokenizer(models.BPE(vocab={"a": 0, "Ġ": 1, "Ġa": 2}, merges=[("Ġ", "a")]))
        >>> tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False); tok.decoder = decoders.ByteLevel()
        >>> token_bytes_table(tok)
        [b'a', b' ', b' a']
    """
    spec = json.loads(tokenizer.to_str())
    kinds = _decoder_kinds(spec.get("decoder"))
    model = spec.get("model") or {}
    byte_fallback = bool(model.get("byte_fallback"))
    specials = {t["id"] for t in spec.get("added_tokens", []) if t.get("special")}
    size = tokenizer.get_vocab_size(with_added_tokens=True)
    alphabet = byte_level_alphabet()
    byte_level = "ByteLevel" in kinds
    metaspace = bool(kinds & {"Metaspace", "ReplaceMetaspace"})
    out: list[bytes | None] = []
    for i in range(size):
        token = tokenizer.id_to_token(i)
        if token is None or i in specials:
            out.append(None)
            continue
        match = BYTE_PIECE.match(token) if byte_fallback else None
        if match:
            out.append(bytes([int(match.group(1), 16)]))
        elif byte_level and all(c in alphabet for c in token):
            out.append(bytes(alphabet[c] for c in token))
        elif metaspace:
            out.append(token.replace(_SPACE_MARK, " ").encode("utf-8"))
        else:
            out.append(token.encode("utf-8"))
    return out


def sentencepiece_bytes_table(processor: Any) -> list[bytes | None]:
    """The bytes of every id of a ``sentencepiece.SentencePieceProcessor`` (``None`` for control
    and unknown pieces; ``<0xNN>`` byte pieces are single bytes; ``▁`` is a space)."""
    out: list[bytes | None] = []
    for i in range(processor.get_piece_size()):
        if processor.is_control(i) or processor.is_unknown(i) or processor.is_unused(i):
            out.append(None)
        elif processor.is_byte(i):
            out.append(bytes([int(BYTE_PIECE.match(processor.id_to_piece(i)).group(1), 16)]))
        else:
            out.append(processor.id_to_piece(i).replace(_SPACE_MARK, " ").encode("utf-8"))
    return out
