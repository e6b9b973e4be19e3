"""What text tokenizers are compared by, measured on your own texts: bytes per token, characters
per token, tokens per word, vocabulary utilisation, and -- with a language model -- bits per byte,
both token-level (the usual, biased at the text's end) and exact byte-level (:mod:`zoo.text.byte_lm`).

Example:
    >>> from zoo.text.byte_lm import fixed_tokenizer
    >>> from zoo.text.tokenizer import TextTokenizer
    >>> row = tokenizer_stats(TextTokenizer(fixed_tokenizer(["a", "b", "ab"])), ["abab", "ba"])
    >>> row["tokens"], row["bytes_per_token"], row["vocab_used"]
    (4, 1.5, 3)
"""

from __future__ import annotations

import glob
import json
import math
import os
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from zoo.errors import InputError

__all__ = ["read_texts", "tokenizer_stats", "lm_bits_per_byte", "stats_table", "plot_stats", "COLUMNS"]

#: Report columns: key, header, format.
COLUMNS = [
    ("tokenizer", "tokenizer", "{}"), ("vocab_size", "vocab", "{}"), ("tokens", "tokens", "{}"),
    ("bytes_per_token", "bytes/token", "{:.3f}"), ("chars_per_token", "chars/token", "{:.3f}"),
    ("tokens_per_word", "tokens/word", "{:.3f}"), ("vocab_utilisation", "vocab used", "{:.1%}"),
    ("round_trip", "round trip", "{:.1%}"), ("bpb_token", "bits/byte (token LM)", "{:.4f}"),
    ("bpb_byte", "bits/byte (exact)", "{:.4f}"),
]
_SUFFIXES = (".txt", ".md", ".text", ".rst", ".json", ".jsonl", ".csv", ".py")


def read_texts(inputs: Sequence[str], *, lines: bool = False) -> list[str]:
    """Texts from files, folders (their text files, recursively) and globs: one text per file,
    or one per non-empty line with ``lines=True``. Files are read as UTF-8.

    Example:
        >>> import tempfile, pathlib
        >>> d = pathlib.Path(tempfile.mkdtemp()); _ = (d / "a.txt").write_text("x\\ny\\n")
        >>> read_texts([str(d)]), read_texts([str(d / "a.txt")], lines=True)
        (['x\\ny\\n'], ['x', 'y'])
    """
    paths: list[Path] = []
    for item in inputs:
        p = Path(os.path.expanduser(item))
        if p.is_dir():
            paths += sorted(q for q in p.rglob("*") if q.is_file() and q.suffix.lower() in _SUFFIXES)
        elif p.is_file():
            paths.append(p)
        else:
            found = sorted(Path(x) for x in glob.glob(os.path.expanduser(item), recursive=True) if Path(x).is_file())
            if not found:
                raise InputError(f"{item}: no such file, folder or matching glob")
            paths += found
    texts = []
    for p in paths:
        try:
            text = p.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise InputError(f"{p} is not UTF-8 text ({exc.reason} at byte {exc.start}); convert it first") from None
        texts += [ln for ln in text.splitlines() if ln.strip()] if lines else [text]
    if not texts:
        raise InputError(f"no text found in {list(inputs)} (text files: {', '.join(_SUFFIXES)})")
    return texts


def tokenizer_stats(tokenizer: Any, texts: Sequence[str], *, name: str | None = None, batch_size: int = 256) -> dict[str, Any]:
    """Compression and coverage of one :class:`~zoo.text.tokenizer.TextTokenizer` on ``texts``
    (special tokens not counted; words are whitespace-separated)."""
    n_bytes = sum(len(t.encode("utf-8")) for t in texts)
    n_chars = sum(len(t) for t in texts)
    n_words = sum(len(t.split()) for t in texts)
    n_tokens, used, same = 0, set(), 0
    for start in range(0, len(texts), batch_size):
        chunk = list(texts[start : start + batch_size])
        tokens = tokenizer.encode(chunk)
        for row, n in zip(tokens.ids.tolist(), tokens.lengths.tolist()):
            used.update(row[:n])
            n_tokens += n
        same += sum(a == b for a, b in zip(chunk, tokenizer.decode(tokens)))
    return {
        "tokenizer": name or tokenizer.name, "vocab_size": tokenizer.vocab_size, "texts": len(texts), "bytes": n_bytes,
        "chars": n_chars, "words": n_words, "tokens": n_tokens,
        "bytes_per_token": n_bytes / n_tokens if n_tokens else math.nan,
        "chars_per_token": n_chars / n_tokens if n_tokens else math.nan,
        "tokens_per_word": n_tokens / n_words if n_words else math.nan,
        "vocab_used": len(used), "vocab_utilisation": len(used) / tokenizer.vocab_size,
        "round_trip": same / len(texts),
    }


