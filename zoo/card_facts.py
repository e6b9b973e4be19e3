"""The facts the catalogue shows for each card (``zoo list``, ``zoo list --json``, the docs):
parameter count, download size, licence with the research-only flag, headline metric, parity
status, pinned or not. Pure functions of a card; no torch import.

* **parameters** come from the committed, generated ``zoo/data/param_counts.json``
  (:mod:`zoo.param_counts`, computed from the architecture on the meta device); ``None`` for a
  card that file does not know (a third-party plugin's).
* **download size** is the sum of the card's own files' sizes from its ``file_info`` (written
  by ``zoo registry pin``); ``None`` unless every file's size is known. Dependencies (e.g. a
  tokenizer's VAE) are separate cards with their own size.
* the **headline metric** is the card's first reported metric (cards list it first).

Example:
    >>> from zoo.cards import card_from_dict
    >>> card = card_from_dict({"name": "demo.tiny", "kind": "tokenizer", "plugin": "demo", "modality": "image",
    ...     "license": {"code": "Apache-2.0", "research_only": True}, "metrics": {"imagenet_256_rfid": 2.21},
    ...     "parity": "random-weight parity with org/repo: ids equal"})
    >>> licence_label(card), headline_metric(card), parity_status(card.parity)
    ('Apache-2.0, research only', 'imagenet_256_rfid=2.21', '✓ vs org/repo')
    >>> format_bytes(2_300_000_000), format_bytes(None)
    ('2.3 GB', '?')
"""

from __future__ import annotations

import re
from typing import Any

from zoo.cards import ModelCard

__all__ = ["card_facts", "download_bytes", "format_bytes", "headline_metric", "licence_label", "parameter_count",
           "parity_status", "weights_label"]


def parameter_count(card: ModelCard) -> int | None:
    """The card's parameter count from the generated data file, or ``None`` when unknown."""
    from zoo.param_counts import cached_count

    return cached_count(card.name)


def download_bytes(card: ModelCard) -> int | None:
    """Bytes of the card's own hub files, when ``file_info`` gives every file's size (else
    ``None``); 0 when there is nothing to download (a reducer, files inside a package)."""
    if card.package_dir or not (card.hub_repo or card.files):
        return 0  # shipped inside an installed package, or nothing to download
    sizes = [getattr(card.file_info.get(f), "size", None) for f in card.files]
    return None if any(s is None for s in sizes) else sum(sizes)


def format_bytes(n: int | None) -> str:
    """``'2.3 GB'``, ``'815 MB'``, ``'12 KB'``; ``'?'`` when unknown, ``'—'`` for nothing to download."""
    if n is None:
        return "?"
    if n == 0:
        return "—"
    for div, unit in ((1e9, "GB"), (1e6, "MB"), (1e3, "KB")):
        if n >= div:
            value = n / div
            return f"{value:.1f} {unit}" if value < 10 else f"{value:.0f} {unit}"
    return f"{n} B"


def licence_label(card: ModelCard) -> str:
    """The weights' licence (the code's when the weights have none), without parenthetical notes,
    followed by ``research only`` when the card says so."""
    lic = card.license
    text = re.sub(r"\s*\(.*?\)", "", lic.weights or lic.code).strip()
    return f"{text}, research only" if lic.research_only else text


def headline_metric(card: ModelCard, width: int = 32) -> str:
    """The card's first reported metric as ``key=value`` (a per-length table shows its last
    entry, ``key[32]=16.3``; text is cut before its first parenthesis); ``''`` if none."""
    if not card.metrics:
        return ""
    key, value = next(iter(card.metrics.items()))
    if isinstance(value, dict) and value:
        last = list(value)[-1]
        key, value = f"{key}[{last}]", value[last]
    if isinstance(value, float):
        value = f"{value:g}"
    text = f"{key}={str(value).split(' (', 1)[0]}"
    return text if len(text) <= width else text[: width - 3] + "..."


def parity_status(parity: str) -> str:
    """A short status from a card's free-text ``parity`` field.

    Example:
        >>> parity_status("random-weight parity with bytedance/1d-tokenizer (legacy VQ path): ids equal")
        '✓ vs bytedance/1d-tokenizer'
        >>> parity_status("untested")
        'untested'
    """
    text = (parity or "").strip()
    low = text.lower()
    if not text or low.startswith("untested"):
        return "untested"
    if low.startswith(("not applicable", "n/a")):
        return "n/a"
    if low.startswith(("pending", "partial", "todo")):
        return text.split(":", 1)[0][:40]
    if low.startswith("no reference"):
        return "no reference"
    match = re.search(r"\b(?:with|vs\.?|against|to)\s+([\w-]+/[\w.-]*[\w-])", text)
    return f"✓ vs {match.group(1)}" if match else "✓ (see card)"


def weights_label(card: ModelCard) -> str:
    """Where the weights come from: ``hub, pinned`` / ``hub, main branch`` / ``embedded`` /
    ``off-hub download`` (``weights_url``) / ``none needed`` / ``none published``."""
    if card.hub_repo:
        return "hub, pinned" if card.pinned else "hub, main branch"
    if card.package_dir:
        return "embedded"
    if card.weights_url:
        return "off-hub download"
    return "none needed" if card.kind == "token_reducer" and card.weights_available else "none published"


def card_facts(card: ModelCard) -> dict[str, Any]:
    """The catalogue's columns for one card, JSON-able (``zoo list --json`` adds them to each
    record)."""
    return {
        "parameters": parameter_count(card),
        "download_bytes": download_bytes(card),
        "research_only": card.license.research_only,
        "licence_label": licence_label(card),
        "headline_metric": headline_metric(card, width=100) or None,
        "parity_status": parity_status(card.parity),
        "weights": weights_label(card),  # says pinned or not; ``zoo.info`` also has ``pinned``
    }
