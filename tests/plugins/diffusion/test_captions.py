"""Caption cleaning (clean_caption=True of PixArt-Σ and Nitro-E): zoo's text equals the diffusers
PixArt-Σ pipeline's ``_text_preprocessing`` (called here as the oracle only), caption by caption,
and without bs4/ftfy cleaning fails with an error naming the extra and ``clean_caption=False``."""

from __future__ import annotations

import sys

import pytest

pytest.importorskip("diffusers")
pytest.importorskip("bs4")
pytest.importorskip("ftfy")

from zoo.errors import ZooError  # noqa: E402
from zoo_plugins.diffusion.captions import clean_caption, preprocess_captions  # noqa: E402

CAPTIONS = [  # (what it exercises, caption)
    ("url", "A red fox https://example.com/img/fox?id=3 in the snow"),
    ("bare domain", "sunset over the sea, photo from pixabay.com/photos and www.flickr.com"),
    ("html tags", "<p>A <b>bold</b> cat</p><br/>on a <i>sofa</i>"),
    ("entities", "Tom &amp; Jerry &quot;cartoon&quot; &lt;3 &#39;classic&#39; &nbsp;poster"),
    ("mention", "@john_doe took this picture of @Mary99 at the beach"),
    ("cjk", "一只红色的狐狸 a red fox 在雪地里 ㈱ ㎏ ䷀"),
    ("hashtags", "#sunset #beach #123 #1234 #98765 summer vibes #travel"),
    ("repeated punctuation", "WOW!!! amazing...... view??? ***SALE*** ~~~ (new) [hot] {x} | a/b \\ c"),
    ("file names", "IMG_20200101.jpg, photo.PNG and scan-01.pdf, clip.mp4 download"),
    ("ip and long numbers", "server 192.168.0.1 log 1234567 item 12:34  "),
    ("shop phrases", "Vintage lamp Worldwide Free Shipping free download click for details page 12"),
    ("ids and sizes", "poster jc6640 jc6640vc 6640vc231 j2d1a2a 1920x1080 3.5×2 a4"),
    ("dashes and quotes", "a \u2014 long \u2013 dash \u2010 and \u00abquotes\u00bb \u201csmart\u201d \u2018single\u2019 `tick`"),
    ("many separators", "this-is-my-cute-cat_on_a_mat"),
    ("few separators", "a well-known t-shirt"),
    ("percent-encoded", "a+red+fox%20in%20the%20snow%21"),
    ("mojibake", "cafÃ© au lait, naÃ¯ve art"),
    ("literal newline escape", "first line\\nsecond line\nthird"),
    ("person tag and colon", "<person> standing : next to a car , smiling"),
    ("outer quotes and edges", "'\"a quoted caption\"'"),
    ("leading punctuation", "-_ hello world +"),
    ("dot word", ".hidden"),
    ("empty and spaces", "   "),
    ("plain", "A Cat On A Mat"),
]


@pytest.fixture(scope="module")
def oracle():
    from zoo.compat.torchvision import ensure_torchvision

    ensure_torchvision()
    from diffusers import PixArtSigmaPipeline

    pipe = object.__new__(PixArtSigmaPipeline)  # only its text methods are used: no modules needed
    return lambda texts: PixArtSigmaPipeline._text_preprocessing(pipe, list(texts), clean_caption=True)


@pytest.mark.parametrize("what,caption", CAPTIONS, ids=[c[0] for c in CAPTIONS])
def test_clean_caption_equals_the_pipeline(oracle, what, caption):
    assert clean_caption(caption) == oracle([caption])[0]


def test_batch_and_off_switch(oracle):
    texts = [c for _, c in CAPTIONS]
    assert preprocess_captions(texts) == oracle(texts)
    assert preprocess_captions(texts, clean=False) == [t.lower().strip() for t in texts]
    assert preprocess_captions(["<b>X</b> @a"]) != preprocess_captions(["<b>X</b> @a"], clean=False)


@pytest.mark.parametrize("missing", ["bs4", "ftfy"])
def test_missing_library_names_the_extra_and_the_way_round(monkeypatch, missing):
    monkeypatch.setitem(sys.modules, missing, None)  # import fails as if not installed
    with pytest.raises(ZooError, match=r"zoo\[diffusion\].*clean_caption=False"):
        preprocess_captions(["a cat"])
    assert preprocess_captions(["A Cat "], clean=False) == ["a cat"]
