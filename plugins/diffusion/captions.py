"""Caption cleaning of the PixArt / DeepFloyd-IF pipelines (``clean_caption=True``): strip URLs,
HTML, @handles, CJK ideographs, ids, file names, shop phrases and stray punctuation before the
text encoder sees a prompt.

The rules follow diffusers' ``PixArtAlphaPipeline._clean_caption`` (the same function in
``PixArtSigmaPipeline`` and, copied, in Nitro-E's ``EMMDiTPipeline``; Apache-2.0), matched
against diffusers 0.42.1: same regular expressions in the same order, the whole pass applied
twice, as the pipelines' ``_text_preprocessing`` does. Without cleaning a caption is only
lower-cased and stripped (the pipelines' ``clean_caption=False``). HTML goes through
``beautifulsoup4`` and mojibake through ``ftfy`` (both in ``zoo[diffusion]``).

Example:
    >>> preprocess_captions(["A red fox <b>at dawn</b> https://example.com/fox.jpg @bob in the snow"])
    ['a red fox at dawn in the snow']
    >>> preprocess_captions(["  A Cat "], clean=False)
    ['a cat']
"""

from __future__ import annotations

import html
import re
import urllib.parse as ul
from typing import Any, Sequence

from zoo.errors import ZooError

__all__ = ["clean_caption", "preprocess_captions"]

_URL = re.compile(r"\b((?:https?:(?:\/{1,3}|[a-zA-Z0-9%])|[a-zA-Z0-9.\-]+[.](?:com|co|ru|net|org|edu|gov|it)[\w/-]*\b\/?(?!@)))")
_WWW = re.compile(r"\b((?:www:(?:\/{1,3}|[a-zA-Z0-9%])|[a-zA-Z0-9.\-]+[.](?:com|co|ru|net|org|edu|gov|it)[\w/-]*\b\/?(?!@)))")
# CJK strokes, katakana phonetic extensions, enclosed CJK, CJK compatibility, ideographs ext. A,
# Yijing hexagrams, CJK unified ideographs: removed (one pass per block, as the pipeline)
_CJK = [re.compile(r) for r in (r"[\u31c0-\u31ef]+", r"[\u31f0-\u31ff]+", r"[\u3200-\u32ff]+", r"[\u3300-\u33ff]+",
                                 r"[\u3400-\u4dbf]+", r"[\u4dc0-\u4dff]+", r"[\u4e00-\u9fff]+")]
_DASHES = re.compile(r"[\u002D\u058A\u05BE\u1400\u1806\u2010-\u2015\u2E17\u2E1A\u2E3A\u2E3B\u2E40\u301C\u3030\u30A0\uFE31\uFE32"
                     r"\uFE58\uFE63\uFF0D]+")
_BAD_PUNCT = re.compile(r"[" + "#®•©™&@·º½¾¿¡§~" + r"\)\(\]\[\}\{\|\\/\*" + r"]{1,}")
_SEPARATORS = re.compile(r"(?:\-|\_)")

