"""Open the built site in headless Chromium (Debian's chromium + chromedriver, via selenium).

Serves the strict build on 127.0.0.1 and looks at it in a 1280 px wide window: the catalogue
table shows every registered model, fits (its last column ends on screen, no sideways
scrolling inside its box: that scrollbar would sit below 50 rows) and the side navigation is
visible; the
search box finds "flextok"; a family page and the Benchmarks page show their pictures.
Screenshots go into the test's tmp dir, or into ``$ZOO_DOCS_SCREENSHOTS`` when set (to look at).
Skipped (with the reason) only where chromium or its driver is not installed; CI installs both.
"""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import threading
from pathlib import Path

import pytest

import zoo

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver") or ("/usr/bin/chromedriver" if os.path.exists("/usr/bin/chromedriver") else None)
WIDTH = 1280  # the width the catalogue must be readable at, side navigation included
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--window-size={WIDTH},1000"]


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def served_site(built_site):
    handler = functools.partial(_Quiet, directory=str(built_site.root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def browser(tmp_path):
    if CHROMIUM is None or DRIVER is None:
        pytest.skip("Debian's chromium and chromium-driver are not installed (apt-get install chromium chromium-driver)")
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (it is in the dev extra)")
    from selenium.webdriver.chrome.service import Service

    os.environ.setdefault("SE_OFFLINE", "true")  # never let Selenium Manager reach for the network
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS + [f"--user-data-dir={tmp_path / 'chromium-profile'}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=DRIVER))
    driver.set_window_size(WIDTH, 1000)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def test_catalogue_table_search_and_screenshot(served_site, browser, built_site, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, 20)
    browser.get(f"{served_site}/models/")
    assert browser.find_element(By.CSS_SELECTOR, "article h1").text.strip().startswith("Model catalogue")

    # the table shows every registered model (and the installed example plugin's)
    cells = browser.find_elements(By.CSS_SELECTOR, ".zoo-catalogue table tbody tr td:first-child code")
    shown = sorted(c.text for c in cells)
    assert shown == sorted(zoo.list_models() + list(built_site.extra_models))
    assert all(c.is_displayed() for c in cells[:3])
    shot = tmp_path / "catalogue.png"
    assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000

    # the search box finds "flextok"
    box = wait.until(ec.element_to_be_clickable((By.CSS_SELECTOR, "input.md-search__input")))
    box.click()
    box.send_keys("flextok")
    wait.until(ec.visibility_of_element_located((By.CSS_SELECTOR, ".md-search-result__item")))
    results = browser.find_elements(By.CSS_SELECTOR, ".md-search-result__item a")
    hrefs = [r.get_attribute("href") for r in results]
    assert any("/models/flextok/" in h for h in hrefs), hrefs
    meta = browser.find_element(By.CSS_SELECTOR, ".md-search-result__meta").text
    assert "matching" in meta.lower() and not meta.lower().startswith("no matching"), meta
    shot = tmp_path / "search.png"
    assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000


def _shot(browser, tmp_path, name: str) -> Path:
    folder = Path(os.environ.get("ZOO_DOCS_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    assert browser.save_screenshot(str(path)) and path.stat().st_size > 10_000
    return path


NAV_AND_TABLE = """
const nav = document.querySelector('.md-sidebar--primary');
const navBox = nav ? nav.getBoundingClientRect() : null;
const link = [...document.querySelectorAll('.md-sidebar--primary a.md-nav__link')].find(a => a.textContent.trim() === 'flextok');
const table = document.querySelector('.zoo-catalogue table');
const last = table.querySelector('thead th:last-child');
let box = table.parentElement, scroller = null;
while (box && box !== document.body) {
  const ox = getComputedStyle(box).overflowX;
  if ((ox === 'auto' || ox === 'scroll') && box.scrollWidth > box.clientWidth) { scroller = box; break; }
  box = box.parentElement;
}
return {
  innerWidth: window.innerWidth,
  pageScrollWidth: document.documentElement.scrollWidth,
  navShown: !!nav && getComputedStyle(nav).display !== 'none' && !nav.hidden && navBox.width > 100 && navBox.left >= 0,
  navLinkShown: !!link && link.getBoundingClientRect().width > 0,
  lastRight: last.getBoundingClientRect().right,
  lastText: last.textContent.trim(),
  scrollerRight: scroller ? scroller.getBoundingClientRect().right : null,
};
"""


def test_catalogue_is_readable_at_1280px(served_site, browser, tmp_path):
    """Side navigation visible; every column of the table on screen, without sideways scrolling."""
    browser.get(f"{served_site}/models/")
    m = browser.execute_script(NAV_AND_TABLE)
    _shot(browser, tmp_path, "catalogue_1280")
    assert m["innerWidth"] <= WIDTH
    assert m["navShown"] and m["navLinkShown"], f"the side navigation is hidden at {WIDTH} px: {m}"
    assert m["pageScrollWidth"] <= m["innerWidth"], f"the page itself scrolls sideways: {m}"
    # a sideways scrollbar at the bottom of a 50-row table is as good as cut off: every column must show
    assert m["scrollerRight"] is None, f"the table needs sideways scrolling at {WIDTH} px: {m}"
    assert m["lastRight"] <= m["innerWidth"], f"the {m['lastText']!r} column is cut off at {WIDTH} px: {m}"


@pytest.mark.parametrize("page, name", [("models/flextok/", "family_flextok"), ("benchmarks/", "benchmarks")])
def test_pages_show_their_pictures(built_site, served_site, browser, tmp_path, page, name):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    built = (built_site.root / page / "index.html").read_text(encoding="utf-8")
    assert "<img" in built, f"the built {page} holds no <img> (build log tail: {built_site.log[-600:]})"
    browser.get(f"{served_site}/{page}")
    images = WebDriverWait(browser, 10).until(
        lambda b: b.find_elements(By.CSS_SELECTOR, "article img"), message=f"{page} shows no picture")
    # pictures are loading=lazy: one only starts loading near the viewport, and scrolling away before
    # it starts can leave it unloaded. So each is scrolled into view and given up to 20 s to load there.
    shown = "return arguments[0].complete && arguments[0].naturalWidth > 0"
    for img in images:
        browser.execute_script("arguments[0].scrollIntoView()", img)
        try:
            WebDriverWait(browser, 20).until(lambda b, img=img: b.execute_script(shown, img))
        except Exception:
            pass
    browser.execute_script("window.scrollTo(0, 0)")
    state = "return [...document.querySelectorAll('article img')].map(i => [i.getAttribute('src'), i.complete && i.naturalWidth > 0])"
    loaded = browser.execute_script(state)
    assert all(ok for _, ok in loaded), f"pictures that did not load on {page}: {loaded}"
    _shot(browser, tmp_path, name)


def test_quick_start_install_line_fits_its_box(served_site, browser, tmp_path):
    """The one-line install command wraps inside its code box instead of running out of it."""
    browser.get(f"{served_site}/quickstart/")
    boxes = browser.execute_script(
        "return [...document.querySelectorAll('article .language-bash pre > code')]"
        ".map(c => [c.textContent.slice(0, 40), c.scrollWidth, c.clientWidth])")
    assert boxes, "no shell blocks found on the quick start (pymdownx.highlight pygments_lang_class?)"
    assert any(text.startswith("pip install torch==2.13.0") for text, _, _ in boxes)
    overflowing = [b for b in boxes if b[1] > b[2] + 1]
    _shot(browser, tmp_path, "quickstart")
    assert not overflowing, f"shell lines run out of their box: {overflowing}"
