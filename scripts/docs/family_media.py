"""Pictures and audio samples for a model family's page, found by file name.

A file ``docs/assets/figures/<family>_<what>.<ext>`` (``png``, ``jpg``, ``svg``; ``wav``, ``mp3``,
``ogg``, ``flac``) is shown on the page of ``<family>``: pictures as images, audio as a player,
titled by ``<what>``. A sibling ``<same name>.md`` (one paragraph) is its caption; say there which
script made the file. ``hooks.py`` appends the section to the generated family pages; pictures
that ``zoo_docs.FIGURES`` already shows (the gallery's) are not named this way.

Example:
    >>> media_files("wavtokenizer", Path("/nonexistent"))
    []
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from pathlib import Path

FIGURES = "assets/figures"
IMAGES = {".png", ".jpg", ".jpeg", ".svg"}
AUDIO = {".wav": "audio/wav", ".mp3": "audio/mpeg", ".ogg": "audio/ogg", ".flac": "audio/flac"}


def media_files(family: str, docs_dir: Path, families: Iterable[str] = ()) -> list[Path]:
    """The family's pictures and audio under ``docs_dir/assets/figures``, sorted by name; a file
    of a longer family name in ``families`` (``flextok_ar_x.png`` for ``flextok``) is not this one's."""
    folder = Path(docs_dir) / FIGURES
    if not folder.is_dir():
        return []
    longer = [f"{f}_" for f in families if f != family and f.startswith(f"{family}_")]
    return sorted(p for p in folder.glob(f"{family}_*")
                  if p.suffix.lower() in IMAGES | set(AUDIO) and not p.name.startswith(tuple(longer)))


def media_section(family: str, docs_dir: Path, families: Iterable[str] = (), page_prefix: str = "../") -> str:
    """Markdown for the family page ("" when the family has no files)."""
    files = media_files(family, docs_dir, families)
    if not files:
        return ""
    out = ["## Pictures and samples\n"]
    for path in files:
        title = path.stem[len(family) + 1 :].replace("_", " ").strip() or family
        src = f"{page_prefix}{FIGURES}/{path.name}"
        out.append(f"### {title.capitalize()}\n")
        if path.suffix.lower() in IMAGES:
            out.append(f"![{title}]({src}){{ loading=lazy }}\n")
        else:
            kind = AUDIO[path.suffix.lower()]
            out.append(f'<audio controls preload="none" src="{html.escape(src)}" type="{kind}"></audio>\n')
        caption = path.with_suffix(".md")
        if caption.is_file():
            out.append(caption.read_text(encoding="utf-8").strip() + "\n")
    return "\n".join(out)