def lm_bits_per_byte(byte_lm: Any, texts: Sequence[str], *, chunk_bytes: int = 2000) -> dict[str, float]:
    """Bits per byte of an LM on ``texts``: ``bpb_token`` from the log-probability of each chunk's
    canonical encoding (what token-level evaluation reports), ``bpb_byte`` from the exact
    byte-level prefix probability. Texts are cut into chunks of at most ``chunk_bytes`` bytes at
    UTF-8 character boundaries, each scored from the start token."""
    tok_bits = byte_bits = 0.0
    total = 0
    for text in texts:
        for chunk in _chunks(text, chunk_bytes):
            data = chunk.encode("utf-8")
            ids = byte_lm.canonical(byte_lm.prefix + data)
            if ids is None:
                raise InputError(f"the LM's tokenizer cannot spell {chunk[:40]!r} byte for byte (it normalises text)")
            tok_bits -= byte_lm._score([ids])[0][0] / math.log(2)
            byte_bits -= byte_lm.byte_logprob(data) / math.log(2)
            total += len(data)
    return {"bpb_token": tok_bits / total, "bpb_byte": byte_bits / total, "lm_bytes": total}


def _chunks(text: str, size: int) -> Iterable[str]:
    out, cur = [], 0
    start = 0
    for i, ch in enumerate(text):
        n = len(ch.encode("utf-8"))
        if cur + n > size and i > start:
            out.append(text[start:i])
            start, cur = i, 0
        cur += n
    if start < len(text):
        out.append(text[start:])
    return out


def stats_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """The rows as a Markdown table (columns a row lacks are left out)."""
    cols = [c for c in COLUMNS if any(c[0] in r for r in rows)]
    head = "| " + " | ".join(h for _, h, _ in cols) + " |\n| " + " | ".join("---" for _ in cols) + " |\n"

    def cell(r: Mapping[str, Any], key: str, fmt: str) -> str:
        v = r.get(key)
        return "" if v is None or (isinstance(v, float) and math.isnan(v)) else fmt.format(v)

    return head + "".join("| " + " | ".join(cell(r, k, f) for k, _, f in cols) + " |\n" for r in rows)


def plot_stats(rows: Sequence[Mapping[str, Any]], path: str | Path) -> Path:
    """Bar charts of bytes per token and tokens per word (and bits per byte when measured)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [("bytes_per_token", "bytes per token (higher: more compression)"), ("tokens_per_word", "tokens per word")]
    if any(r.get("bpb_byte") is not None for r in rows):
        keys.append(("bpb_byte", "bits per byte (exact, lower is better)"))
    fig, axes = plt.subplots(1, len(keys), figsize=(4.2 * len(keys), 0.5 * len(rows) + 1.6), squeeze=False)
    names = [r["tokenizer"] if len(r["tokenizer"]) <= 28 else "..." + r["tokenizer"][-25:] for r in rows]
    for ax, (key, title) in zip(axes[0], keys):
        vals = [r.get(key) or 0.0 for r in rows]
        ax.barh(names, vals, color="#4c72b0")
        ax.set_title(title, fontsize=9)
        ax.invert_yaxis()
        for y, v in enumerate(vals):
            ax.text(v, y, f" {v:.2f}", va="center", fontsize=8)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write_json(rows: Sequence[Mapping[str, Any]], path: str | Path) -> None:
    Path(path).write_text(json.dumps({"rows": list(rows)}, indent=1, default=float) + "\n", encoding="utf-8")
