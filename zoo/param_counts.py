"""Parameter counts of the catalogue, computed from the architectures, never typed by hand.

Each card's model is built with ``zoo.load(name, pretrained=False, device="meta")`` (shapes
only, no memory, no download; see :func:`build_on_meta`) and its parameters are counted. The counts of the built-in cards
are cached in ``zoo/data/param_counts.json`` so that ``zoo list`` stays fast and does not import
torch; a test recomputes them all and compares, so the file cannot go stale. Regenerate it with
``zoo registry params`` (or ``python -m zoo.param_counts``) after adding or changing a card;
``--check`` only compares.

Example:
    >>> count_parameters("tome.default")                      # a reducer holds no weights
    0
    >>> cached_count("no_such.model") is None
    True
"""

from __future__ import annotations

import json
import sys
from functools import lru_cache
from pathlib import Path
from typing import Any

__all__ = ["DATA_FILE", "build_on_meta", "cached_count", "cached_counts", "compute_counts", "count_parameters", "main",
           "write_counts"]

DATA_FILE = Path(__file__).with_name("data") / "param_counts.json"


def build_on_meta(name: str) -> Any:
    """The model a card describes, on the meta device (shapes, no memory, no download).

    The card's config gives the architecture; a card whose files ship inside a package
    (``package_dir``, e.g. ``flextok.demo_tiny``) keeps its architecture in those files, so they
    are read (they are local and small) before the model moves to the meta device.
    """
    import zoo

    card = zoo.get_card(name)
    return zoo.load(name, pretrained=bool(card.package_dir), device="meta")


def count_parameters(name: str) -> int:
    """How many parameters the module ``zoo.load(name)`` builds holds (dependencies such as a
    generator's paired tokenizer are separate models and not counted)."""
    model = build_on_meta(name)
    params = getattr(model, "parameters", None)
    return sum(p.numel() for p in params()) if callable(params) else 0


def compute_counts(names: list[str] | None = None) -> dict[str, int]:
    """``{name: count}`` for ``names`` (default: every card registered by ``registry.yaml``)."""
    import zoo

    if names is None:
        names = [n for n in zoo.list_models() if zoo.get_card(n).source == "registry.yaml"]
    return {name: count_parameters(name) for name in names}


def write_counts(path: str | Path | None = None) -> dict[str, int]:
    """Recompute the built-in cards' counts and write them to ``path`` (default: the data file)."""
    counts = compute_counts()
    path = DATA_FILE if path is None else path
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(dict(sorted(counts.items())), indent=1) + "\n", encoding="utf-8")
    cached_counts.cache_clear()
    return counts


@lru_cache(maxsize=1)
def cached_counts() -> dict[str, int]:
    """The committed counts (``{}`` if the data file is missing). Does not import torch."""
    try:
        return json.loads(DATA_FILE.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}


def cached_count(name: str) -> int | None:
    """The committed count of a card, or ``None`` when the card is not in the data file (a
    third-party plugin's card; compute it with :func:`count_parameters`)."""
    return cached_counts().get(name)


def main(argv: list[str] | None = None) -> int:
    """``python -m zoo.param_counts [--check]``: rewrite the data file, or only compare."""
    argv = sys.argv[1:] if argv is None else argv
    if "--check" in argv:
        fresh, cached = compute_counts(), cached_counts()
        stale = sorted(n for n in set(fresh) | set(cached) if fresh.get(n) != cached.get(n))
        for n in stale:
            print(f"{n}: committed {cached.get(n)}, architecture {fresh.get(n)}")
        print("param counts up to date" if not stale else f"{len(stale)} stale: run `python -m zoo.param_counts`")
        return 1 if stale else 0
    counts = write_counts()
    print(f"wrote {len(counts)} counts to {DATA_FILE}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
