"""OuteTTS v0.1's prompt format and the map between LM tokens and WavTokenizer codes.

The completion prompt (outetts v0.1 ``PromptProcessor.get_completion_prompt``)::

    <|im_start|>\\n<|text_start|>word<|text_sep|>word...<|text_end|>\\n<|audio_start|>\\n

followed, for a speaker reference, by one line per reference word:
``word<|t_0.42|><|code_start|><|12|><|345|>...<|code_end|>`` (lines joined by ``\\n``). Text is
lower-cased, numbers are spelled out, everything but ``a-z`` and spaces is dropped. Audio code
``c`` is the token ``<|c|>``; generated tokens that are not audio codes are skipped.

Example:
    >>> words("Hello, World 2!")
    ['hello', 'world', 'two']
    >>> completion_prompt("hi there")
    '<|im_start|>\\n<|text_start|>hi<|text_sep|>there<|text_end|>\\n<|audio_start|>\\n'
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Optional, Sequence

from zoo.errors import InputError

__all__ = ["words", "completion_prompt", "number_to_words", "TextTokenizer", "SPECIAL"]

SPECIAL = {
    "bos": "<|im_start|>",
    "eos": "<|im_end|>",
    "text_start": "<|text_start|>",
    "text_end": "<|text_end|>",
    "audio_start": "<|audio_start|>",
    "audio_end": "<|audio_end|>",
    "code_start": "<|code_start|>",
    "code_end": "<|code_end|>",
    "text_sep": "<|text_sep|>",
}
_ONES = "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen".split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()


def _int_words(n: int) -> str:
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("-" + _ONES[n % 10] if n % 10 else "")
    if n < 1000:
        rest = n % 100
        return _ONES[n // 100] + " hundred" + (" and " + _int_words(rest) if rest else "")
    for size, name in ((10**12, "trillion"), (10**9, "billion"), (10**6, "million"), (1000, "thousand")):
        if n >= size:
            head, rest = divmod(n, size)
            tail = "" if not rest else ((" and " if rest < 100 else ", ") + _int_words(rest))
            return _int_words(head) + " " + name + tail
    raise InputError(n)


def number_to_words(token: str) -> str:
    """Spell a number the way ``inflect.engine().number_to_words`` does for plain integers and
    decimals (``inflect`` is used instead when installed).

    Example:
        >>> number_to_words("21"), number_to_words("3.5")
        ('twenty-one', 'three point five')
    """
    try:
        import inflect  # noqa: PLC0415 - optional, the reference's choice
    except ImportError:
        inflect = None
    if inflect is not None:
        return inflect.engine().number_to_words(token)
    whole, _, frac = token.partition(".")
    out = _int_words(int(whole))
    if frac:
        out += " point " + " ".join(_ONES[int(c)] for c in frac)
    return out


def words(text: str) -> list[str]:
    """outetts v0.1 ``process_text``: lower-case, spell numbers, keep ``a-z`` and spaces, split."""
    text = re.sub(r"\d+(\.\d+)?", lambda m: number_to_words(m.group()), text.lower())
    text = re.sub(r"[^a-z\s]", "", text)
    return text.split()


def _audio_prompt(speaker_words: Sequence[dict]) -> str:
    lines = []
    for w in speaker_words:
        codes = "".join(f"<|{int(c)}|>" for c in w["codes"])
        lines.append(f"{w['word']}<|t_{float(w['duration']):.2f}|>{SPECIAL['code_start']}{codes}{SPECIAL['code_end']}")
    return "\n".join(lines)


def completion_prompt(text: str, speaker: Optional[dict] = None) -> str:
    """The v0.1 completion prompt for ``text`` (and an optional speaker reference
    ``{"text": str, "words": [{"word", "duration", "codes"}]}``)."""
    ws = words(text)
    if speaker is not None:
        ws = words(speaker["text"]) + ws
    body = SPECIAL["text_sep"].join(w.strip() for w in ws)
    prompt = f"{SPECIAL['bos']}\n{SPECIAL['text_start']}{body}{SPECIAL['text_end']}\n{SPECIAL['audio_start']}\n"
    if speaker is not None:
        prompt += _audio_prompt(speaker["words"])
    return prompt


class TextTokenizer:
    """The LM's tokenizer (``tokenizer.json``, via the ``tokenizers`` package) plus the audio
    code <-> token id tables. Any object with ``encode(str) -> list[int]`` may stand in
    (``backend=``), e.g. in tests.
    """

    def __init__(self, path: Optional[str | Path] = None, *, backend: Any = None, num_codes: int = 4100):
        if backend is None:
            try:
                from tokenizers import Tokenizer  # noqa: PLC0415 - optional dependency
            except ImportError:
                raise ImportError("OuteTTS needs the `tokenizers` package to read tokenizer.json: pip install tokenizers") from None
            backend = Tokenizer.from_file(str(path))
        self.backend = backend
        pieces = [f"<|{i}|>" for i in range(num_codes)]
        if hasattr(backend, "encode_batch"):  # tokenizers: one call instead of 4100 (same ids)
            self.code_to_token = [e.ids[0] for e in backend.encode_batch(pieces, add_special_tokens=False)]
        else:
            self.code_to_token = [self._encode(p)[0] for p in pieces]
        self.token_to_code = {t: c for c, t in enumerate(self.code_to_token)}

    def _encode(self, text: str) -> list[int]:
        out = self.backend.encode(text, add_special_tokens=False) if _takes_special(self.backend) else self.backend.encode(text)
        return list(getattr(out, "ids", out))

    def encode_prompt(self, text: str, speaker: Optional[dict] = None) -> list[int]:
        return self._encode(completion_prompt(text, speaker))

    def codes(self, token_ids: Sequence[int], codebook_size: int = 4096) -> list[int]:
        """Audio codes among ``token_ids`` in order (other tokens skipped, as the reference)."""
        return [c for c in (self.token_to_code.get(int(t)) for t in token_ids) if c is not None and c < codebook_size]


def _takes_special(backend: Any) -> bool:
    import inspect

    try:
        return "add_special_tokens" in inspect.signature(backend.encode).parameters
    except (TypeError, ValueError):
        return False