# (pattern, replacement) in the pipeline's order, between the HTML pass and ftfy
_BEFORE_FTFY: list[tuple[Any, str]] = [
    (re.compile(r"@[\w\d]+\b"), ""),  # @nickname
    *[(c, "") for c in _CJK],
    (_DASHES, "-"),  # every kind of dash
    (re.compile(r"[`´«»“”¨]"), '"'),  # quotes to one standard
    (re.compile(r"[‘’]"), "'"),
    (re.compile(r"&quot;?"), ""),
    (re.compile(r"&amp"), ""),
    (re.compile(r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}"), " "),  # ip addresses
    (re.compile(r"\d:\d\d\s+$"), ""),  # article ids
    (re.compile(r"\\n"), " "),  # a literal backslash-n
    (re.compile(r"#\d{1,3}\b"), ""),  # "#123"
    (re.compile(r"#\d{5,}\b"), ""),  # "#12345.."
    (re.compile(r"\b\d{6,}\b"), ""),  # "123456.."
    (re.compile(r"[\S]+\.(?:png|jpg|jpeg|bmp|webp|eps|pdf|apk|mp4)"), ""),  # file names
    (re.compile(r"[\"\']{2,}"), '"'),  # """AUSVERKAUFT"""
    (re.compile(r"[\.]{2,}"), " "),
    (_BAD_PUNCT, " "),  # ***AUSVERKAUFT***, #AUSVERKAUFT
    (re.compile(r"\s+\.\s+"), " "),  # " . "
]

# after ftfy and the HTML unescape
_AFTER_FTFY: list[tuple[Any, str]] = [
    (re.compile(r"\b[a-zA-Z]{1,3}\d{3,15}\b"), ""),  # jc6640
    (re.compile(r"\b[a-zA-Z]+\d+[a-zA-Z]+\b"), ""),  # jc6640vc
    (re.compile(r"\b\d+[a-zA-Z]+\d+\b"), ""),  # 6640vc231
    (re.compile(r"(worldwide\s+)?(free\s+)?shipping"), ""),
    (re.compile(r"(free\s)?download(\sfree)?"), ""),
    (re.compile(r"\bclick\b\s(?:for|on)\s\w+"), ""),
    (re.compile(r"\b(?:png|jpg|jpeg|bmp|webp|eps|pdf|apk|mp4)(\simage[s]?)?"), ""),
    (re.compile(r"\bpage\s+\d+\b"), ""),
    (re.compile(r"\b\d*[a-zA-Z]+\d+[a-zA-Z]+\d+[a-zA-Z\d]*\b"), " "),  # j2d1a2a...
    (re.compile(r"\b\d+\.?\d*[xх×]\d+\.?\d*\b"), ""),  # sizes 1920x1080
    (re.compile(r"\b\s+\:\s+"), ": "),
    (re.compile(r"(\D[,\./])\b"), r"\1 "),
    (re.compile(r"\s+"), " "),
    (re.compile(r"^[\"\']([\w\W]+)[\"\']$"), r"\1"),  # outer quotes
    (re.compile(r"^[\'\_,\-\:;]"), ""),
    (re.compile(r"[\'\_,\-\:\-\+]$"), ""),
    (re.compile(r"^\.\S+$"), ""),
]

_HINT = "`pip install 'zoo[diffusion]'` (beautifulsoup4 and ftfy), or pass clean_caption=False (zoo generate --no-clean-caption) to only lower-case and strip"


def _libs() -> tuple[Any, Any]:
    """``(BeautifulSoup, ftfy)``, or a ZooError naming the extra and ``clean_caption=False``."""
    try:
        from bs4 import BeautifulSoup
        import ftfy
    except ModuleNotFoundError as e:
        raise ZooError(f"caption cleaning (clean_caption=True) needs {e.name}, which is not installed: {_HINT}") from None
    return BeautifulSoup, ftfy


def _clean_once(caption: str, soup: Any, ftfy: Any) -> str:
    caption = ul.unquote_plus(str(caption)).strip().lower()
    caption = caption.replace("<person>", "person")
    caption = _WWW.sub("", _URL.sub("", caption))
    caption = soup(caption, features="html.parser").text
    for pattern, repl in _BEFORE_FTFY:
        caption = pattern.sub(repl, caption)
    if len(_SEPARATORS.findall(caption)) > 3:  # this-is-my-cute-cat / this_is_my_cute_cat
        caption = _SEPARATORS.sub(" ", caption)
    caption = html.unescape(html.unescape(ftfy.fix_text(caption)))
    for pattern, repl in _AFTER_FTFY:
        caption = pattern.sub(repl, caption)
    return caption.strip()


def clean_caption(caption: str) -> str:
    """One caption cleaned as the PixArt pipelines' ``clean_caption=True`` (the pass run twice).

    Example:
        >>> clean_caption("Photo of a CAT!!! #cute @cat_lover www.cats.com")
        'photo of a cat!!! cute'
    """
    soup, ftfy = _libs()
    return _clean_once(_clean_once(caption, soup, ftfy), soup, ftfy)


def preprocess_captions(captions: Sequence[str], clean: bool = True) -> list[str]:
    """The pipelines' ``_text_preprocessing``: :func:`clean_caption` each caption, or with
    ``clean=False`` only lower-case and strip.

    Example:
        >>> preprocess_captions(["A DOG &amp; a cat"])
        ['a dog a cat']
    """
    if not clean:
        return [str(c).lower().strip() for c in captions]
    _libs()
    return [clean_caption(c) for c in captions]
