"""Open the built site in headless Chromium (Debian's chromium + chromedriver, via selenium).

Serves the strict build on 127.0.0.1, checks that the catalogue table shows every registered
model and that the search box finds "flextok", and writes screenshots into the test's tmp dir.
Skipped (with the reason) only where chromium or its driver is not installed; CI installs both.
"""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import threading

import pytest

import zoo

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver") or ("/usr/bin/chromedriver" if os.path.exists("/usr/bin/chromedriver") else None)
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--window-size=1400,1000"]


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
